// Preload (`node --require tests/peers/loopback-only.cjs server.js`) that keeps
// every TCP listener of a Node peer on loopback. server-everything's sse and
// streamableHttp modes call `app.listen(PORT)` with no host, which would bind
// every interface; with this preload they bind 127.0.0.1 (or
// WARDEN_LISTEN_HOST, which must itself be a loopback address).
"use strict";
const net = require("net");

const HOST = process.env.WARDEN_LISTEN_HOST || "127.0.0.1";
if (!["127.0.0.1", "::1", "localhost"].includes(HOST) && !HOST.startsWith("127.")) {
  throw new Error(`loopback-only: WARDEN_LISTEN_HOST=${HOST} is not a loopback address`);
}
const WILDCARD = new Set([undefined, null, "", "0.0.0.0", "::", "[::]"]);
const original = net.Server.prototype.listen;

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (first !== null && typeof first === "object" && !("_handle" in first) && !("fd" in first)) {
    // listen(options[, cb])
    if (first.path === undefined && WILDCARD.has(first.host)) {
      args[0] = { ...first, host: HOST };
    }
  } else if (
    first === undefined ||
    typeof first === "function" ||
    typeof first === "number" ||
    (typeof first === "string" && /^\d+$/.test(first))
  ) {
    // listen([port][, host][, backlog][, cb])
    if (first === undefined || typeof first === "function") args.unshift(0);
    if (typeof args[1] === "string") {
      if (WILDCARD.has(args[1])) args[1] = HOST;
    } else {
      args.splice(1, 0, HOST);
    }
  }
  return original.apply(this, args);
};

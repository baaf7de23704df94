// A real OAuth 2.1 authorization server for warden-identity's tests:
// npm oidc-provider on loopback, configured the way an MCP deployment needs.
//
//   node tests/idp/server.mjs            (with NODE_PATH or from .peers/idp)
//
// Starts two issuers on 127.0.0.1, each on its own ephemeral port, and
// prints one JSON line on stdout when both listen:
//   {"issuer": "http://127.0.0.1:A", "issuer2": "http://127.0.0.1:B", "kid": "...", "kid2": "..."}
// and exits when its stdin closes (the test process went away).
//
// Issuer A (RS256): resource indicators (JWT access tokens whose audience is
// the requested resource, e.g. Warden's /mcp URL); client credentials for
// two confidential clients with different roles (analyst-app, admin-app);
// DPoP-bound tokens when the token request carries a DPoP proof; the
// authorization code flow with PKCE S256 for a public client (public-app)
// with a scripted interaction (no browser):
//   GET  /auth?...                         → 303 /interaction/:uid (+ cookies)
//   POST /interaction/:uid/login  login=alice  → 303 /auth/:uid → 303 redirect_uri?code=…
// A native public client with refresh tokens (warden-oauth): Warden as the
// OAuth client of an upstream, per user (`mode: oauth`).
// Token exchange (RFC 8693) on issuer A, through oidc-provider's
// registerGrantType extension: a confidential client (warden-exchanger)
// presents a subject access token this issuer signed and gets a token for
// the requested `resource` (or `audience`): same `sub`, `tenant`, `roles`,
// `act: {sub: <the exchanging client>}`, the requested scope, 300 s.
// Issuer B (RS256 too) uses the same `kid` as A's first key: a second
// issuer must never be able to sign for the first.
//
// Admin endpoints (test-only, loopback-only like everything here):
//   POST /admin/rotate {"keep": true|false}  new signing key first in the
//        JWKS; the old key kept (keep) or dropped. Replies {"kid": new kid}.
//   POST /admin/sign {"header": {...}, "claims": {...}}  a JWS signed with
//        the issuer's current key (for tokens a real flow cannot produce:
//        expired, not yet valid, other issuer, extra headers). Replies
//        {"token": "..."}.
//   POST /admin/stats  {"jwks_requests": n, "exchanges": n, "refreshes": n}:
//        how often the JWKS was fetched, how many tokens were exchanged, how
//        many refresh tokens were redeemed.
//   POST /admin/token-ttl {"seconds": n}  the lifetime of access tokens for
//        resources from now on (default 300).
//   POST /admin/public-pem  the current public key as SPKI PEM (the
//        "HS256 signed with the public key" attack needs its bytes).
import http from "node:http";
import crypto from "node:crypto";
import Provider, { errors } from "oidc-provider";
import * as jose from "jose";

// stdout carries the ready line only (the test stops reading after it);
// everything else goes to stderr, less oidc-provider's development notices.
const QUIET = ["in-memory adapter", "NOTICE:"];
for (const level of ["log", "info", "warn", "debug"]) {
  console[level] = (...args) => {
    const text = args.join(" ");
    if (!QUIET.some((q) => text.includes(q))) console.error(...args);
  };
}

const HOST = "127.0.0.1";
const ROLES = {
  "analyst-app": ["analyst"],
  "admin-app": ["admin"],
  alice: ["analyst", "writer"],
};
const RESOURCE_SCOPES = "mcp mcp.read mcp.write";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

async function newKey(alg, kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { alg, kid: kid ?? crypto.randomUUID(), privateKey, publicKey, jwk: { ...jwk, alg, use: "sig", kid: kid ?? undefined } };
}

function makeProvider(slot) {
  const jwks = { keys: slot.keys.map((k) => ({ ...k.jwk, kid: k.kid })) };
  const provider = new Provider(slot.issuer, {
    clients: [
      {
        client_id: "analyst-app",
        client_secret: "analyst-secret-for-tests-only",
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_post",
        scope: "mcp mcp.read",
      },
      {
        client_id: "admin-app",
        client_secret: "admin-secret-for-tests-only",
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_post",
        scope: RESOURCE_SCOPES,
      },
      {
        client_id: "warden-exchanger",
        client_secret: "exchanger-secret-for-tests-only",
        grant_types: [TOKEN_EXCHANGE],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_post",
        scope: RESOURCE_SCOPES,
      },
      {
        client_id: "public-app",
        application_type: "native",
        grant_types: ["authorization_code"],
        response_types: ["code"],
        redirect_uris: ["http://127.0.0.1/callback"],
        token_endpoint_auth_method: "none",
        id_token_signed_response_alg: slot.alg,
      },
      {
        // Warden as the OAuth client of an upstream (`mode: oauth`): a
        // native public client, PKCE, refresh tokens (rotated on use).
        client_id: "warden-oauth",
        application_type: "native",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        // `warden credentials login`'s listener, and Warden's own callback
        // (`POST /credentials/{server}/login`); any loopback port.
        redirect_uris: ["http://127.0.0.1/callback", "http://127.0.0.1/credentials/callback"],
        token_endpoint_auth_method: "none",
        id_token_signed_response_alg: slot.alg,
      },
    ],
    // A client allowed refresh tokens gets one (no offline_access dance).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    clientDefaults: { id_token_signed_response_alg: slot.alg },
    jwks,
    cookies: { keys: ["cookie-key-for-tests-only"] },
    scopes: ["openid", "mcp", "mcp.read", "mcp.write"],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => ({
          scope: RESOURCE_SCOPES,
          audience: resourceIndicator,
          accessTokenTTL: slot.accessTokenTTL,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: slot.alg } },
        }),
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      const who = token.accountId || token.clientId;
      return { roles: ROLES[who] ?? [], tenant: "acme" };
    },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      async claims() {
        return { sub: id };
      },
    }),
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
  });
  provider.on("server_error", (_ctx, err) => console.error("oidc-provider server_error:", err));
  provider.on("grant.success", (ctx) => {
    if (ctx.oidc.params?.grant_type === "refresh_token") slot.refreshes += 1;
  });
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    (ctx) => tokenExchange(slot, ctx),
    new Set(["subject_token", "subject_token_type", "audience", "resource", "scope", "requested_token_type"]),
  );
  return provider;
}

// RFC 8693: the subject token must be one this issuer signed and still
// valid; the new token is for the requested resource only.
async function tokenExchange(slot, ctx) {
  const params = ctx.oidc.params;
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest("subject_token_type must be an access token");
  }
  const target = params.resource ?? params.audience;
  if (!target) throw new errors.InvalidTarget("resource or audience is required");
  let subject;
  try {
    const token = String(params.subject_token ?? "");
    const { kid } = jose.decodeProtectedHeader(token);
    const key = slot.keys.find((k) => k.kid === kid);
    if (!key) throw new Error("unknown kid");
    ({ payload: subject } = await jose.jwtVerify(token, key.publicKey, { issuer: slot.issuer }));
  } catch {
    throw new errors.InvalidGrant("subject_token is not valid");
  }
  const now = Math.floor(Date.now() / 1000);
  const scope = String(params.scope ?? "");
  const key = slot.keys[0];
  const claims = {
    iss: slot.issuer, sub: subject.sub, aud: target, iat: now, exp: now + 300, jti: crypto.randomUUID(),
    client_id: subject.client_id, scope, roles: subject.roles ?? [], tenant: subject.tenant,
    act: { sub: ctx.oidc.client.clientId },
  };
  const access_token = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "at+jwt" })
    .sign(key.privateKey);
  slot.exchanges += 1;
  ctx.body = { access_token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: "Bearer", expires_in: 300, scope };
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function admin(slot, req, res, path) {
  const text = await readBody(req);
  const body = text ? JSON.parse(text) : {};
  if (path === "/admin/rotate") {
    const key = await newKey(slot.alg);
    slot.keys = body.keep ? [key, ...slot.keys] : [key];
    slot.provider = makeProvider(slot);
    return reply(res, 200, { kid: key.kid });
  }
  if (path === "/admin/sign") {
    const key = slot.keys[0];
    const header = { alg: key.alg, kid: key.kid, typ: "at+jwt", ...(body.header ?? {}) };
    const token = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(body.claims ?? {})))
      .setProtectedHeader(header)
      .sign(key.privateKey);
    return reply(res, 200, { token });
  }
  if (path === "/admin/stats") {
    return reply(res, 200, { jwks_requests: slot.jwksRequests, exchanges: slot.exchanges, refreshes: slot.refreshes });
  }
  if (path === "/admin/token-ttl") {
    slot.accessTokenTTL = Number(body.seconds) || 300;
    return reply(res, 200, { seconds: slot.accessTokenTTL });
  }
  if (path === "/admin/public-pem") {
    return reply(res, 200, { pem: await jose.exportSPKI(slot.keys[0].publicKey), kid: slot.keys[0].kid });
  }
  return reply(res, 404, { error: "not_found" });
}

async function interaction(slot, req, res, path) {
  const match = /^\/interaction\/([^/]+)\/login$/.exec(path);
  if (!match || req.method !== "POST") return reply(res, 404, { error: "not_found" });
  const form = new URLSearchParams(await readBody(req));
  const accountId = form.get("login");
  if (!accountId) return reply(res, 400, { error: "login required" });
  const provider = slot.provider;
  const details = await provider.interactionDetails(req, res);
  const { params } = details;
  const grant = new provider.Grant({ accountId, clientId: params.client_id });
  const requested = String(params.scope ?? "").split(" ").filter(Boolean);
  // What a consent screen would show and the user would accept: the
  // requested scopes, as OP scopes and as scopes of the requested resource.
  grant.addOIDCScope(requested.join(" "));
  if (params.resource) {
    const resourceScopes = requested.filter((s) => s !== "openid").join(" ");
    for (const resource of [].concat(params.resource)) grant.addResourceScope(resource, resourceScopes);
  }
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

async function startSlot(alg, fixedKid) {
  const slot = { alg, keys: [await newKey(alg, fixedKid)], issuer: "", provider: null, jwksRequests: 0, exchanges: 0, refreshes: 0, accessTokenTTL: 300 };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, slot.issuer).pathname;
    if (path === "/jwks") slot.jwksRequests += 1;
    const handle = path.startsWith("/admin/")
      ? admin(slot, req, res, path)
      : path.startsWith("/interaction/")
        ? interaction(slot, req, res, path)
        : Promise.resolve(slot.provider.callback()(req, res));
    handle.catch((err) => {
      console.error(`${req.method} ${path}:`, err);
      if (!res.headersSent) reply(res, 500, { error: "server_error" });
    });
  });
  await new Promise((resolve) => server.listen(0, HOST, resolve));
  slot.issuer = `http://${HOST}:${server.address().port}`;
  slot.provider = makeProvider(slot);
  return slot;
}

const a = await startSlot("RS256");
const b = await startSlot("RS256", a.keys[0].kid);
process.stdout.write(
  JSON.stringify({ issuer: a.issuer, issuer2: b.issuer, kid: a.keys[0].kid, kid2: b.keys[0].kid }) + "\n",
);
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();

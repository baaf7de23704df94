#!/usr/bin/env node
// Scenario driver built on the official TypeScript SDK (@modelcontextprotocol/sdk 1.x Client).
// Same flags and same JSON shape as py_client.py. Runs under node 20 or 22.
//
//   node tests/peers/ts_client.mjs --url http://127.0.0.1:3001/mcp --list \
//       --call echo --args '{"message":"hi"}' --read demo://resource/static/document/architecture.md
//   node tests/peers/ts_client.mjs --transport sse --url http://127.0.0.1:3001/sse --list
//   node tests/peers/ts_client.mjs --list --command "$NODE22" "$SERVER_EVERYTHING" stdio
//
// Exit: 0 ok, 1 a step failed, 2 usage error, 3 overall --timeout expired.
// The SDK is loaded from $NPM_NODE_MODULES (set by .peers/env.sh), else from
// <repo>/.peers/npm/node_modules.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NM = process.env.NPM_NODE_MODULES || path.resolve(HERE, "../../.peers/npm/node_modules");
const SDK = path.join(NM, "@modelcontextprotocol/sdk");
const ROOT_URI = "file:///tmp";

const out = {
  ok: false,
  driver: "ts_client",
  sdk: { name: "@modelcontextprotocol/sdk", version: null, major: null },
  node: process.version,
  transport: null,
  target: null,
  protocol_requested: null,
  protocol_version: null,
  server_info: null,
  capabilities: null,
  stage: "start",
  calls: [],
  reads: [],
  prompts_got: [],
  callbacks: { sampling: [], elicitation: [], roots: 0 },
  notifications: [],
  log_messages: 0,
  errors: [],
};
const t0 = Date.now();
let emitted = false;
function emit(code) {
  if (!emitted) {
    emitted = true;
    out.ok = code === 0;
    out.elapsed_ms = Date.now() - t0;
    process.stdout.write(JSON.stringify(out) + "\n");
  }
  process.exitCode = code;
}
class UsageError extends Error {}

// ------------------------------------------------------------------ flags
function usage() {
  return `usage: ts_client.mjs [--transport streamable-http|sse|stdio] (--url URL | --command CMD ARGS...)
  [--header K=V]... [--env K=V]... [--cwd DIR] [--protocol VERSION]
  [--list] [--call NAME [--args JSON]]... [--read URI]... [--prompt NAME [--prompt-args JSON]]...
  [--elicit-content JSON] [--no-callbacks] [--timeout S] [--request-timeout S] [--full]
--command must be last.`;
}

function parseArgs(argv) {
  const o = {
    transport: null, url: null, command: null, headers: {}, env: {}, cwd: undefined, protocol: null,
    list: false, steps: [], elicitContent: null, noCallbacks: false, timeout: 60, requestTimeout: 30, full: false,
  };
  const json = (flag, v) => {
    try {
      return JSON.parse(v);
    } catch (e) {
      throw new UsageError(`${flag}: not JSON: ${e.message}`);
    }
  };
  const pair = (flag, v) => {
    const i = v.indexOf("=");
    if (i < 0) throw new UsageError(`${flag} ${v}: expected K=V`);
    return [v.slice(0, i), v.slice(i + 1)];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--transport": o.transport = val(); break;
      case "--url": o.url = val(); break;
      case "--header": { const [k, v] = pair(a, val()); o.headers[k] = v; break; }
      case "--env": { const [k, v] = pair(a, val()); o.env[k] = v; break; }
      case "--cwd": o.cwd = val(); break;
      case "--protocol": o.protocol = val(); break;
      case "--list": o.list = true; break;
      case "--call": o.steps.push({ kind: "call", name: val(), args: {} }); break;
      case "--read": o.steps.push({ kind: "read", uri: val() }); break;
      case "--prompt": o.steps.push({ kind: "prompt", name: val(), args: {} }); break;
      case "--args":
      case "--prompt-args": {
        const kind = a === "--args" ? "call" : "prompt";
        const last = o.steps[o.steps.length - 1];
        if (!last || last.kind !== kind || last.hasArgs) throw new UsageError(`${a} must follow --${kind}`);
        const v = json(a, val());
        if (v === null || typeof v !== "object" || Array.isArray(v)) throw new UsageError(`${a}: must be a JSON object`);
        last.args = v;
        last.hasArgs = true;
        break;
      }
      case "--elicit-content": o.elicitContent = json(a, val()); break;
      case "--no-callbacks": o.noCallbacks = true; break;
      case "--timeout": o.timeout = Number(val()); break;
      case "--request-timeout": o.requestTimeout = Number(val()); break;
      case "--full": o.full = true; break;
      case "--command": o.command = argv.slice(i + 1); i = argv.length; break;
      case "-h":
      case "--help": process.stderr.write(usage() + "\n"); process.exit(0);
      default: throw new UsageError(`unknown argument ${a}\n${usage()}`);
    }
  }
  for (const s of o.steps) delete s.hasArgs;
  if (!o.transport) o.transport = o.command ? "stdio" : "streamable-http";
  if (!["streamable-http", "sse", "stdio"].includes(o.transport)) throw new UsageError(`--transport ${o.transport}: unknown`);
  if (o.transport === "stdio" && !(o.command && o.command.length)) throw new UsageError("--transport stdio needs --command CMD ARGS...");
  if (o.transport !== "stdio" && !o.url) throw new UsageError(`--transport ${o.transport} needs --url`);
  if (!(o.timeout > 0) || !(o.requestTimeout > 0)) throw new UsageError("--timeout/--request-timeout must be positive");
  return o;
}

// ---------------------------------------------------------------- helpers
function errInfo(e) {
  const info = { type: e?.constructor?.name ?? typeof e, message: String(e?.message ?? e) };
  if (typeof e?.code === "number") info.code = e.code;
  if (e?.data !== undefined) info.data = e.data;
  return info;
}
const textOf = (content) => (content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");

function elicitContentFor(schema) {
  const out = {};
  if (!schema) return out;
  const required = new Set(schema.required || []);
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    if ("default" in prop) { out[name] = prop.default; continue; }
    if (!required.has(name)) continue;
    const t = prop.type;
    if (t === "boolean") out[name] = true;
    else if (t === "integer" || t === "number") out[name] = prop.minimum ?? 1;
    else if (t === "array") {
      const items = prop.items || {};
      const choices = items.enum || (items.anyOf || []).filter((x) => "const" in x).map((x) => x.const);
      out[name] = choices.slice(0, 1);
    } else if (prop.enum) out[name] = prop.enum[0];
    else if (prop.oneOf) out[name] = prop.oneOf[0].const;
    else if (prop.format === "email") out[name] = "warden@example.com";
    else if (prop.format === "uri") out[name] = "https://example.com/warden";
    else if (prop.format === "date") out[name] = "2000-01-01";
    else out[name] = "warden";
  }
  return out;
}

async function load(rel) {
  const p = path.join(SDK, "dist/esm", rel);
  if (!existsSync(p)) throw new Error(`TypeScript SDK not found at ${SDK} (run scripts/install-peers.sh)`);
  return import(pathToFileURL(p).href);
}

async function listAll(client, method, key) {
  const items = [];
  let cursor;
  for (let i = 0; i < 100; i++) {
    const page = await client[method](cursor ? { cursor } : undefined, reqOpts);
    items.push(...page[key]);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return items;
}

let reqOpts = {};

// ------------------------------------------------------------------- run
async function run(o) {
  const { readFileSync } = await import("node:fs");
  const pkg = JSON.parse(readFileSync(path.join(SDK, "package.json"), "utf8"));
  out.sdk.version = pkg.version;
  out.sdk.major = Number(pkg.version.split(".")[0]);
  out.transport = o.transport;
  out.target = o.transport === "stdio" ? o.command : o.url;
  out.protocol_requested = o.protocol;

  const { Client } = await load("client/index.js");
  const types = await load("types.js");
  if (o.protocol && !types.SUPPORTED_PROTOCOL_VERSIONS.includes(o.protocol)) {
    throw new UsageError(`--protocol ${o.protocol}: @modelcontextprotocol/sdk ${pkg.version} speaks only ${types.SUPPORTED_PROTOCOL_VERSIONS.join(", ")}`);
  }
  reqOpts = { timeout: o.requestTimeout * 1000 };

  let transport;
  if (o.transport === "stdio") {
    const { StdioClientTransport, getDefaultEnvironment } = await load("client/stdio.js");
    transport = new StdioClientTransport({
      command: o.command[0],
      args: o.command.slice(1),
      env: { ...getDefaultEnvironment(), ...o.env },
      cwd: o.cwd,
      stderr: "inherit",
    });
  } else if (o.transport === "sse") {
    const { SSEClientTransport } = await load("client/sse.js");
    transport = new SSEClientTransport(new URL(o.url), { requestInit: { headers: o.headers } });
  } else {
    const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
    transport = new StreamableHTTPClientTransport(new URL(o.url), { requestInit: { headers: o.headers } });
  }
  // Watch the initialize exchange: the SDK keeps no record of the negotiated version, and
  // always offers LATEST_PROTOCOL_VERSION (with --protocol, offer the requested one instead).
  let initId;
  let negotiated = null;
  const send = transport.send.bind(transport);
  transport.send = (msg, opts) => {
    if (msg && msg.method === "initialize") {
      initId = msg.id;
      if (o.protocol && msg.params) msg = { ...msg, params: { ...msg.params, protocolVersion: o.protocol } };
    }
    return send(msg, opts);
  };
  const start = transport.start.bind(transport);
  transport.start = async () => {
    const inner = transport.onmessage;
    transport.onmessage = (msg, extra) => {
      if (msg && initId !== undefined && msg.id === initId && msg.result) negotiated = msg.result.protocolVersion ?? null;
      return inner?.(msg, extra);
    };
    return start();
  };

  const capabilities = o.noCallbacks ? {} : { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };
  const client = new Client({ name: "warden-ts-client", version: pkg.version }, { capabilities });
  client.fallbackNotificationHandler = async (n) => {
    if (out.notifications.length < 200) out.notifications.push(n.method);
    if (n.method === "notifications/message") out.log_messages++;
  };
  let closing = false; // errors while tearing down (an aborted SSE GET) are not failures
  client.onerror = (e) => {
    if (!closing) out.errors.push({ stage: "transport", ...errInfo(e) });
  };
  if (!o.noCallbacks) {
    client.setRequestHandler(types.CreateMessageRequestSchema, async (req) => {
      let prompt = "";
      for (const m of req.params.messages) {
        const c = Array.isArray(m.content) ? m.content.find((x) => x.type === "text") : m.content;
        if (m.role === "user" && c?.type === "text") prompt = c.text;
      }
      out.callbacks.sampling.push(prompt);
      return { role: "assistant", content: { type: "text", text: `sampled: ${prompt}` }, model: "warden-test-model", stopReason: "endTurn" };
    });
    client.setRequestHandler(types.ElicitRequestSchema, async (req) => {
      const mode = req.params.mode || "form";
      out.callbacks.elicitation.push({ mode, message: req.params.message });
      if (mode === "url") return { action: "accept" };
      return { action: "accept", content: o.elicitContent ?? elicitContentFor(req.params.requestedSchema) };
    });
    client.setRequestHandler(types.ListRootsRequestSchema, async () => {
      out.callbacks.roots++;
      return { roots: [{ uri: ROOT_URI, name: "tmp" }] };
    });
  }

  out.stage = "connect";
  await client.connect(transport, reqOpts);
  try {
    out.protocol_version = negotiated;
    out.server_info = client.getServerVersion() ?? null;
    const caps = client.getServerCapabilities() ?? {};
    out.capabilities = caps;

    if (o.list) {
      out.stage = "list";
      const tools = await listAll(client, "listTools", "tools");
      out.tools = tools.map((t) => t.name);
      if (o.full) out.tools_full = tools;
      if (caps.resources) {
        out.resources = (await listAll(client, "listResources", "resources")).map((r) => r.uri);
        out.resource_templates = (await listAll(client, "listResourceTemplates", "resourceTemplates")).map((t) => t.uriTemplate);
      }
      if (caps.prompts) out.prompts = (await listAll(client, "listPrompts", "prompts")).map((p) => p.name);
    }
    for (const step of o.steps) {
      out.stage = `${step.kind} ${step.name ?? step.uri}`;
      if (step.kind === "call") {
        const rec = { name: step.name, args: step.args };
        out.calls.push(rec);
        try {
          const r = await client.callTool({ name: step.name, arguments: step.args }, undefined, reqOpts);
          const isError = Boolean(r.isError);
          Object.assign(rec, { ok: !isError, is_error: isError, text: textOf(r.content), result: r });
          if (isError) out.errors.push({ stage: out.stage, message: "tool returned isError", text: rec.text });
        } catch (e) {
          Object.assign(rec, { ok: false, error: errInfo(e) });
          out.errors.push({ stage: out.stage, ...errInfo(e) });
        }
      } else if (step.kind === "read") {
        const rec = { uri: step.uri };
        out.reads.push(rec);
        try {
          const r = await client.readResource({ uri: step.uri }, reqOpts);
          Object.assign(rec, { ok: true, result: r, text: r.contents.map((c) => c.text ?? "").join("\n") });
        } catch (e) {
          Object.assign(rec, { ok: false, error: errInfo(e) });
          out.errors.push({ stage: out.stage, ...errInfo(e) });
        }
      } else {
        const rec = { name: step.name, args: step.args };
        out.prompts_got.push(rec);
        try {
          const args = Object.fromEntries(Object.entries(step.args).map(([k, v]) => [k, String(v)]));
          const r = await client.getPrompt({ name: step.name, arguments: args }, reqOpts);
          Object.assign(rec, { ok: true, result: r, messages: r.messages.length });
        } catch (e) {
          Object.assign(rec, { ok: false, error: errInfo(e) });
          out.errors.push({ stage: out.stage, ...errInfo(e) });
        }
      }
    }
    out.stage = "done";
  } finally {
    closing = true;
    if (o.transport === "streamable-http") {
      try {
        await transport.terminateSession();
      } catch {
        /* the session may already be gone */
      }
    }
    await client.close().catch(() => {});
  }
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    out.errors.push({ stage: "usage", message: e.message });
    emit(2);
    return;
  }
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), o.timeout * 1000);
  });
  let code = 0;
  const result = await Promise.race([
    run(o).then(
      () => "done",
      (e) => {
        out.errors.push({ stage: e instanceof UsageError ? "usage" : out.stage, ...errInfo(e) });
        code = e instanceof UsageError ? 2 : 1;
        return "failed";
      },
    ),
    timeout,
  ]);
  clearTimeout(timer);
  if (result === "timeout") {
    out.errors.push({ stage: out.stage, type: "Timeout", message: `overall timeout ${o.timeout}s expired` });
    code = 3;
  }
  if (code === 0 && (out.errors.length || out.stage !== "done")) code = 1;
  emit(code);
  // Do not wait for stray handles (an SSE stream, a child that ignores stdin close).
  setTimeout(() => process.exit(code), result === "timeout" ? 0 : 2000).unref();
  if (result === "timeout") process.exit(code);
}

await main();

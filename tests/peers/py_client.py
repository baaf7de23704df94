#!/usr/bin/env python3
"""Scenario driver built on the official MCP Python SDK (runs under mcp 1.x and 2.x).

Connects to one MCP server (Streamable HTTP, legacy HTTP+SSE, or stdio), runs a
fixed scenario, prints ONE JSON object on stdout and exits:

    0  every step succeeded
    1  a step failed (connect error, JSON-RPC error, tool result with isError)
    2  usage error (bad flags, a --protocol this SDK cannot speak)
    3  the overall --timeout expired (the JSON says how far it got)

Examples (after `source .peers/env.sh`):

    $PY2 tests/peers/py_client.py --url http://127.0.0.1:3001/mcp --list \\
        --call echo --args '{"message":"hi"}' --read demo://resource/static/document/architecture.md
    $PY1 tests/peers/py_client.py --transport sse --url http://127.0.0.1:3001/sse --list
    $PY2 tests/peers/py_client.py --list --command "$NODE22" "$SERVER_EVERYTHING" stdio

Server-to-client requests are answered with fixed data and recorded under
"callbacks": sampling/createMessage -> "sampled: <last user text>",
elicitation/create -> accept with --elicit-content (or content derived from
the requested schema), roots/list -> one root file:///tmp.

Logs go to stderr; stdout carries only the JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import sys
import time
import traceback
from datetime import timedelta
from typing import Any

import anyio

try:  # mcp 2.x ships its types as a separate distribution
    import mcp_types as types  # type: ignore[import-not-found]

    SDK_MAJOR = 2
except ImportError:  # mcp 1.x
    import mcp.types as types  # type: ignore[no-redef]

    SDK_MAJOR = 1

SDK_VERSION = importlib.metadata.version("mcp")
ROOT_URI = "file:///tmp"

# --------------------------------------------------------------------------- CLI


class _Step(argparse.Action):
    """--call/--prompt start a step; --args/--prompt-args fill the latest one."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = getattr(namespace, "steps", None)
        if steps is None:
            steps = []
            namespace.steps = steps
        if option_string == "--call":
            steps.append({"kind": "call", "name": values, "args": {}})
        elif option_string == "--prompt":
            steps.append({"kind": "prompt", "name": values, "args": {}})
        elif option_string == "--read":
            steps.append({"kind": "read", "uri": values})
        else:
            kind = "call" if option_string == "--args" else "prompt"
            if not steps or steps[-1]["kind"] != kind or steps[-1].get("_has_args"):
                parser.error(f"{option_string} must follow --{kind}")
            try:
                parsed = json.loads(values)
            except json.JSONDecodeError as e:
                parser.error(f"{option_string}: not JSON: {e}")
            if not isinstance(parsed, dict):
                parser.error(f"{option_string}: must be a JSON object")
            steps[-1]["args"] = parsed
            steps[-1]["_has_args"] = True


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="py_client.py",
        description="Run a fixed MCP client scenario and print one JSON object.",
    )
    p.add_argument("--transport", choices=["streamable-http", "sse", "stdio"], help="default: stdio with --command, else streamable-http")
    p.add_argument("--url", help="server URL (…/mcp for streamable-http, …/sse for sse)")
    p.add_argument("--header", action="append", default=[], metavar="K=V", help="extra HTTP header (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="extra environment for a stdio server (repeatable)")
    p.add_argument("--cwd", help="working directory for a stdio server")
    p.add_argument(
        "--protocol",
        default=None,
        help="mcp 2.x: auto (default: server/discover, fall back to initialize), legacy, 2026-07-28, "
        "or a handshake version (2024-11-05 … 2025-11-25) to offer in initialize. "
        "mcp 1.x: a handshake version only (default 2025-11-25).",
    )
    p.add_argument("--list", action="store_true", help="list tools, resources, resource templates and prompts")
    p.add_argument("--call", action=_Step, metavar="NAME", help="call a tool (repeatable)")
    p.add_argument("--args", action=_Step, metavar="JSON", help="arguments for the preceding --call")
    p.add_argument("--read", action=_Step, metavar="URI", help="read a resource (repeatable)")
    p.add_argument("--prompt", action=_Step, metavar="NAME", help="get a prompt (repeatable)")
    p.add_argument("--prompt-args", action=_Step, metavar="JSON", help="arguments for the preceding --prompt")
    p.add_argument(
        "--listen-resource",
        action="append",
        default=[],
        metavar="URI",
        help="(mcp 2.x, 2026-07-28) open subscriptions/listen on URI before the steps; after them, wait for one update per URI (repeatable)",
    )
    p.add_argument("--elicit-content", metavar="JSON", help="content to accept elicitations with (default: derived from the schema)")
    p.add_argument("--root", metavar="URI", action="append", help=f"a root roots/list answers with (repeatable; default {ROOT_URI})")
    p.add_argument("--first-until", metavar="TEXT", help="repeat the first --call (every 0.2 s, within --timeout) until its text contains TEXT")
    p.add_argument("--hold", type=float, default=0.0, metavar="SECONDS", help="stay connected this long after the steps")
    p.add_argument("--no-callbacks", action="store_true", help="advertise no sampling/elicitation/roots capability")
    p.add_argument("--timeout", type=float, default=60.0, help="whole-run timeout in seconds (default 60)")
    p.add_argument("--request-timeout", type=float, default=30.0, help="per-request timeout in seconds (default 30)")
    p.add_argument("--full", action="store_true", help="include full listings (schemas, descriptions) in the JSON")
    p.add_argument("--command", nargs=argparse.REMAINDER, metavar="CMD ARGS", help="stdio server command line; must be last")
    ns = p.parse_args(argv)
    if not hasattr(ns, "steps") or ns.steps is None:
        ns.steps = []
    for s in ns.steps:
        s.pop("_has_args", None)
    if ns.transport is None:
        ns.transport = "stdio" if ns.command else "streamable-http"
    if ns.transport == "stdio" and not ns.command:
        p.error("--transport stdio needs --command CMD ARGS...")
    if ns.transport != "stdio" and not ns.url:
        p.error(f"--transport {ns.transport} needs --url")
    ns.headers = _pairs(p, ns.header, "--header")
    ns.env_pairs = _pairs(p, ns.env, "--env")
    if ns.elicit_content is not None:
        try:
            ns.elicit_content = json.loads(ns.elicit_content)
        except json.JSONDecodeError as e:
            p.error(f"--elicit-content: not JSON: {e}")
    return ns


def _pairs(p: argparse.ArgumentParser, items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            p.error(f"{flag} {item!r}: expected K=V")
        k, v = item.split("=", 1)
        out[k] = v
    return out


# --------------------------------------------------------------------- helpers


def dump(model: Any) -> Any:
    if model is None:
        return None
    if hasattr(model, "model_dump"):
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return model


def err_info(e: BaseException) -> dict[str, Any]:
    if isinstance(e, BaseExceptionGroup):
        # anyio task groups wrap the real error (often twice): report the first leaf.
        leaf: BaseException = e
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        info = err_info(leaf)
        info["grouped"] = len(e.exceptions)
        return info
    info: dict[str, Any] = {"type": type(e).__name__, "message": str(e)}
    error = getattr(e, "error", None)  # McpError (1.x) / MCPError (2.x) carry ErrorData
    code = getattr(e, "code", None)
    if error is not None and hasattr(error, "code"):
        info["code"] = error.code
        info["message"] = error.message
        if getattr(error, "data", None) is not None:
            info["data"] = error.data
    elif isinstance(code, int):
        info["code"] = code
    return info


def text_of(content: list[Any]) -> str:
    return "\n".join(getattr(c, "text", "") for c in content if getattr(c, "type", None) == "text")


def elicit_content_for(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Deterministic answer for a form elicitation: defaults, else a fixed value per type."""
    out: dict[str, Any] = {}
    if not schema:
        return out
    required = set(schema.get("required", []))
    for name, prop in (schema.get("properties") or {}).items():
        if "default" in prop:
            out[name] = prop["default"]
            continue
        if name not in required:
            continue
        t = prop.get("type")
        if t == "boolean":
            out[name] = True
        elif t in ("integer", "number"):
            out[name] = prop.get("minimum", 1)
        elif t == "array":
            items = prop.get("items") or {}
            choices = items.get("enum") or [o.get("const") for o in items.get("anyOf", []) if "const" in o]
            out[name] = choices[:1]
        elif prop.get("enum"):
            out[name] = prop["enum"][0]
        elif prop.get("oneOf"):
            out[name] = prop["oneOf"][0].get("const")
        elif prop.get("format") == "email":
            out[name] = "warden@example.com"
        elif prop.get("format") == "uri":
            out[name] = "https://example.com/warden"
        elif prop.get("format") == "date":
            out[name] = "2000-01-01"
        else:
            out[name] = "warden"
    return out


# ------------------------------------------------------------------- the run


class Run:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.t0 = time.monotonic()
        target = ns.url if ns.transport != "stdio" else ns.command
        self.out: dict[str, Any] = {
            "ok": False,
            "driver": "py_client",
            "sdk": {"name": "mcp (python)", "version": SDK_VERSION, "major": SDK_MAJOR},
            "transport": ns.transport,
            "target": target,
            "protocol_requested": ns.protocol,
            "protocol_version": None,
            "server_info": None,
            "capabilities": None,
            "stage": "start",
            "calls": [],
            "reads": [],
            "prompts_got": [],
            "callbacks": {"sampling": [], "elicitation": [], "roots": 0},
            "notifications": [],
            "log_messages": 0,
            "errors": [],
        }

    # ---- callbacks (same signatures in 1.x and 2.x: context first) ----
    async def on_sampling(self, context: Any, params: Any) -> Any:
        prompt = ""
        for m in params.messages:
            c = m.content
            if isinstance(c, list):
                c = next((x for x in c if getattr(x, "type", None) == "text"), None)
            if getattr(c, "type", None) == "text" and m.role == "user":
                prompt = c.text
        self.out["callbacks"]["sampling"].append(prompt)
        return types.CreateMessageResult.model_validate(
            {
                "role": "assistant",
                "content": {"type": "text", "text": f"sampled: {prompt}"},
                "model": "warden-test-model",
                "stopReason": "endTurn",
            }
        )

    async def on_elicitation(self, context: Any, params: Any) -> Any:
        mode = getattr(params, "mode", None) or "form"
        self.out["callbacks"]["elicitation"].append({"mode": mode, "message": params.message})
        if mode == "url":
            return types.ElicitResult.model_validate({"action": "accept"})
        schema = getattr(params, "requested_schema", None) or getattr(params, "requestedSchema", None)
        if hasattr(schema, "model_dump"):
            schema = schema.model_dump(by_alias=True, exclude_none=True)
        content = self.ns.elicit_content if self.ns.elicit_content is not None else elicit_content_for(schema)
        return types.ElicitResult.model_validate({"action": "accept", "content": content})

    async def on_roots(self, context: Any) -> Any:
        self.out["callbacks"]["roots"] += 1
        uris = self.ns.root or [ROOT_URI]
        return types.ListRootsResult.model_validate({"roots": [{"uri": u, "name": f"root{i}"} for i, u in enumerate(uris)]})

    async def on_log(self, params: Any) -> None:
        self.out["log_messages"] += 1

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.out["errors"].append({"stage": "transport", **err_info(message)})
            return
        inner = getattr(message, "root", message)
        method = getattr(inner, "method", None)
        if method is not None and len(self.out["notifications"]) < 200:
            self.out["notifications"].append(method)

    def callback_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"logging_callback": self.on_log, "message_handler": self.on_message}
        if not self.ns.no_callbacks:
            kw.update(
                sampling_callback=self.on_sampling,
                elicitation_callback=self.on_elicitation,
                list_roots_callback=self.on_roots,
            )
        return kw

    # ---- transports ----
    def stdio_params(self, cls: Any) -> Any:
        cmd = self.ns.command
        return cls(command=cmd[0], args=cmd[1:], env=self.ns.env_pairs or None, cwd=self.ns.cwd)

    # ---- scenario, shared by both SDKs ----
    async def scenario(self, api: Any) -> None:
        ns = self.ns
        self.out["stage"] = "scenario"
        caps = self.out.get("capabilities") or {}
        if ns.list:
            self.out["stage"] = "list"
            tools = await api.list_all("tools")
            self.out["tools"] = [t.name for t in tools]
            if ns.full:
                self.out["tools_full"] = [dump(t) for t in tools]
            if "resources" in caps:
                res = await api.list_all("resources")
                self.out["resources"] = [str(r.uri) for r in res]
                tmpl = await api.list_all("resource_templates")
                self.out["resource_templates"] = [str(getattr(t, "uri_template", None) or t.uriTemplate) for t in tmpl]
            if "prompts" in caps:
                prompts = await api.list_all("prompts")
                self.out["prompts"] = [p.name for p in prompts]
        if ns.listen_resource:
            if not hasattr(api, "listen"):
                raise UsageError(f"--listen-resource: mcp {SDK_VERSION} has no subscriptions/listen")
            self.out["stage"] = "listen"
            async with api.listen(ns.listen_resource) as sub:
                self.out["listen_honored"] = dump(sub.honored)
                await self.steps(api)
                self.out["stage"] = "listen events"
                events: list[Any] = []
                with anyio.move_on_after(ns.request_timeout):
                    async for event in sub:
                        events.append(dump(event))
                        if len(events) >= len(ns.listen_resource):
                            break
                self.out["listen_events"] = events
                if len(events) < len(ns.listen_resource):
                    self.out["errors"].append({"stage": "listen events", "message": f"{len(events)} of {len(ns.listen_resource)} updates arrived"})
        else:
            await self.steps(api)
        if ns.hold > 0:
            self.out["stage"] = "hold"
            await anyio.sleep(ns.hold)
        self.out["stage"] = "done"

    async def steps(self, api: Any) -> None:
        ns = self.ns
        if ns.first_until is not None and ns.steps and ns.steps[0]["kind"] == "call":
            first = ns.steps[0]
            self.out["stage"] = f"until {first['name']}"
            while True:
                try:
                    r = await api.call_tool(first["name"], first["args"])
                    if ns.first_until in text_of(r.content):
                        break
                except Exception:  # noqa: BLE001 - retried until the run's timeout
                    pass
                await anyio.sleep(0.2)
        for step in ns.steps:
            self.out["stage"] = f"{step['kind']} {step.get('name') or step.get('uri')}"
            if step["kind"] == "call":
                rec: dict[str, Any] = {"name": step["name"], "args": step["args"]}
                self.out["calls"].append(rec)
                try:
                    r = await api.call_tool(step["name"], step["args"])
                    is_error = bool(getattr(r, "is_error", None) if SDK_MAJOR == 2 else r.isError)
                    rec.update(ok=not is_error, is_error=is_error, text=text_of(r.content), result=dump(r))
                    if is_error:
                        self.out["errors"].append({"stage": self.out["stage"], "message": "tool returned isError", "text": rec["text"]})
                except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                    rec.update(ok=False, error=err_info(e))
                    self.out["errors"].append({"stage": self.out["stage"], **err_info(e)})
            elif step["kind"] == "read":
                rec = {"uri": step["uri"]}
                self.out["reads"].append(rec)
                try:
                    r = await api.read_resource(step["uri"])
                    rec.update(ok=True, result=dump(r), text="\n".join(getattr(c, "text", "") or "" for c in r.contents))
                except Exception as e:  # noqa: BLE001
                    rec.update(ok=False, error=err_info(e))
                    self.out["errors"].append({"stage": self.out["stage"], **err_info(e)})
            else:
                rec = {"name": step["name"], "args": step["args"]}
                self.out["prompts_got"].append(rec)
                try:
                    r = await api.get_prompt(step["name"], {k: str(v) for k, v in step["args"].items()})
                    rec.update(ok=True, result=dump(r), messages=len(r.messages))
                except Exception as e:  # noqa: BLE001
                    rec.update(ok=False, error=err_info(e))
                    self.out["errors"].append({"stage": self.out["stage"], **err_info(e)})

    async def main(self) -> None:
        if SDK_MAJOR == 2:
            await self.main_v2()
        else:
            await self.main_v1()

    # ---- mcp 2.x ----
    async def main_v2(self) -> None:
        import mcp.client.session as session_mod
        from mcp.client import Client
        from mcp.client.sse import sse_client
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

        ns = self.ns
        proto = ns.protocol or "auto"
        if proto in ("auto", "legacy") or proto in MODERN_PROTOCOL_VERSIONS:
            mode = proto
        elif proto in HANDSHAKE_PROTOCOL_VERSIONS:
            # The SDK always offers LATEST_HANDSHAKE_VERSION in initialize; offer an older one instead.
            mode = "legacy"
            session_mod.LATEST_HANDSHAKE_VERSION = proto  # type: ignore[attr-defined]
        else:
            raise UsageError(f"--protocol {proto!r}: mcp {SDK_VERSION} knows auto, legacy, {list(MODERN_PROTOCOL_VERSIONS)} and {list(HANDSHAKE_PROTOCOL_VERSIONS)}")

        async with contextlib.AsyncExitStack() as stack:
            if ns.transport == "stdio":
                transport: Any = stdio_client(self.stdio_params(StdioServerParameters))
            elif ns.transport == "sse":
                transport = sse_client(ns.url, headers=ns.headers or None, timeout=ns.request_timeout)
            else:
                http = await stack.enter_async_context(create_mcp_http_client(headers=ns.headers or None))
                transport = streamable_http_client(ns.url, http_client=http)
            self.out["stage"] = "connect"
            client = Client(
                transport,
                mode=mode,
                cache=None,  # every request must reach the server (Warden is what is under test)
                read_timeout_seconds=ns.request_timeout,
                client_info=types.Implementation(name="warden-py-client", version=SDK_VERSION),
                **self.callback_kwargs(),
            )
            async with client:
                self.out["protocol_version"] = client.protocol_version
                self.out["server_info"] = dump(client.server_info)
                self.out["capabilities"] = dump(client.server_capabilities)
                await self.scenario(_V2Api(client))

    # ---- mcp 1.x ----
    async def main_v1(self) -> None:
        from mcp import ClientSession
        from mcp.client.sse import sse_client
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        ns = self.ns
        proto = ns.protocol
        if proto is not None:
            from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS

            if proto not in SUPPORTED_PROTOCOL_VERSIONS:
                raise UsageError(f"--protocol {proto!r}: mcp {SDK_VERSION} speaks only {SUPPORTED_PROTOCOL_VERSIONS}")
            # ClientSession.initialize offers types.LATEST_PROTOCOL_VERSION (read at call time).
            types.LATEST_PROTOCOL_VERSION = proto

        async with contextlib.AsyncExitStack() as stack:
            self.out["stage"] = "connect"
            if ns.transport == "stdio":
                streams = await stack.enter_async_context(stdio_client(self.stdio_params(StdioServerParameters)))
            elif ns.transport == "sse":
                streams = await stack.enter_async_context(sse_client(ns.url, headers=ns.headers or None, timeout=ns.request_timeout))
            else:
                http = await stack.enter_async_context(create_mcp_http_client(headers=ns.headers or None))
                streams = await stack.enter_async_context(streamable_http_client(ns.url, http_client=http))
            session = await stack.enter_async_context(
                ClientSession(
                    streams[0],
                    streams[1],
                    read_timeout_seconds=timedelta(seconds=ns.request_timeout),
                    client_info=types.Implementation(name="warden-py-client", version=SDK_VERSION),
                    **self.callback_kwargs(),
                )
            )
            init = await session.initialize()
            self.out["protocol_version"] = init.protocolVersion
            self.out["server_info"] = dump(init.serverInfo)
            self.out["capabilities"] = dump(init.capabilities)
            await self.scenario(_V1Api(session))


class UsageError(Exception):
    pass


class _V2Api:
    def __init__(self, client: Any) -> None:
        self.c = client

    async def list_all(self, what: str) -> list[Any]:
        fn, attr = {
            "tools": (self.c.list_tools, "tools"),
            "resources": (self.c.list_resources, "resources"),
            "resource_templates": (self.c.list_resource_templates, "resource_templates"),
            "prompts": (self.c.list_prompts, "prompts"),
        }[what]
        items: list[Any] = []
        cursor = None
        for _ in range(100):
            page = await fn(cursor=cursor)
            items.extend(getattr(page, attr))
            cursor = page.next_cursor
            if not cursor:
                break
        return items

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        return await self.c.call_tool(name, args)

    async def read_resource(self, uri: str) -> Any:
        return await self.c.read_resource(uri)

    async def get_prompt(self, name: str, args: dict[str, str]) -> Any:
        return await self.c.get_prompt(name, args)

    def listen(self, uris: list[str]) -> Any:
        return self.c.listen(resource_subscriptions=uris)


class _V1Api:
    def __init__(self, session: Any) -> None:
        self.s = session

    async def list_all(self, what: str) -> list[Any]:
        fn, attr = {
            "tools": (self.s.list_tools, "tools"),
            "resources": (self.s.list_resources, "resources"),
            "resource_templates": (self.s.list_resource_templates, "resourceTemplates"),
            "prompts": (self.s.list_prompts, "prompts"),
        }[what]
        items: list[Any] = []
        cursor = None
        for _ in range(100):
            page = await fn(params=types.PaginatedRequestParams(cursor=cursor)) if cursor else await fn()
            items.extend(getattr(page, attr))
            cursor = page.nextCursor
            if not cursor:
                break
        return items

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        return await self.s.call_tool(name, args)

    async def read_resource(self, uri: str) -> Any:
        from pydantic import AnyUrl

        return await self.s.read_resource(AnyUrl(uri))

    async def get_prompt(self, name: str, args: dict[str, str]) -> Any:
        return await self.s.get_prompt(name, args)


def main(argv: list[str]) -> int:
    ns = parse_args(argv)
    run = Run(ns)
    code = 0

    async def go() -> None:
        nonlocal code
        with anyio.move_on_after(ns.timeout) as scope:
            try:
                await run.main()
            except UsageError as e:
                run.out["errors"].append({"stage": "usage", "message": str(e)})
                code = 2
            except Exception as e:  # noqa: BLE001 - the JSON carries it
                run.out["errors"].append({"stage": run.out["stage"], **err_info(e)})
                if os.environ.get("PY_CLIENT_TRACEBACK"):
                    traceback.print_exc()
                code = 1
        if scope.cancelled_caught:
            run.out["errors"].append({"stage": run.out["stage"], "type": "Timeout", "message": f"overall timeout {ns.timeout}s expired"})
            code = 3

    try:
        anyio.run(go)
    except BaseException as e:  # noqa: BLE001 - e.g. a task group failing on teardown
        if code == 0:
            run.out["errors"].append({"stage": "teardown", **err_info(e)})
            code = 1
    if code == 0 and run.out["errors"]:
        code = 1
    if code == 0 and run.out["stage"] != "done":
        code = 1
    run.out["ok"] = code == 0
    run.out["elapsed_ms"] = round((time.monotonic() - run.t0) * 1000)
    emit(run.out)
    return code


_EMITTED = False


def emit(obj: dict[str, Any]) -> None:
    global _EMITTED
    if _EMITTED:
        return
    _EMITTED = True
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _hard_timeout(*_: Any) -> None:
    # Teardown itself hung (e.g. a stdio child that ignores SIGTERM): still print one JSON object.
    emit({"ok": False, "driver": "py_client", "stage": "teardown", "errors": [{"stage": "teardown", "type": "Timeout", "message": "hard timeout"}]})
    os._exit(3)


if __name__ == "__main__":
    # Hard stop in case teardown itself hangs (e.g. a stuck stdio child).
    try:
        import signal

        timeout = 60.0
        if "--timeout" in sys.argv:
            with contextlib.suppress(Exception):
                timeout = float(sys.argv[sys.argv.index("--timeout") + 1])
        signal.signal(signal.SIGALRM, _hard_timeout)
        signal.alarm(int(timeout) + 15)
    except Exception:  # noqa: BLE001
        pass
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""OAuth driver built on the official MCP Python SDK's `OAuthClientProvider` (mcp 1.x and 2.x).

Connects to an MCP server protected by OAuth (Warden's `/mcp`) with no credential at
all and lets the SDK do everything the MCP authorization spec asks of a client:

    401 -> protected resource metadata (RFC 9728) -> authorization server metadata
    (RFC 8414 / OIDC discovery) -> authorization code + PKCE (with the RFC 8707
    `resource`) -> token -> retry; and on a 403 `insufficient_scope` the step-up:
    re-authorize with the challenged scope, retry the same request.

The "browser" is scripted: `redirect_handler` follows the authorization URL with an
HTTP client against the authorization server (tests/idp/server.mjs), posts the login
form (`login=<--login>`) at the interaction, and stops at the redirect to the
registered redirect URI, whose `code`, `state` and `iss` `callback_handler` returns.
No listener is needed at the redirect URI. The client is the pre-registered public
client (`--client-id`, default `public-app`, token_endpoint_auth_method `none`),
handed to the SDK through its TokenStorage (in memory), so no dynamic registration.

Every request goes to loopback only (127.0.0.0/8, ::1, localhost): anything else is
refused before it is sent.

Prints ONE JSON object on stdout and exits 0 when every step succeeded, 1 when one
failed, 2 on a usage error, 3 when the overall --timeout expired. Tokens,
authorization codes, PKCE verifiers and `state` values are never printed: tokens are
described by their claims (scope, aud, iss, sub, client_id, roles), session ids by a
short hash.

    $PY2 tests/peers/py_oauth_client.py --url http://127.0.0.1:PORT/mcp --list \\
        --call t__echo --args '{"message":"hi"}' --call t__whoami

JSON (abridged):
    {"ok": true, "driver": "py_oauth_client", "sdk": {...}, "mode": "legacy",
     "protocol_version": "2025-11-25", "tools": [...],
     "calls": [{"name": "t__echo", "ok": true, "text": "hi", "session": "ab12…"}],
     "authorizations": [{"scope": "mcp.read", "resource": "http://…/mcp", "client_id": "public-app",
                         "login_posted": true, "iss": "http://127.0.0.1:IDP", "ok": true}],
     "tokens": [{"scope": "mcp.read", "claims": {"scope": "mcp.read", "aud": "http://…/mcp", ...}}],
     "http": [{"method": "POST", "url": "http://…/mcp", "status": 401, "session": null,
               "www_authenticate": "Bearer resource_metadata=…"}, ...],
     "sessions": ["ab12…"], "errors": [], "elapsed_ms": 900}
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import importlib.metadata
import ipaddress
import json
import os
import sys
import time
import traceback
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio

try:  # mcp 2.x ships its types as a separate distribution and uses httpx2
    import httpx2 as httpx  # type: ignore[import-not-found]
    import mcp_types as types  # type: ignore[import-not-found]

    SDK_MAJOR = 2
except ImportError:  # mcp 1.x
    import httpx  # type: ignore[no-redef]
    import mcp.types as types  # type: ignore[no-redef]

    SDK_MAJOR = 1

from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

SDK_VERSION = importlib.metadata.version("mcp")
MAX_AUTH_HOPS = 10


# --------------------------------------------------------------------------- CLI


class _Step(argparse.Action):
    """--call starts a step; --args fills the latest one."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = getattr(namespace, "steps", None)
        if steps is None:
            steps = []
            namespace.steps = steps
        if option_string == "--call":
            steps.append({"name": values, "args": {}})
            return
        if not steps or "_has_args" in steps[-1]:
            parser.error("--args must follow --call")
        try:
            parsed = json.loads(values)
        except json.JSONDecodeError as e:
            parser.error(f"--args: not JSON: {e}")
        if not isinstance(parsed, dict):
            parser.error("--args: must be a JSON object")
        steps[-1]["args"] = parsed
        steps[-1]["_has_args"] = True


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="py_oauth_client.py", description="MCP OAuth flow through the official SDK; prints one JSON object.")
    p.add_argument("--url", required=True, help="the MCP endpoint (Streamable HTTP), e.g. http://127.0.0.1:PORT/mcp")
    p.add_argument(
        "--protocol",
        default="legacy",
        help="mcp 2.x: legacy (initialize, a session; the default), auto (server/discover, fall back to initialize) "
        "or a 2026-07-28-era version. mcp 1.x: legacy only.",
    )
    p.add_argument("--login", default="alice", help="the account to log in as at the authorization server's interaction")
    p.add_argument("--client-id", default="public-app", help="the pre-registered public client")
    p.add_argument("--redirect-uri", default="http://127.0.0.1/callback", help="the client's registered redirect URI")
    p.add_argument("--list", action="store_true", help="list tools")
    p.add_argument("--call", action=_Step, metavar="NAME", help="call a tool (repeatable, in order)")
    p.add_argument("--args", action=_Step, metavar="JSON", help="arguments for the preceding --call")
    p.add_argument("--timeout", type=float, default=60.0, help="whole-run timeout in seconds (default 60)")
    p.add_argument("--request-timeout", type=float, default=30.0, help="per-request timeout in seconds (default 30)")
    ns = p.parse_args(argv)
    if getattr(ns, "steps", None) is None:
        ns.steps = []
    for s in ns.steps:
        s.pop("_has_args", None)
    return ns


# --------------------------------------------------------------------- helpers


class UsageError(Exception):
    pass


class NotLoopback(Exception):
    pass


def check_loopback(url: str) -> None:
    """Test traffic goes to loopback only."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise NotLoopback(f"refusing a request to a non-loopback host: {host!r}")


def short_hash(value: str | None) -> str | None:
    if value is None:
        return None
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def bare_url(url: Any) -> str:
    """scheme://host/path: no query (codes, state, PKCE challenges stay out of the JSON)."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT access token we care about (the token itself is never recorded)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, json.JSONDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    keep = ("scope", "aud", "iss", "sub", "client_id", "roles", "tenant")
    return {k: claims[k] for k in keep if k in claims}


def err_info(e: BaseException) -> dict[str, Any]:
    if isinstance(e, BaseExceptionGroup):
        leaf: BaseException = e
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        info = err_info(leaf)
        info["grouped"] = len(e.exceptions)
        return info
    info: dict[str, Any] = {"type": type(e).__name__, "message": str(e)[:500]}
    err = getattr(e, "error", None)
    if err is not None and getattr(err, "code", None) is not None:
        info["code"] = err.code
    return info


def text_of(content: Any) -> str:
    return "\n".join(getattr(c, "text", "") or "" for c in content or [] if getattr(c, "type", None) == "text")


# ------------------------------------------------------------ OAuth plumbing


class MemoryStorage:
    """The SDK's TokenStorage, in memory, pre-loaded with the registered public client."""

    def __init__(self, run: Run, client: OAuthClientInformationFull) -> None:
        self.run = run
        self.tokens: OAuthToken | None = None
        self.client = client

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.run.out["tokens"].append(
            {
                "token_type": tokens.token_type,
                "scope": tokens.scope,
                "expires_in": tokens.expires_in,
                "refresh_token": tokens.refresh_token is not None,
                "claims": jwt_claims(tokens.access_token),
            }
        )

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.run.out["client_registered"] = client_info.client_id
        self.client = client_info


class ScriptedBrowser:
    """The user agent: follows the authorization URL, logs in, stops at the redirect URI."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.ns = run.ns
        # One cookie jar for the whole run, like a browser: the second authorization
        # (step-up) meets the session the first one left at the authorization server.
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=run.ns.request_timeout, trust_env=False)
        self.pending: dict[str, str | None] | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def redirect_handler(self, authorization_url: str) -> None:
        query = parse_qs(urlsplit(authorization_url).query)
        one = lambda k: (query.get(k) or [None])[0]  # noqa: E731
        rec: dict[str, Any] = {
            "endpoint": bare_url(authorization_url),
            "client_id": one("client_id"),
            "scope": one("scope"),
            "resource": one("resource"),
            "code_challenge_method": one("code_challenge_method"),
            "redirect_uri": one("redirect_uri"),
            "hops": [],
            "login_posted": False,
            "ok": False,
        }
        self.run.out["authorizations"].append(rec)
        self.pending = None
        url = authorization_url
        for _ in range(MAX_AUTH_HOPS):
            check_loopback(url)
            if "/interaction/" in urlsplit(url).path:
                r = await self.http.post(url.rstrip("/") + "/login", data={"login": self.ns.login})
                rec["login_posted"] = True
            else:
                r = await self.http.get(url)
            rec["hops"].append({"method": r.request.method, "url": bare_url(r.request.url), "status": r.status_code})
            location = r.headers.get("location")
            if location is None:
                raise RuntimeError(f"the authorization flow stopped at {bare_url(url)}: HTTP {r.status_code}")
            target = urljoin(str(r.request.url), location)
            if target.split("?", 1)[0] == self.ns.redirect_uri:
                params = parse_qs(urlsplit(target).query)
                got = lambda k: (params.get(k) or [None])[0]  # noqa: E731
                if got("error") is not None:
                    rec["error"] = {"error": got("error"), "error_description": got("error_description")}
                    raise RuntimeError(f"the authorization server refused: {got('error')}: {got('error_description')}")
                rec["iss"] = got("iss")
                rec["ok"] = got("code") is not None
                self.pending = {"code": got("code"), "state": got("state"), "iss": got("iss")}
                return
            url = target
        raise RuntimeError(f"no redirect to {self.ns.redirect_uri} after {MAX_AUTH_HOPS} hops")

    async def _result(self) -> dict[str, str | None]:
        if self.pending is None or not self.pending.get("code"):
            raise RuntimeError("no authorization code was captured")
        result, self.pending = self.pending, None
        return result

    async def callback_v2(self) -> Any:
        from mcp.shared.auth import AuthorizationCodeResult  # type: ignore[attr-defined]

        r = await self._result()
        return AuthorizationCodeResult(code=r["code"], state=r["state"], iss=r["iss"])

    async def callback_v1(self) -> tuple[str, str | None]:
        r = await self._result()
        return r["code"] or "", r["state"]


# --------------------------------------------------------------------- the run


class Run:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.t0 = time.monotonic()
        self.out: dict[str, Any] = {
            "ok": False,
            "driver": "py_oauth_client",
            "sdk": {"name": "mcp (python)", "version": SDK_VERSION, "major": SDK_MAJOR},
            "target": ns.url,
            "mode": ns.protocol,
            "protocol_version": None,
            "stage": "start",
            "calls": [],
            "authorizations": [],
            "tokens": [],
            "http": [],
            "sessions": [],
            "errors": [],
        }

    # ---- HTTP trace of the MCP client (the SDK's auth flow requests included) ----
    async def on_request(self, request: Any) -> None:
        check_loopback(str(request.url))

    async def on_response(self, response: Any) -> None:
        req = response.request
        session = short_hash(req.headers.get("mcp-session-id"))
        rec: dict[str, Any] = {
            "method": req.method,
            "url": bare_url(req.url),
            "status": response.status_code,
            "session": session,
            "authorized": "authorization" in req.headers,
        }
        challenge = response.headers.get_list("www-authenticate") if hasattr(response.headers, "get_list") else []
        if challenge:
            rec["www_authenticate"] = challenge
        assigned = response.headers.get("mcp-session-id")
        if assigned is not None:
            rec["session_assigned"] = short_hash(assigned)
        for s in (session, rec.get("session_assigned")):
            if s is not None and s not in self.out["sessions"]:
                self.out["sessions"].append(s)
        if len(self.out["http"]) < 200:
            self.out["http"].append(rec)

    def provider(self, browser: ScriptedBrowser) -> OAuthClientProvider:
        ns = self.ns
        client = OAuthClientInformationFull(
            client_id=ns.client_id,
            redirect_uris=[ns.redirect_uri],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code"],
            response_types=["code"],
        )
        metadata = OAuthClientMetadata(
            client_name="warden py_oauth_client",
            redirect_uris=[ns.redirect_uri],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code"],
            response_types=["code"],
        )
        return OAuthClientProvider(
            server_url=ns.url,
            client_metadata=metadata,
            storage=MemoryStorage(self, client),
            redirect_handler=browser.redirect_handler,
            callback_handler=browser.callback_v2 if SDK_MAJOR == 2 else browser.callback_v1,
        )

    def http_client(self, auth: OAuthClientProvider) -> Any:
        from mcp.shared._httpx_utils import create_mcp_http_client

        client = create_mcp_http_client(auth=auth)
        client.event_hooks = {"request": [self.on_request], "response": [self.on_response]}
        return client

    async def scenario(self, api: Any) -> None:
        ns = self.ns
        if ns.list:
            self.out["stage"] = "list"
            self.out["tools"] = await api.list_tools()
        for step in ns.steps:
            self.out["stage"] = f"call {step['name']}"
            rec: dict[str, Any] = {"name": step["name"], "args": step["args"], "authorizations_before": len(self.out["authorizations"])}
            self.out["calls"].append(rec)
            try:
                r = await api.call_tool(step["name"], step["args"])
                is_error = bool(getattr(r, "is_error", None) if SDK_MAJOR == 2 else r.isError)
                rec.update(ok=not is_error, is_error=is_error, text=text_of(r.content))
                if is_error:
                    self.out["errors"].append({"stage": self.out["stage"], "message": "tool returned isError", "text": rec["text"]})
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                rec.update(ok=False, error=err_info(e))
                self.out["errors"].append({"stage": self.out["stage"], **err_info(e)})
            rec["authorizations_after"] = len(self.out["authorizations"])
            last_mcp = next((h for h in reversed(self.out["http"]) if h["url"] == bare_url(ns.url)), None)
            rec["session"] = last_mcp["session"] if last_mcp else None
        self.out["stage"] = "done"

    async def main(self) -> None:
        browser = ScriptedBrowser(self)
        try:
            check_loopback(self.ns.url)
            if SDK_MAJOR == 2:
                await self.main_v2(browser)
            else:
                await self.main_v1(browser)
        finally:
            await browser.aclose()

    async def main_v2(self, browser: ScriptedBrowser) -> None:
        from mcp.client import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        mode = self.ns.protocol
        if mode not in ("legacy", "auto") and mode not in MODERN_PROTOCOL_VERSIONS:
            raise UsageError(f"--protocol {mode!r}: expected legacy, auto or one of {list(MODERN_PROTOCOL_VERSIONS)}")
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(self.http_client(self.provider(browser)))
            self.out["stage"] = "connect"
            client = Client(
                streamable_http_client(self.ns.url, http_client=http),
                mode=mode,
                cache=None,  # every request must reach the server
                read_timeout_seconds=self.ns.request_timeout,
                client_info=types.Implementation(name="warden-py-oauth-client", version=SDK_VERSION),
            )
            async with client:
                self.out["protocol_version"] = client.protocol_version
                await self.scenario(_V2Api(client))

    async def main_v1(self, browser: ScriptedBrowser) -> None:
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        if self.ns.protocol != "legacy":
            raise UsageError(f"--protocol {self.ns.protocol!r}: mcp {SDK_VERSION} speaks the session era only (legacy)")
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(self.http_client(self.provider(browser)))
            self.out["stage"] = "connect"
            streams = await stack.enter_async_context(streamable_http_client(self.ns.url, http_client=http))
            session = await stack.enter_async_context(
                ClientSession(
                    streams[0],
                    streams[1],
                    read_timeout_seconds=timedelta(seconds=self.ns.request_timeout),
                    client_info=types.Implementation(name="warden-py-oauth-client", version=SDK_VERSION),
                )
            )
            init = await session.initialize()
            self.out["protocol_version"] = init.protocolVersion
            await self.scenario(_V1Api(session))


class _V2Api:
    def __init__(self, client: Any) -> None:
        self.c = client

    async def list_tools(self) -> list[str]:
        names: list[str] = []
        cursor = None
        for _ in range(100):
            page = await self.c.list_tools(cursor=cursor)
            names.extend(t.name for t in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return names

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        return await self.c.call_tool(name, args)


class _V1Api:
    def __init__(self, session: Any) -> None:
        self.s = session

    async def list_tools(self) -> list[str]:
        names: list[str] = []
        cursor = None
        for _ in range(100):
            page = await (self.s.list_tools(params=types.PaginatedRequestParams(cursor=cursor)) if cursor else self.s.list_tools())
            names.extend(t.name for t in page.tools)
            cursor = page.nextCursor
            if not cursor:
                break
        return names

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        return await self.s.call_tool(name, args)


# ---------------------------------------------------------------------- main

_EMITTED = False


def emit(obj: dict[str, Any]) -> None:
    global _EMITTED
    if _EMITTED:
        return
    _EMITTED = True
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


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
    if code == 0 and (run.out["errors"] or run.out["stage"] != "done"):
        code = 1
    run.out["ok"] = code == 0
    run.out["elapsed_ms"] = round((time.monotonic() - run.t0) * 1000)
    emit(run.out)
    return code


def _hard_timeout(*_: Any) -> None:
    emit({"ok": False, "driver": "py_oauth_client", "stage": "teardown", "errors": [{"stage": "teardown", "type": "Timeout", "message": "hard timeout"}]})
    os._exit(3)


if __name__ == "__main__":
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

#!/usr/bin/env python3
"""A conformance reference server for Warden's tests, on the MCP Python SDK 2.x.

The conformance suite's server scenarios call fixtures by name (tool
`test_simple_text`, resource `test://static-text`, prompt `test_simple_prompt`,
...); its own "everything-server" that provides them is not published to any
package registry, and server-everything has none of them. This server
implements those fixtures from the scenario descriptions, so the suite can
exercise a server that passes, directly and through Warden.

Built on mcp 2.x it speaks both eras: the session era (initialize,
Mcp-Session-Id) and the stateless 2026-07-28 protocol (server/discover).

    $PY2 tests/peers/conformance_server.py --port 3101      # http://127.0.0.1:3101/mcp
    $PY2 tests/peers/conformance_server.py --stdio

Listens on 127.0.0.1 only, with Host/Origin checks (DNS-rebinding protection).
`--request-log FILE` (or $CONFORMANCE_SERVER_REQUEST_LOG) appends one JSON line
per received message to FILE, for tests that prove a request never got here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
from typing import Annotated, Any

import mcp_types as types
from pydantic import Field
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

# 1x1 red PNG and a tiny silent WAV.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
WAV = base64.b64encode(
    b"RIFF" + (36 + 8).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    + b"data" + (8).to_bytes(4, "little") + b"\x00" * 8
).decode()

mcp = MCPServer(
    name="warden-conformance-server",
    version="1.0.0",
    instructions="Fixtures for the MCP conformance suite's server scenarios (Warden test tree).",
)
low = mcp._lowlevel_server  # noqa: SLF001 - handlers MCPServer has no decorator for

# ------------------------------------------------------------------ tools


def _content(*blocks: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult.model_validate({"content": list(blocks)})


@mcp.tool(description="Returns simple text content")
def test_simple_text() -> types.CallToolResult:
    return _content({"type": "text", "text": "This is a simple text response for testing."})


@mcp.tool(description="Returns image content")
def test_image_content() -> types.CallToolResult:
    return _content({"type": "image", "data": PNG, "mimeType": "image/png"})


@mcp.tool(description="Returns audio content")
def test_audio_content() -> types.CallToolResult:
    return _content({"type": "audio", "data": WAV, "mimeType": "audio/wav"})


@mcp.tool(description="Returns an embedded resource")
def test_embedded_resource() -> types.CallToolResult:
    return _content(
        {
            "type": "resource",
            "resource": {"uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content."},
        }
    )


@mcp.tool(description="Returns text, image and resource content")
def test_multiple_content_types() -> types.CallToolResult:
    return _content(
        {"type": "text", "text": "Multiple content types test:"},
        {"type": "image", "data": PNG, "mimeType": "image/png"},
        {
            "type": "resource",
            "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json", "text": json.dumps({"test": "data", "value": 123})},
        },
    )


@mcp.tool(description="Sends three log messages while it runs")
async def test_tool_with_logging(ctx: Context) -> str:
    for i, text in enumerate(["Tool execution started", "Tool processing data", "Tool execution completed"]):
        if i:
            await asyncio.sleep(0.05)
        await ctx.session.send_log_message(level="info", data=text, logger="conformance", related_request_id=ctx.request_id)
    return "Tool with logging executed successfully"


@mcp.tool(description="Diagnostic (SEP-2575): logs while it runs; a 2026-07-28 request without a logLevel in _meta must get no log message")
async def test_logging_tool(ctx: Context) -> str:
    await ctx.session.send_log_message(level="info", data="diagnostic log line", logger="conformance", related_request_id=ctx.request_id)
    return "logged"


@mcp.tool(description="Echoes a region that is mirrored in the Mcp-Param-Region header (SEP-2243 x-mcp-header)")
def test_custom_header(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
    return f"region: {region}"


@mcp.tool(description="Reports progress 0, 50, 100 of 100")
async def test_tool_with_progress(ctx: Context) -> str:
    for i, p in enumerate([0, 50, 100]):
        if i:
            await asyncio.sleep(0.05)
        await ctx.report_progress(p, 100)
    return "Tool with progress executed successfully"


@mcp.tool(description="Always fails")
def test_error_handling() -> types.CallToolResult:
    return types.CallToolResult.model_validate(
        {"isError": True, "content": [{"type": "text", "text": "This tool intentionally returns an error for testing"}]}
    )


# -- asking the client: server-to-client requests in the session era, an
#    InputRequiredResult (multi-round trip, SEP-2322) in the 2026-07-28 era.


def _modern(ctx: Context) -> bool:
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


class _Ask(Exception):
    def __init__(self, result: types.InputRequiredResult) -> None:
        self.result = result


def _answer_or_ask(ctx: Context, key: str, method: str, params: dict[str, Any]) -> Any:
    """Modern era: the client's answer for `key` if this is the retry, else raise _Ask."""
    responses = ctx.input_responses or {}
    if key in responses:
        return responses[key]
    raise _Ask(types.InputRequiredResult.model_validate({"resultType": "input_required", "inputRequests": {key: {"method": method, "params": params}}}))


async def _sample(ctx: Context, key: str, prompt: str) -> Any:
    params = {"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": 100}
    if _modern(ctx):
        return _answer_or_ask(ctx, key, "sampling/createMessage", params)
    return await ctx.session.create_message(
        messages=[types.SamplingMessage.model_validate(m) for m in params["messages"]],
        max_tokens=100,
        related_request_id=ctx.request_id,
    )


async def _elicit(ctx: Context, message: str, schema: dict[str, Any], key: str = "elicitation") -> Any:
    if _modern(ctx):
        return _answer_or_ask(ctx, key, "elicitation/create", {"message": message, "requestedSchema": schema})
    return await ctx.session.elicit_form(
        message=message,
        requested_schema=schema,  # type: ignore[arg-type]
        related_request_id=ctx.request_id,
    )


async def _roots(ctx: Context, key: str) -> Any:
    if _modern(ctx):
        return _answer_or_ask(ctx, key, "roots/list", {})
    return await ctx.session.list_roots()


def _asks(fn: Any) -> Any:
    """Turn _Ask into the tool's InputRequiredResult."""
    import functools

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except _Ask as ask:
            return ask.result

    return wrapper


def _text(result: Any) -> str:
    content = getattr(result, "content", None)
    if isinstance(content, list):
        content = next((c for c in content if getattr(c, "type", None) == "text"), None)
    return content.text if getattr(content, "type", None) == "text" else json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True))


@mcp.tool(description="Asks the client to sample an LLM")
@_asks
async def test_sampling(prompt: str, ctx: Context) -> Any:
    return f"LLM response: {_text(await _sample(ctx, 'sampling', prompt))}"


@mcp.tool(description="Asks the client for input (elicitation)")
@_asks
async def test_elicitation(message: str, ctx: Context) -> Any:
    r = await _elicit(
        ctx,
        message,
        {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        },
    )
    return f"User response: action={r.action}, content={json.dumps(r.content)}"


@mcp.tool(description="Elicitation with defaults for every primitive type (SEP-1034)")
@_asks
async def test_elicitation_sep1034_defaults(ctx: Context) -> Any:
    r = await _elicit(
        ctx,
        "Please review and update the form fields with defaults",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Verification status", "default": True},
            },
            "required": [],
        },
    )
    return f"Elicitation completed: action={r.action}, content={json.dumps(r.content)}"


@mcp.tool(description="Elicitation with all five enum variants (SEP-1330)")
@_asks
async def test_elicitation_sep1330_enums(ctx: Context) -> Any:
    r = await _elicit(
        ctx,
        "Please select options from the enum fields",
        {
            "type": "object",
            "properties": {
                "untitledSingle": {"type": "string", "description": "Untitled single-select", "enum": ["option1", "option2", "option3"]},
                "titledSingle": {
                    "type": "string",
                    "description": "Titled single-select",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Legacy titled enum",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Untitled multi-select",
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Titled multi-select",
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"},
                        ]
                    },
                },
            },
            "required": [],
        },
    )
    return f"Elicitation completed: action={r.action}, content={json.dumps(r.content)}"


@mcp.tool(description="Asks the client for its name (elicitation; an InputRequiredResult in 2026-07-28)")
@_asks
async def test_input_required_result_elicitation(ctx: Context) -> Any:
    r = await _elicit(ctx, "What is your name?", {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}, key="user_name")
    return f"Hello, {(r.content or {}).get('name')}!"


@mcp.tool(description="Diagnostic (SEP-2575): elicits while the request stream is open (an InputRequiredResult in 2026-07-28, never a request on the stream)")
@_asks
async def test_streaming_elicitation(ctx: Context) -> Any:
    r = await _elicit(ctx, "Continue?", {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}, key="confirm")
    return f"confirmed: {(r.content or {}).get('ok')}"


@mcp.tool(description="Asks the client to sample (an InputRequiredResult in 2026-07-28)")
@_asks
async def test_input_required_result_sampling(ctx: Context) -> Any:
    return _text(await _sample(ctx, "capital_question", "What is the capital of France?"))


@mcp.tool(description="Asks the client for its roots (an InputRequiredResult in 2026-07-28)")
@_asks
async def test_input_required_result_list_roots(ctx: Context) -> Any:
    r = await _roots(ctx, "client_roots")
    return "Roots: " + ", ".join(str(root.uri) for root in r.roots)


# -- the 2026-07-28 multi-round-trip fixtures (SEP-2322) and the stateless
#    diagnostic tool (SEP-2575). In 2026-07-28 each round is one stateless
#    request: what the server needs next is an InputRequiredResult whose
#    `requestState` carries everything it must remember (the SDK's
#    RequestStateBoundary seals it with AES-GCM on the way out and verifies it
#    on the way back in: a tampered or foreign state is -32602 "Invalid or
#    expired requestState" before the tool runs). In the session era the same
#    tools ask with real server-to-client requests on the client's session.


def _state(tool: str, round_: int, **data: Any) -> str:
    """The plaintext of a requestState (sealed by the SDK before it leaves)."""
    return json.dumps({"tool": tool, "round": round_, **data}, separators=(",", ":"))


def _check_state(ctx: Context, tool: str, round_: int) -> dict[str, Any]:
    """The echoed requestState of round `round_` of `tool`, or -32602."""
    from mcp.shared.exceptions import MCPError

    raw = ctx.request_state
    try:
        state = json.loads(raw) if raw is not None else None
    except ValueError:
        state = None
    if not isinstance(state, dict) or state.get("tool") != tool or state.get("round") != round_:
        raise MCPError(code=types.INVALID_PARAMS, message=f"{tool}: missing or wrong requestState for round {round_}")
    return state


def _ask_for(requests: dict[str, tuple[str, dict[str, Any]]], state: str | None) -> types.InputRequiredResult:
    body: dict[str, Any] = {
        "resultType": "input_required",
        "inputRequests": {k: {"method": m, "params": p} for k, (m, p) in requests.items()},
    }
    if state is not None:
        body["requestState"] = state
    return types.InputRequiredResult.model_validate(body)


async def _session_ask(ctx: Context, method: str, params: dict[str, Any]) -> Any:
    """Session era: the same request as a real server-to-client request."""
    if method == "elicitation/create":
        return await ctx.session.elicit_form(
            message=params["message"],
            requested_schema=params["requestedSchema"],  # type: ignore[arg-type]
            related_request_id=ctx.request_id,
        )
    if method == "sampling/createMessage":
        return await ctx.session.create_message(
            messages=[types.SamplingMessage.model_validate(m) for m in params["messages"]],
            max_tokens=params["maxTokens"],
            related_request_id=ctx.request_id,
        )
    return await ctx.session.list_roots()


def _elicit_params(message: str, field: str, type_: str = "string") -> dict[str, Any]:
    return {"message": message, "requestedSchema": {"type": "object", "properties": {field: {"type": type_}}, "required": [field]}}


def _accepted(r: Any, field: str) -> Any:
    if getattr(r, "action", None) != "accept":
        return None
    return (getattr(r, "content", None) or {}).get(field)


CONFIRM = _elicit_params("Please confirm", "ok", "boolean")


@mcp.tool(description="Diagnostic (SEP-2575): needs the client's sampling capability; without it -32021 MissingRequiredClientCapability")
@_asks
async def test_missing_capability(ctx: Context) -> Any:
    from mcp.shared.exceptions import MCPError

    caps = ctx.client_capabilities
    if caps is None or caps.sampling is None:
        raise MCPError(
            code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="test_missing_capability requires the client's sampling capability",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return f"LLM response: {_text(await _sample(ctx, 'sampling', 'test_missing_capability'))}"


async def _confirm_with_state(ctx: Context, tool: str, verified: str) -> Any:
    """One confirmation, asked with a sealed requestState that the retry must bring back."""
    if not _modern(ctx):
        r = await _session_ask(ctx, "elicitation/create", CONFIRM)
        return f"confirmed: ok={json.dumps(_accepted(r, 'ok'))} (session era: no requestState)"
    responses = ctx.input_responses or {}
    if "confirm" not in responses:
        return _ask_for({"confirm": ("elicitation/create", CONFIRM)}, _state(tool, 1))
    _check_state(ctx, tool, 1)
    return f"state-ok: {verified}, confirmed: ok={json.dumps(_accepted(responses['confirm'], 'ok'))}"


@mcp.tool(description="Asks for a confirmation with a requestState; the retry must echo it (SEP-2322)")
@_asks
async def test_input_required_result_request_state(ctx: Context) -> Any:
    return await _confirm_with_state(ctx, "test_input_required_result_request_state", "requestState verified")


MULTIPLE = {
    "user_name": ("elicitation/create", _elicit_params("What is your name?", "name")),
    "greeting": (
        "sampling/createMessage",
        {"messages": [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}], "maxTokens": 50},
    ),
    "client_roots": ("roots/list", {}),
}


def _multiple_text(answers: dict[str, Any]) -> str:
    roots = getattr(answers["client_roots"], "roots", None) or []
    return (
        f"Hello, {_accepted(answers['user_name'], 'name')}! "
        f"Greeting: {_text(answers['greeting'])}. "
        f"Roots: {', '.join(str(r.uri) for r in roots)}"
    )


@mcp.tool(description="Asks for a name (elicitation), a greeting (sampling) and the roots at once (SEP-2322)")
@_asks
async def test_input_required_result_multiple_inputs(ctx: Context) -> Any:
    tool = "test_input_required_result_multiple_inputs"
    if not _modern(ctx):
        return _multiple_text({k: await _session_ask(ctx, m, p) for k, (m, p) in MULTIPLE.items()})
    responses = ctx.input_responses or {}
    if not responses:
        return _ask_for(MULTIPLE, _state(tool, 1))
    _check_state(ctx, tool, 1)
    missing = {k: v for k, v in MULTIPLE.items() if k not in responses}
    if missing:  # a partial answer: ask again for what is missing
        return _ask_for(missing, _state(tool, 1))
    return _multiple_text(responses)


STEP1 = _elicit_params("Step 1: What is your name?", "name")
STEP2 = _elicit_params("Step 2: What is your favorite color?", "color")


@mcp.tool(description="Two elicitation rounds; the requestState carries round 1's answer into round 3 (SEP-2322)")
@_asks
async def test_input_required_result_multi_round(ctx: Context) -> Any:
    tool = "test_input_required_result_multi_round"
    if not _modern(ctx):
        name = _accepted(await _session_ask(ctx, "elicitation/create", STEP1), "name")
        color = _accepted(await _session_ask(ctx, "elicitation/create", STEP2), "color")
        return f"Hello, {name}! Your favorite color is {color}."
    responses = ctx.input_responses or {}
    if "step2" in responses:
        state = _check_state(ctx, tool, 2)
        return f"Hello, {state.get('name')}! Your favorite color is {_accepted(responses['step2'], 'color')}."
    if "step1" in responses:
        _check_state(ctx, tool, 1)
        name = _accepted(responses["step1"], "name")
        return _ask_for({"step2": ("elicitation/create", STEP2)}, _state(tool, 2, name=name))
    return _ask_for({"step1": ("elicitation/create", STEP1)}, _state(tool, 1))


@mcp.tool(description="Asks for a confirmation with an integrity-protected requestState; a tampered one is -32602 (SEP-2322)")
@_asks
async def test_input_required_result_tampered_state(ctx: Context) -> Any:
    # A tampered token never reaches the check: the SDK's boundary fails its AES-GCM check (-32602).
    return await _confirm_with_state(ctx, "test_input_required_result_tampered_state", "integrity verified")


CAPABILITY_ASKS = {
    "elicitation": ("user_name", MULTIPLE["user_name"]),
    "sampling": ("greeting", MULTIPLE["greeting"]),
    "roots": ("client_roots", MULTIPLE["client_roots"]),
}


def _declared(ctx: Context) -> list[str]:
    caps = ctx.client_capabilities
    return [c for c in CAPABILITY_ASKS if caps is not None and getattr(caps, c, None) is not None]


def _capabilities_text(answers: dict[str, Any]) -> str:
    if not answers:
        return "Nothing asked: the client declared none of elicitation, sampling, roots"
    return "Answered: " + ", ".join(sorted(answers))


@mcp.tool(description="Asks only for what the client declared (elicitation, sampling, roots) (SEP-2322)")
@_asks
async def test_input_required_result_capabilities(ctx: Context) -> Any:
    tool = "test_input_required_result_capabilities"
    asks = dict(CAPABILITY_ASKS[c] for c in _declared(ctx))
    if not _modern(ctx):
        return _capabilities_text({k: await _session_ask(ctx, m, p) for k, (m, p) in asks.items()})
    responses = ctx.input_responses or {}
    if not asks:
        return _capabilities_text({})
    if not responses:
        return _ask_for(asks, _state(tool, 1, asked=sorted(asks)))
    state = _check_state(ctx, tool, 1)
    missing = {k: CAPABILITY_ASKS[c][1] for c, (k, _) in CAPABILITY_ASKS.items() if k in state.get("asked", []) and k not in responses}
    if missing:
        return _ask_for(missing, _state(tool, 1, asked=state.get("asked", [])))
    return _capabilities_text({k: responses[k] for k in state.get("asked", [])})


# -------------------------------------------------------------- resources


@mcp.resource("test://static-text", name="static-text", description="A static text resource", mime_type="text/plain")
def static_text() -> str:
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", name="static-binary", description="A static binary resource (PNG)", mime_type="image/png")
def static_binary() -> bytes:
    return base64.b64decode(PNG)


@mcp.resource("test://watched-resource", name="watched-resource", description="A resource to subscribe to", mime_type="text/plain")
def watched_resource() -> str:
    return "Watched resource content."


@mcp.resource("test://template/{id}/data", name="template-data", description="A templated resource", mime_type="application/json")
def template_data(id: str) -> str:  # noqa: A002 - the template's parameter name
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


SUBSCRIPTIONS: set[str] = set()


async def _subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    SUBSCRIPTIONS.add(str(params.uri))
    return types.EmptyResult()


async def _unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    SUBSCRIPTIONS.discard(str(params.uri))
    return types.EmptyResult()


async def _set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, _subscribe)
low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, _unsubscribe)
low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_level)

# ---------------------------------------------------------------- prompts


@mcp.prompt(description="A simple prompt without arguments")
def test_simple_prompt() -> list[dict[str, Any]]:
    return [{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}]


@mcp.prompt(description="A prompt with two required arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": {"type": "text", "text": f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"}}]


@mcp.prompt(description="A prompt embedding a resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[dict[str, Any]]:  # noqa: N803 - the spec'd argument name
    return [
        {"role": "user", "content": {"type": "resource", "resource": {"uri": resourceUri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
        {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}},
    ]


@mcp.prompt(description="A prompt with an image")
def test_prompt_with_image() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
        {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}},
    ]


USER_CONTEXT = _elicit_params("What context should the prompt use?", "context")


@mcp.prompt(description="Asks the client for context (elicitation; an InputRequiredResult in 2026-07-28) (SEP-2322)")
async def test_input_required_result_prompt(ctx: Context) -> Any:
    if _modern(ctx):
        responses = ctx.input_responses or {}
        if "user_context" not in responses:
            return _ask_for({"user_context": ("elicitation/create", USER_CONTEXT)}, None)
        answer = responses["user_context"]
    else:
        answer = await _session_ask(ctx, "elicitation/create", USER_CONTEXT)
    return [{"role": "user", "content": {"type": "text", "text": f"Prompt with context: {_accepted(answer, 'context')}"}}]


@mcp.completion()
async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
    words = ["paris", "park", "party"]
    return types.Completion(values=[w for w in words if w.startswith(argument.value or "")], total=None, has_more=False)


# ------------------------------------------------------------------- main


class RequestLog:
    """ASGI wrapper: appends one JSON line per message that reaches this server.

    For Warden's tests that prove a refused request never reached an upstream:
    every HTTP request is logged before the MCP transport sees it (so also one
    the transport itself would refuse): `{"http": "POST", "method", "name",
    "id", "request_state": bool, "mcp_method", "mcp_name", "protocol_version"}`
    per JSON-RPC message (`name` is params.name, or params.uri for
    resources/read; a response from the client has `"method": null`), and
    `{"http": "GET"|"DELETE", ...}` for the other HTTP methods.
    """

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path

    def _write(self, records: list[dict[str, Any]]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        base = {
            "http": scope["method"],
            "path": scope.get("path"),
            "mcp_method": headers.get("mcp-method"),
            "mcp_name": headers.get("mcp-name"),
            "protocol_version": headers.get("mcp-protocol-version"),
            "mcp_params": {k[len("mcp-param-"):]: v for k, v in headers.items() if k.startswith("mcp-param-")},
        }
        if scope["method"] != "POST":
            self._write([base])
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        first: list[Any] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                first.append(message)
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        records = []
        for m in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(m, dict):
                records.append({**base, "method": None, "unparsed": True})
                continue
            params = m.get("params") if isinstance(m.get("params"), dict) else {}
            records.append(
                {
                    **base,
                    "method": m.get("method"),
                    "id": m.get("id"),
                    "name": params.get("name", params.get("uri")),
                    "request_state": "requestState" in params,
                }
            )
        self._write(records)
        pending = [{"type": "http.request", "body": body, "more_body": False}, *first]

        async def replay() -> Any:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=3101)
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1", "localhost"])
    p.add_argument("--stdio", action="store_true")
    p.add_argument(
        "--request-log",
        default=os.environ.get("CONFORMANCE_SERVER_REQUEST_LOG") or None,
        metavar="FILE",
        help="HTTP only: append one JSON line per received message (method, params.name, ...) to FILE "
        "(default: $CONFORMANCE_SERVER_REQUEST_LOG; off when unset)",
    )
    ns = p.parse_args(argv)
    if ns.stdio:
        mcp.run("stdio")
        return
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
        allowed_origins=["http://127.0.0.1", "http://127.0.0.1:*", "http://localhost", "http://localhost:*", "http://[::1]", "http://[::1]:*"],
    )
    app: Any = mcp.streamable_http_app(transport_security=security, host=ns.host)
    if ns.request_log:
        app = RequestLog(app, ns.request_log)
    print(f"conformance server on http://{ns.host}:{ns.port}/mcp", file=sys.stderr, flush=True)
    import uvicorn

    uvicorn.run(app, host=ns.host, port=ns.port, log_level=mcp.settings.log_level.lower())


if __name__ == "__main__":
    main(sys.argv[1:])

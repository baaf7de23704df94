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
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from typing import Any

import mcp_types as types
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


@mcp.tool(description="Asks the client to sample (an InputRequiredResult in 2026-07-28)")
@_asks
async def test_input_required_result_sampling(ctx: Context) -> Any:
    return _text(await _sample(ctx, "capital_question", "What is the capital of France?"))


@mcp.tool(description="Asks the client for its roots (an InputRequiredResult in 2026-07-28)")
@_asks
async def test_input_required_result_list_roots(ctx: Context) -> Any:
    r = await _roots(ctx, "client_roots")
    return "Roots: " + ", ".join(str(root.uri) for root in r.roots)


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


@mcp.completion()
async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
    words = ["paris", "park", "party"]
    return types.Completion(values=[w for w in words if w.startswith(argument.value or "")], total=None, has_more=False)


# ------------------------------------------------------------------- main


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=3101)
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1", "localhost"])
    p.add_argument("--stdio", action="store_true")
    ns = p.parse_args(argv)
    if ns.stdio:
        mcp.run("stdio")
        return
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
        allowed_origins=["http://127.0.0.1", "http://127.0.0.1:*", "http://localhost", "http://localhost:*", "http://[::1]", "http://[::1]:*"],
    )
    print(f"conformance server on http://{ns.host}:{ns.port}/mcp", file=sys.stderr, flush=True)
    mcp.run("streamable-http", host=ns.host, port=ns.port, transport_security=security)


if __name__ == "__main__":
    main(sys.argv[1:])

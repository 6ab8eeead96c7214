"""The MCP server: the generated tools, served with the official SDK's low-level ``Server``.

``tools/list`` answers the tool definitions of ``generated/mcp/tools.json``
as they are (each parsed once by ``mcp.types.Tool``). ``tools/call`` goes
through the same :class:`~s402gen.runtime.service.ServiceRuntime` as the
HTTP routes: the same validation and messages, ledger and upstream client.
A call without ``paymentToken`` answers ``isError`` with the 402 body as
``structuredContent`` (``{error, payment}``), so an agent can pay with the
``create_payment`` tool and call again. Served over stdio (``s402gen mcp``)
and over streamable HTTP at ``/mcp`` of the app (``s402gen serve``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from . import protocol
from .service import PaymentNeeded, ServiceRuntime, UnknownService, UpstreamFailed
from .validation import RequestError

SERVER_NAME = "server402"


def load_tools(generated_dir: Path) -> list[types.Tool]:
    """The generated tool definitions, in their file's order."""
    raw = json.loads((Path(generated_dir) / "mcp" / "tools.json").read_text(encoding="utf-8"))
    return [types.Tool.model_validate(tool) for tool in raw]


def _result(data: dict[str, Any], is_error: bool = False) -> types.CallToolResult:
    text = json.dumps(data, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=data,
        is_error=is_error,
    )


def build_mcp_server(tools: list[types.Tool], runtime: ServiceRuntime) -> Server:
    """A low-level MCP server for ``tools``, calling through ``runtime``."""
    specs = {spec.tool_name: spec for spec in runtime.specs}
    listing = types.ListToolsResult(tools=tools)

    async def on_list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing

    async def on_call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        if params.name == protocol.CREATE_PAYMENT_TOOL:
            return await anyio.to_thread.run_sync(_create_payment, runtime, arguments)
        if params.name == protocol.VERIFY_PAYMENT_TOOL:
            return await anyio.to_thread.run_sync(_verify_payment, runtime, arguments)
        spec = specs.get(params.name)
        if spec is None:
            return _result({"error": f"unknown tool {params.name!r}"}, is_error=True)
        token = arguments.pop(protocol.MCP_ARGUMENT, None)
        if token is not None and not isinstance(token, str):
            return _result({"error": "paymentToken must be a string"}, is_error=True)
        try:
            if token:
                envelope = await anyio.to_thread.run_sync(
                    runtime.call, spec, arguments, token, None
                )
            else:  # the payment-required answer needs neither the ledger nor the upstream
                envelope = runtime.call(spec, arguments, None, None)
        except RequestError as exc:
            return _result({"error": str(exc)}, is_error=True)
        except PaymentNeeded as exc:
            return _result(exc.answer.to_json(), is_error=True)
        except UpstreamFailed as exc:
            failure = {"error": "upstream error", "code": exc.code, "message": exc.message}
            return _result(failure | {"requestId": exc.request_id}, is_error=True)
        return _result(envelope.to_json())

    return Server(
        SERVER_NAME,
        version="1",
        instructions="Paid API tools: call a tool without paymentToken to learn its price, "
        "pay with create_payment, then call it again with paymentToken.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _create_payment(runtime: ServiceRuntime, arguments: dict[str, Any]) -> types.CallToolResult:
    service_id = arguments.get("serviceId")
    if not isinstance(service_id, str):
        return _result({"error": "serviceId is required"}, is_error=True)
    try:
        payment = runtime.create_payment(service_id, arguments.get("providerId"), None)
    except UnknownService:
        return _result({"error": f"unknown service {service_id!r}"}, is_error=True)
    except RequestError as exc:
        return _result({"error": str(exc)}, is_error=True)
    return _result(payment.to_json())


def _verify_payment(runtime: ServiceRuntime, arguments: dict[str, Any]) -> types.CallToolResult:
    payment_id = arguments.get("paymentId")
    payment = runtime.verify_payment(payment_id) if isinstance(payment_id, str) else None
    if payment is None:
        return _result({"error": f"unknown payment {payment_id!r}"}, is_error=True)
    return _result(payment.to_json())


async def serve_stdio(server: Server) -> None:
    """Serve ``server`` on this process's stdin and stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())

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
from .contract import PaymentRequired
from .payments import payment_required
from .service import PaymentNeeded, ServiceRuntime, UnknownService, UpstreamFailed
from .validation import RequestError

SERVER_NAME = "server402"


def load_tools(generated_dir: Path) -> list[types.Tool]:
    """The generated tool definitions, in their file's order."""
    raw = json.loads((Path(generated_dir) / "mcp" / "tools.json").read_text(encoding="utf-8"))
    return [types.Tool.model_validate(tool) for tool in raw]


def _result(
    data: dict[str, Any], is_error: bool = False, *, x402_text: str | None = None, meta: Any = None
) -> types.CallToolResult:
    text = json.dumps(data, ensure_ascii=False)
    content = [types.TextContent(type="text", text=text)]
    if x402_text is not None:  # x402's MCP client reads the offer from a text with `accepts`
        content.append(types.TextContent(type="text", text=x402_text))
    return types.CallToolResult(
        content=content, structured_content=data, is_error=is_error, meta=meta
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
            return await anyio.to_thread.run_sync(_verify_payment, runtime, arguments, params.meta)
        spec = specs.get(params.name)
        if spec is None:
            return _result({"error": f"unknown tool {params.name!r}"}, is_error=True)
        token = arguments.pop(protocol.MCP_ARGUMENT, None)
        if token is not None and not isinstance(token, str):
            return _result({"error": "paymentToken must be a string"}, is_error=True)
        try:
            signature = _x402_signature(runtime, spec, params.meta) if not token else None
            if signature:  # x402's MCP transport: the payment in _meta["x402/payment"]
                paid = await anyio.to_thread.run_sync(
                    runtime.call_paid, spec, arguments, signature, None
                )
                return _result(paid.envelope.to_json(), meta=_x402_meta(paid))
            if token:
                envelope = await anyio.to_thread.run_sync(
                    runtime.call, spec, arguments, token, None
                )
            else:  # the payment-required answer needs neither the ledger nor the upstream
                envelope = runtime.call(spec, arguments, None, None)
        except RequestError as exc:
            return _result({"error": str(exc)}, is_error=True)
        except PaymentNeeded as exc:
            offer = None
            if runtime.x402_offered(spec):
                from .x402 import mcp_required_text

                offer = mcp_required_text(runtime.x402, spec, exc.x402_error or exc.answer.error)
            return _result(exc.answer.to_json(), is_error=True, x402_text=offer)
        except UpstreamFailed as exc:
            failure = {"error": "upstream error", "code": exc.code, "message": exc.message}
            failure |= {"requestId": exc.request_id}
            if exc.payment is not None:  # settled through x402: its token retries for free
                failure["payment"] = exc.payment.to_json()
            return _result(failure, is_error=True)
        return _result(envelope.to_json())

    return Server(
        SERVER_NAME,
        version="1",
        instructions="Paid API tools: call a tool without paymentToken to learn its price, "
        "pay with create_payment, then call it again with paymentToken.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _x402_signature(runtime: ServiceRuntime, spec: Any, meta: Any) -> str | None:
    """The x402 payment of a call's ``_meta``, as a PAYMENT-SIGNATURE value (else ``None``)."""
    if not meta or not runtime.x402_offered(spec):
        return None
    from .x402 import X402Refused, mcp_payment_header

    try:
        return mcp_payment_header(meta)
    except X402Refused as exc:
        answer = PaymentRequired(error="payment required", payment=payment_required(spec))
        raise PaymentNeeded(answer, exc.reason) from None


def _x402_meta(paid: Any) -> dict[str, Any]:
    from .x402 import mcp_response_meta

    return mcp_response_meta(paid.payment_response)


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
    offer = None
    spec = runtime.spec(payment.service_id)
    if payment.status == "pending" and runtime.x402_offered(spec):
        from .x402 import mcp_required_text

        offer = mcp_required_text(runtime.x402, spec, None)  # pay it with verify_payment
    return _result(payment.to_json(), x402_text=offer)


def _verify_payment(
    runtime: ServiceRuntime, arguments: dict[str, Any], meta: Any = None
) -> types.CallToolResult:
    """The payment's record; with an x402 payment in ``_meta``, a pending one is paid first."""
    payment_id = arguments.get("paymentId")
    payment = runtime.verify_payment(payment_id) if isinstance(payment_id, str) else None
    if payment is None:
        return _result({"error": f"unknown payment {payment_id!r}"}, is_error=True)
    spec = runtime.spec(payment.service_id)
    try:
        signature = _x402_signature(runtime, spec, meta)
        if signature:
            paid = runtime.pay_payment(payment.payment_id, signature)
            assert paid is not None
            from .x402 import mcp_response_meta

            return _result(paid[0].to_json(), meta=mcp_response_meta(paid[1]))
    except PaymentNeeded as exc:
        from .x402 import mcp_required_text

        text = mcp_required_text(runtime.x402, spec, exc.x402_error or exc.answer.error)
        return _result(exc.answer.to_json(), is_error=True, x402_text=text)
    return _result(payment.to_json())


async def serve_stdio(server: Server) -> None:
    """Serve ``server`` on this process's stdin and stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())

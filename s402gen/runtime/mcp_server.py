"""The MCP server: the generated tools, served with the official SDK's low-level ``Server``.

``tools/list`` answers the tool definitions of ``generated/mcp/tools.json``
as they are (each parsed once by ``mcp.types.Tool``). ``tools/call`` goes
through the same :class:`~s402gen.runtime.service.ServiceRuntime` as the
HTTP routes: the same validation and messages, ledger and upstream client.
A call without ``paymentToken`` answers ``isError`` with the 402 body as
``structuredContent`` (``{error, payment}``), so an agent can pay with the
``create_payment`` tool and call again. Every ``structuredContent`` is one
of the output contract's documents (success envelope, payment required,
upstream failure, error) and each tool's ``outputSchema`` lists them all,
so clients that check results against it (the TypeScript SDK) accept them.
An unknown tool is a JSON-RPC error (``-32602``), as in the spec's example;
``tools/list`` answers :data:`PAGE_SIZE` tools a page, with ``nextCursor``.
Served over stdio (``s402gen mcp``) and over streamable HTTP at ``/mcp`` of
the app (``s402gen serve``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload


import anyio
import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from . import contract, protocol
from .payments import payment_required
from .service import PaymentNeeded, ServiceRuntime, UnknownService, UpstreamFailed
from .validation import RequestError

SERVER_NAME = "server402"
#: Tools per ``tools/list`` page; the next page's cursor is the offset, as a decimal string.
PAGE_SIZE = 100


class ToolList(Sequence[types.Tool]):
    """The tool definitions of ``generated/mcp/tools.json``, read on first use (not at
    start) and kept as their JSON text, each parsed by ``mcp.types.Tool`` when a
    ``tools/list`` page or a lookup reaches it: thousands of tools stay small in memory.

    Raises ``OSError`` or ``ValueError`` (on first use) when the file is missing or
    not a JSON array of objects.
    """

    def __init__(self, path: Path):
        self.path = path
        self._texts: list[bytes] | None = None
        self._lock = threading.Lock()

    def _load(self) -> list[bytes]:
        with self._lock:
            if self._texts is None:
                text = self.path.read_text(encoding="utf-8")
                self._texts = _array_items(text, self.path)
            return self._texts

    def __len__(self) -> int:
        return len(self._load())

    @overload
    def __getitem__(self, index: int) -> types.Tool: ...
    @overload
    def __getitem__(self, index: slice) -> list[types.Tool]: ...
    def __getitem__(self, index: int | slice) -> types.Tool | list[types.Tool]:
        if isinstance(index, slice):
            return [types.Tool.model_validate_json(t) for t in self._load()[index]]
        return types.Tool.model_validate_json(self._load()[index])


def _array_items(text: str, where: Path) -> list[bytes]:
    """The JSON text of each object of the JSON array ``text``, decoded one at a time by
    the standard library's decoder (``raw_decode``), so no whole-file tree is built."""
    decoder = json.JSONDecoder()
    items: list[bytes] = []
    try:
        at = text.index("[") + 1
        while True:
            while text[at] in " \t\r\n,":
                at += 1
            if text[at] == "]":
                return items
            item, end = decoder.raw_decode(text, at)
            if not isinstance(item, dict):
                raise ValueError("an item is not a JSON object")
            items.append(text[at:end].encode("utf-8"))
            at = end
    except (IndexError, ValueError) as exc:
        raise ValueError(f"{where} is not a JSON array of objects: {exc}") from None


def load_tools(generated_dir: Path) -> ToolList:
    """The generated tool definitions, in their file's order (a :class:`ToolList`)."""
    return ToolList(Path(generated_dir) / "mcp" / "tools.json")


def _result(
    answer: contract.Contract,
    is_error: bool = False,
    *,
    x402_text: str | None = None,
    meta: Any = None,
) -> types.CallToolResult:
    """A tool result: ``answer`` as structured content and as text; ``x402_text`` (x402's
    payment offer, for x402's MCP client) as a second text; ``meta`` the result's ``_meta``."""
    data = answer.to_json()
    text = json.dumps(data, ensure_ascii=False)
    content = [types.TextContent(type="text", text=text)]
    if x402_text is not None:  # x402's MCP client reads the offer from a text with `accepts`
        content.append(types.TextContent(type="text", text=x402_text))
    return types.CallToolResult(
        content=content, structured_content=data, is_error=is_error, meta=meta
    )


def _error(message: str) -> types.CallToolResult:
    return _result(contract.ErrorAnswer(error=message), is_error=True)


def list_page(tools: Sequence[types.Tool], cursor: str | None, size: int) -> types.ListToolsResult:
    """One ``tools/list`` page: ``size`` tools from offset ``cursor`` (``None``: the first).

    ``nextCursor`` is the next page's offset, absent on the last page.
    Raises ``MCPError`` (``-32602``, invalid params) for a cursor this
    server did not hand out, as the spec's pagination section asks.
    """
    start = 0
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()) or int(cursor) >= len(tools):
            raise MCPError(code=types.INVALID_PARAMS, message=f"invalid cursor {cursor!r}")
        start = int(cursor)
    end = start + size
    return types.ListToolsResult(
        tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
    )


def build_mcp_server(
    tools: Sequence[types.Tool],
    runtime: ServiceRuntime,
    page_size: int = PAGE_SIZE,
    *,
    search: Any = None,
) -> Server:
    """A low-level MCP server for ``tools``, calling through ``runtime``; ``page_size``
    tools a ``tools/list`` page.

    With ``search`` (a :class:`~s402gen.runtime.search.CatalogSearch`), the
    discovery mode: ``tools/list`` answers only the search and call tools of
    :mod:`s402gen.runtime.mcp_discovery` and the payment tools; every service
    stays callable through the call tool (and by its own name).
    """
    specs = {spec.tool_name: spec for spec in runtime.specs}
    discovery = None
    listed = tools
    if search is not None:
        from .mcp_discovery import Discovery

        discovery = Discovery(runtime, search)
        listed = discovery.listed(tools)

    async def on_list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return list_page(listed, params.cursor if params else None, page_size)

    async def on_call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        if params.name == protocol.CREATE_PAYMENT_TOOL:
            return await anyio.to_thread.run_sync(_create_payment, runtime, arguments)
        if params.name == protocol.VERIFY_PAYMENT_TOOL:
            return await anyio.to_thread.run_sync(_verify_payment, runtime, arguments, params.meta)
        if discovery is not None and params.name in discovery.tools:
            return await discovery.call(params.name, arguments, params.meta)
        spec = specs.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        return await call_service(runtime, spec, arguments, params.meta)

    return Server(
        SERVER_NAME,
        version="1",
        instructions="Paid API tools: call a tool without paymentToken to learn its price, "
        "pay with create_payment, then call it again with paymentToken.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


async def call_service(
    runtime: ServiceRuntime, spec: Any, arguments: dict[str, Any], meta: Any
) -> types.CallToolResult:
    """One service's ``tools/call``: ``arguments`` with the optional ``paymentToken``, or an
    x402 payment in ``meta``; the same validation, ledger and upstream as over HTTP."""
    token = arguments.pop(protocol.MCP_ARGUMENT, None)
    if token is not None and not isinstance(token, str):
        return _error(f"{protocol.MCP_ARGUMENT} must be a string")
    try:
        signature = _x402_signature(runtime, spec, meta) if not token else None
        if signature:  # x402's MCP transport: the payment in _meta["x402/payment"]
            paid = await anyio.to_thread.run_sync(
                runtime.call_paid, spec, arguments, signature, None
            )
            return _result(paid.envelope, meta=_x402_meta(paid))
        if token:
            envelope = await anyio.to_thread.run_sync(runtime.call, spec, arguments, token, None)
        else:  # the payment-required answer needs neither the ledger nor the upstream
            envelope = runtime.call(spec, arguments, None, None)
    except RequestError as exc:
        return _error(str(exc))
    except PaymentNeeded as exc:
        offer = None
        if runtime.x402_offered(spec):
            from .x402 import mcp_required_text

            offer = mcp_required_text(runtime.x402, spec, exc.x402_error or exc.answer.error)
        return _result(exc.answer, is_error=True, x402_text=offer)
    except UpstreamFailed as exc:  # settled through x402: its token retries for free
        return _result(exc.answer(), is_error=True)
    return _result(envelope)


def _x402_signature(runtime: ServiceRuntime, spec: Any, meta: Any) -> str | None:
    """The x402 payment of a call's ``_meta``, as a PAYMENT-SIGNATURE value (else ``None``)."""
    if not meta or not runtime.x402_offered(spec):
        return None
    from .x402 import X402Refused, mcp_payment_header

    try:
        return mcp_payment_header(meta)
    except X402Refused as exc:
        answer = contract.PaymentRequired(
            error=protocol.FAILURES[0], payment=payment_required(spec)
        )
        raise PaymentNeeded(answer, exc.reason) from None


def _x402_meta(paid: Any) -> dict[str, Any]:
    from .x402 import mcp_response_meta

    return mcp_response_meta(paid.payment_response)


def _create_payment(runtime: ServiceRuntime, arguments: dict[str, Any]) -> types.CallToolResult:
    service_id = arguments.get("serviceId")
    if not isinstance(service_id, str):
        return _error("serviceId is required")
    try:
        payment = runtime.create_payment(service_id, arguments.get("providerId"), None)
    except UnknownService:
        return _error(f"unknown service {service_id!r}")
    except RequestError as exc:
        return _error(str(exc))
    offer = None
    spec = runtime.spec(payment.service_id)
    if payment.status == "pending" and runtime.x402_offered(spec):
        from .x402 import mcp_required_text

        offer = mcp_required_text(runtime.x402, spec, None)  # pay it with verify_payment
    return _result(payment, x402_text=offer)


def _verify_payment(
    runtime: ServiceRuntime, arguments: dict[str, Any], meta: Any = None
) -> types.CallToolResult:
    """The payment's record; with an x402 payment in ``_meta``, a pending one is paid first."""
    payment_id = arguments.get("paymentId")
    payment = runtime.verify_payment(payment_id) if isinstance(payment_id, str) else None
    if payment is None:
        return _error(f"unknown payment {payment_id!r}")
    spec = runtime.spec(payment.service_id)
    try:
        signature = _x402_signature(runtime, spec, meta)
        if signature:
            paid = runtime.pay_payment(payment.payment_id, signature)
            assert paid is not None
            from .x402 import mcp_response_meta

            return _result(paid[0], meta=mcp_response_meta(paid[1]))
    except PaymentNeeded as exc:
        from .x402 import mcp_required_text

        text = mcp_required_text(runtime.x402, spec, exc.x402_error or exc.answer.error)
        return _result(exc.answer, is_error=True, x402_text=text)
    return _result(payment)


async def serve_stdio(server: Server) -> None:
    """Serve ``server`` on this process's stdin and stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())

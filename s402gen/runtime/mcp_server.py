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
import pydantic
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from . import contract, protocol
from .auth import AuthRefused, ClientAuth, shown_to
from .ledger_store import LedgerBusy
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
    auth: ClientAuth | None = None,
    stdio_key: str | None = None,
    search: Any = None,
    search_threads: Any = None,
) -> Server:
    """A low-level MCP server for ``tools``, calling through ``runtime``; ``page_size``
    tools a ``tools/list`` page. ``auth`` identifies the caller by the API key of the HTTP
    request's ``Authorization: Bearer`` header, or over stdio by ``stdio_key`` (the
    ``S402GEN_API_KEY`` the client started the server with); the REST API's rules apply.

    With ``search`` (a :class:`~s402gen.runtime.search.CatalogSearch`), the
    discovery mode: ``tools/list`` answers only the search and call tools of
    :mod:`s402gen.runtime.mcp_discovery` and the payment tools; every service
    stays callable through the call tool (and by its own name); its searches run in
    worker threads under ``search_threads`` (an ``anyio.CapacityLimiter``; ``None``:
    anyio's default).
    """
    specs = {spec.tool_name: spec for spec in runtime.specs}
    auth = auth or ClientAuth()
    discovery = None
    listed = tools
    if search is not None:
        from .mcp_discovery import Discovery

        discovery = Discovery(runtime, search, search_threads)
        listed = discovery.listed(tools)

    def caller(ctx: ServerRequestContext) -> str | None:
        request = getattr(ctx, "request", None)
        if request is not None and hasattr(request, "headers"):
            return auth.client(request.headers.get("authorization"))
        return auth.client(f"Bearer {stdio_key}" if stdio_key else None)

    async def on_list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return list_page(listed, params.cursor if params else None, page_size)

    async def on_call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return await call_tool(ctx, params)
        except LedgerBusy:  # the ledger stayed held past its busy timeout
            return _error(protocol.LEDGER_BUSY)

    async def call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        try:
            client = caller(ctx)
        except AuthRefused as exc:
            return _error(str(exc))
        if params.name == protocol.CREATE_PAYMENT_TOOL:
            return await anyio.to_thread.run_sync(_create_payment, runtime, arguments, auth, client)
        if params.name == protocol.VERIFY_PAYMENT_TOOL:
            return await anyio.to_thread.run_sync(
                _verify_payment, runtime, arguments, params.meta, client
            )
        if discovery is not None and params.name in discovery.tools:
            return await discovery.call(params.name, arguments, params.meta, auth, client)
        spec = specs.get(params.name)
        if spec is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        return await call_service(runtime, spec, arguments, params.meta, auth, client)

    return Server(
        SERVER_NAME,
        version="1",
        instructions="Paid API tools: call a tool without paymentToken to learn its price, "
        "pay with create_payment, then call it again with paymentToken.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


async def call_service(
    runtime: ServiceRuntime,
    spec: Any,
    arguments: dict[str, Any],
    meta: Any,
    auth: ClientAuth,
    client: str | None,
) -> types.CallToolResult:
    """One service's ``tools/call`` by ``client`` (an API key's id, or ``None``):
    ``arguments`` with the optional ``paymentToken``, or an x402 payment in ``meta``; the
    same key rules, validation, ledger and upstream as over HTTP."""
    token = arguments.pop(protocol.MCP_ARGUMENT, None)
    if token is not None and not isinstance(token, str):
        return _error(f"{protocol.MCP_ARGUMENT} must be a string")
    try:
        signature = _x402_signature(runtime, spec, meta) if not token else None
        if signature:  # x402's MCP transport: the payment in _meta["x402/payment"]
            auth.check_create(spec, client)
            paid = await anyio.to_thread.run_sync(
                runtime.call_paid, spec, arguments, signature, client
            )
            return _result(paid.envelope, meta=_x402_meta(paid))
        # validation, the ledger and the upstream block: off the event loop, paid or not
        envelope = await anyio.to_thread.run_sync(runtime.call, spec, arguments, token, client)
    except (AuthRefused, RequestError) as exc:
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


def _create_payment(
    runtime: ServiceRuntime, arguments: dict[str, Any], auth: ClientAuth, client: str | None
) -> types.CallToolResult:
    service_id = arguments.get("serviceId")
    if not isinstance(service_id, str):
        return _error("serviceId is required")
    try:
        auth.check_create(runtime.spec(service_id), client)
        payment = runtime.create_payment(service_id, arguments.get("providerId"), client)
    except AuthRefused as exc:
        return _error(str(exc))
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
    runtime: ServiceRuntime, arguments: dict[str, Any], meta: Any = None, client: str | None = None
) -> types.CallToolResult:
    """The payment's record (its token only for its own key); with an x402 payment in
    ``_meta``, a pending one is paid first."""
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

            return _result(shown_to(paid[0], client), meta=mcp_response_meta(paid[1]))
    except PaymentNeeded as exc:
        from .x402 import mcp_required_text

        text = mcp_required_text(runtime.x402, spec, exc.x402_error or exc.answer.error)
        return _result(exc.answer, is_error=True, x402_text=text)
    return _result(shown_to(payment, client))


def malformed_answer(error: Exception) -> types.JSONRPCError:
    """The JSON-RPC 2.0 error for a line that is no message (spec section 5.1, id ``null``).

    Not JSON at all: ``-32700`` (parse error); JSON but not a JSON-RPC message:
    ``-32600`` (invalid request).
    """
    errors = error.errors() if isinstance(error, pydantic.ValidationError) else []
    not_json = not errors or errors[0].get("type") == "json_invalid"
    code, message = (
        (types.PARSE_ERROR, "Parse error")
        if not_json
        else (types.INVALID_REQUEST, "Invalid Request")
    )
    return types.JSONRPCError(
        jsonrpc="2.0", id=None, error=types.ErrorData(code=code, message=message)
    )


class _AnswerMalformed:
    """The stdio transport's read stream, answering each line it could not read.

    The SDK's stdio reader passes a malformed line on as an exception, which the
    server drops with a debug log: a client waiting on that request would hang.
    This wrapper answers it on the write stream (:func:`malformed_answer`) and
    reads on; everything else is the wrapped stream's.
    """

    def __init__(self, inner: Any, write_stream: Any):
        self._inner = inner
        self._write = write_stream

    def __getattr__(self, name: str) -> Any:  # last_context and the rest: the inner stream's
        return getattr(self._inner, name)

    def __aiter__(self) -> "_AnswerMalformed":
        return self

    async def __anext__(self) -> Any:
        while True:
            item = await self._inner.__anext__()
            if not isinstance(item, Exception):
                return item
            await self._write.send(SessionMessage(malformed_answer(item)))

    async def __aenter__(self) -> "_AnswerMalformed":
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._inner.__aexit__(*exc_info)


async def serve_stdio(server: Server) -> None:
    """Serve ``server`` on this process's stdin and stdout until the client closes them;
    a line that is no JSON-RPC message gets a JSON-RPC error with id ``null``."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(
            _AnswerMalformed(read_stream, write_stream),
            write_stream,
            server.create_initialization_options(),
        )

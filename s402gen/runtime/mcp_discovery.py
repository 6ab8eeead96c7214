"""The MCP discovery mode: two tools over the whole catalog instead of one tool a service.

With thousands of services, one tool each makes ``tools/list`` megabytes long
and an agent's context with it. In the discovery mode (``s402gen mcp
--discovery``, ``s402gen serve --mcp-discovery``) ``tools/list`` answers four
tools: :data:`~s402gen.runtime.protocol.SEARCH_TOOL` searches the catalog with
the HTTP search's engine and answers its document (``matchScore``, ``why``,
each service's ``inputSchema`` and price); :data:`~s402gen.runtime.protocol.CALL_TOOL`
calls a service by id with its arguments, through the same payment flow as a
service's own tool (no ``paymentToken``: the 402 document; pay with
``create_payment``, call again with ``paymentToken``); and the two payment tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import mcp.types as types

from . import protocol
from .auth import ClientAuth
from .mcp_server import _error, _result, call_service
from .search import MAX_LIMIT, MAX_QUERY_CHARS, CatalogSearch
from .service import ServiceRuntime, UnknownService

#: Results a search answers when the call names no ``limit`` (each carries a whole entry).
DEFAULT_TOOL_LIMIT = 5

SEARCH_TOOL = types.Tool(
    name=protocol.SEARCH_TOOL,
    title="Search paid services",
    description=(
        "Search this catalog's paid API services, in English or Chinese. Answers the "
        "catalog search document: per service its id, inputSchema, price, matchScore and "
        f"why it matched. Call one with {protocol.CALL_TOOL}."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "What the service should do.",
                "maxLength": MAX_QUERY_CHARS,
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "description": f"Services to answer (default {DEFAULT_TOOL_LIMIT}).",
            },
            "category": {"type": "string", "description": "Only this category's services."},
        },
        "required": ["query"],
    },
    annotations=types.ToolAnnotations(readOnlyHint=True, idempotentHint=True),
)

CALL_TOOL = types.Tool(
    name=protocol.CALL_TOOL,
    title="Call a paid service",
    description=(
        f"Call a paid service by its id (from {protocol.SEARCH_TOOL}) with its arguments "
        "(its inputSchema). Without paymentToken the answer is the payment-required "
        f"document: pay with {protocol.CREATE_PAYMENT_TOOL} (serviceId), then call again "
        "with paymentToken set to payment.token."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "serviceId": {"type": "string", "description": "The service's id."},
            "arguments": {"type": "object", "description": "The service's arguments."},
            protocol.MCP_ARGUMENT: {"type": "string", "description": "A paid payment's token."},
        },
        "required": ["serviceId"],
    },
)


class Discovery:
    """The search and call tools of one MCP server, over ``runtime`` and ``search``; its
    searches run in worker threads under ``threads`` (``None``: anyio's default limiter)."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        search: CatalogSearch,
        threads: anyio.CapacityLimiter | None = None,
    ):
        self.runtime = runtime
        self.search = search
        self.threads = threads
        self.tools = {SEARCH_TOOL.name: SEARCH_TOOL, CALL_TOOL.name: CALL_TOOL}

    def listed(self, tools: Sequence[types.Tool]) -> list[types.Tool]:
        """What ``tools/list`` answers: the two discovery tools, then the payment tools of
        ``tools`` (the generated list ends with them)."""
        wanted = {protocol.CREATE_PAYMENT_TOOL, protocol.VERIFY_PAYMENT_TOOL}
        payment: list[types.Tool] = []
        for index in range(len(tools) - 1, -1, -1):
            tool = tools[index]
            if tool.name in wanted:
                payment.insert(0, tool)
                wanted.discard(tool.name)
                if not wanted:
                    break
        return [SEARCH_TOOL, CALL_TOOL, *payment]

    async def call(
        self, name: str, arguments: dict[str, Any], meta: Any, auth: ClientAuth, client: str | None
    ) -> types.CallToolResult:
        """A ``tools/call`` of one of :attr:`tools` by ``client`` (an API key's id, or
        ``None``), under ``auth``'s rules."""
        if name == SEARCH_TOOL.name:
            return await self._search(arguments)
        return await self._call(arguments, meta, auth, client)

    async def _search(self, arguments: dict[str, Any]) -> types.CallToolResult:
        query = arguments.get("query", "")
        limit = arguments.get("limit", DEFAULT_TOOL_LIMIT)
        category = arguments.get("category")
        if not isinstance(query, str):
            return _error("query must be a string")
        if len(query) > MAX_QUERY_CHARS:
            return _error(f"query must be at most {MAX_QUERY_CHARS} characters")
        if not isinstance(limit, int) or isinstance(limit, bool):
            return _error("limit must be an integer")
        if category is not None and not isinstance(category, str):
            return _error("category must be a string")
        answer = await anyio.to_thread.run_sync(
            self.search.search,
            query,
            limit,
            self.runtime.stats.quality,
            category or None,
            limiter=self.threads,
        )
        return _result(answer)

    async def _call(
        self, arguments: dict[str, Any], meta: Any, auth: ClientAuth, client: str | None
    ) -> types.CallToolResult:
        service_id = arguments.get("serviceId")
        body = arguments.get("arguments", {})
        if not isinstance(service_id, str):
            return _error("serviceId is required")
        if not isinstance(body, dict):
            return _error("arguments must be an object")
        try:
            spec = self.runtime.spec(service_id)
        except UnknownService:
            return _error(f"unknown service {service_id!r}")
        body = dict(body)
        if protocol.MCP_ARGUMENT in arguments:
            body[protocol.MCP_ARGUMENT] = arguments[protocol.MCP_ARGUMENT]
        return await call_service(self.runtime, spec, body, meta, auth, client)

"""Intermediate representation: the compiled catalog, ready to render.

Frozen dataclasses; every field a template needs is computed here by
:mod:`s402gen.derive`, so templates only loop and substitute. JSON-like
fields (schemas, examples) are plain dicts and lists with keys already in
output order; nothing downstream mutates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .runtime.spec import Messages, Payment, Pricing, RouteSpec, Upstream

__all__ = [
    "Catalog",
    "ErrorExample",
    "Messages",
    "Param",
    "Payment",
    "Pricing",
    "Service",
    "ToolAnnotations",
    "Upstream",
]


@dataclass(frozen=True)
class Param:
    """One input parameter as the runtime sees it."""

    name: str
    type: str
    required: bool
    is_url: bool


@dataclass(frozen=True)
class ErrorExample:
    """A request the route rejects: ``input`` gets HTTP ``status_code`` with ``error``."""

    input: dict[str, Any]
    error: str
    status_code: int


@dataclass(frozen=True)
class ToolAnnotations:
    """MCP tool annotations (spec revision 2025-11-25)."""

    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool


@dataclass(frozen=True)
class Service:
    """One compiled service; ``index`` is its position under ``services:``."""

    index: int
    id: str
    legacy_id: str
    name: str
    module: str
    tool_name: str
    endpoint: str
    legacy_endpoint: str
    method: str
    title_zh: str
    summary_zh: str
    task: str
    description: str
    category: str
    keywords: tuple[str, ...]
    use_cases: tuple[str, ...]
    limitations: tuple[str, ...]
    tags: tuple[str, ...]
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    params: tuple[Param, ...]
    array_params: tuple[str, ...]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    example_request: dict[str, Any] | None
    example_response: dict[str, Any]
    error_examples: tuple[ErrorExample, ...]
    messages: Messages
    pricing: Pricing
    payment: Payment
    aliases: tuple[str, ...]
    search_text: str
    payment_hint: str
    complexity: str
    typical_response_time: str
    cacheable: bool
    idempotent: bool
    output_format: str
    related_services: tuple[str, ...]
    required_context: tuple[str, ...]
    sla: dict[str, str]
    upstream: Upstream
    annotations: ToolAnnotations


@dataclass(frozen=True)
class Catalog:
    """The compiled catalog: services in catalog order and the catalog-wide facts."""

    marketplace: str
    generated_at: str | None
    services: tuple[Service, ...]


def route_spec(svc: Service) -> RouteSpec:
    """What the route module of ``svc`` declares (the template writes exactly this)."""
    return RouteSpec(
        service_id=svc.id,
        legacy_id=svc.legacy_id,
        tool_name=svc.tool_name,
        endpoint=svc.endpoint,
        legacy_endpoint=svc.legacy_endpoint,
        method=svc.method,
        upstream=svc.upstream,
        input_schema=svc.input_schema,
        array_params=svc.array_params,
        messages=svc.messages,
        pricing=svc.pricing,
        payment=svc.payment,
    )

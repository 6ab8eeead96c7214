"""Intermediate representation: the compiled catalog, ready to render.

Frozen dataclasses with slots (no instance dict each: 6 MiB at 10,000 services);
every field a template needs is computed by
:mod:`s402gen.derive`, so templates only loop and substitute. Two large values
are made from held fields when asked for rather than held, so that the IR of a
big catalog stays small: a service's search text (:attr:`Service.search_text`)
and its x402 offer (:func:`s402gen.documents.x402_offer`). A service is
split by concern: its route contract (the runtime's :class:`RouteSpec`,
not a copy of its fields), its texts, its discovery facts and its examples. JSON-like
fields (schemas, examples) are plain dicts and lists with keys already in
output order; nothing downstream mutates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .runtime.spec import Messages, Payment, Pricing, RouteSpec, Slotted, Upstream

__all__ = [
    "Catalog",
    "Category",
    "Discovery",
    "ErrorExample",
    "Examples",
    "Messages",
    "Param",
    "Payment",
    "Pricing",
    "RouteSpec",
    "Service",
    "Texts",
    "ToolAnnotations",
    "Upstream",
]


@dataclass(frozen=True, slots=True)
class Param(Slotted):
    """One input parameter as the runtime sees it."""

    name: str
    type: str
    required: bool
    is_url: bool


@dataclass(frozen=True, slots=True)
class ErrorExample(Slotted):
    """A request the route rejects: ``input`` gets HTTP ``status_code`` with ``error``."""

    input: dict[str, Any]
    error: str
    status_code: int


@dataclass(frozen=True, slots=True)
class ToolAnnotations(Slotted):
    """MCP tool annotations (spec revision 2025-11-25)."""

    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool


@dataclass(frozen=True, slots=True)
class Texts(Slotted):
    """What people and agents read about a service: the catalog entry's descriptive fields
    and the doc page (phrased by :mod:`s402gen.phrasing`)."""

    name: str
    title_zh: str
    summary_zh: str
    task: str
    description: str
    category: str
    keywords: tuple[str, ...]
    use_cases: tuple[str, ...]
    limitations: tuple[str, ...]
    tags: tuple[str, ...]
    complexity: str
    typical_response_time: str
    cacheable: bool
    idempotent: bool
    output_format: str
    sla: dict[str, str]
    related_services: tuple[str, ...]
    required_context: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Discovery(Slotted):
    """How search and agents find a service and learn to call and pay for it."""

    aliases: tuple[str, ...]
    payment_hint: str
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    annotations: ToolAnnotations


@dataclass(frozen=True, slots=True)
class Examples(Slotted):
    """A request that works, the answer it gets, and requests the route rejects."""

    request: dict[str, Any] | None
    response: dict[str, Any]
    errors: tuple[ErrorExample, ...]


@dataclass(frozen=True, slots=True, weakref_slot=True)  # a weak reference sees it let go
class Service(Slotted):
    """One compiled service, by concern; ``index`` is its position under ``services:``.

    ``route`` is what its route module declares (the runtime's own
    :class:`RouteSpec`: ids, endpoints, input schema, messages, pricing,
    payment, upstream), ``module`` that module's name.
    """

    index: int
    module: str
    route: RouteSpec
    params: tuple[Param, ...]
    output_schema: dict[str, Any]
    texts: Texts
    discovery: Discovery
    examples: Examples

    # the route contract's facts under their usual names (held by ``route``)
    id = property(lambda self: self.route.service_id, doc="The canonical service id.")
    legacy_id = property(lambda self: self.route.legacy_id, doc="The legacy internal id.")
    tool_name = property(lambda self: self.route.tool_name, doc="The MCP tool name.")
    endpoint = property(lambda self: self.route.endpoint, doc="``/api/tools/<id>``.")
    legacy_endpoint = property(lambda self: self.route.legacy_endpoint, doc="The alias path.")
    method = property(lambda self: self.route.method, doc="The HTTP method.")
    input_schema = property(lambda self: self.route.input_schema, doc="The input schema.")
    array_params = property(lambda self: self.route.array_params, doc="JSON-string arrays.")
    messages = property(lambda self: self.route.messages, doc="The 400 error texts.")
    pricing = property(lambda self: self.route.pricing, doc="Price and token rules.")
    payment = property(lambda self: self.route.payment, doc="The payment provider.")
    upstream = property(lambda self: self.route.upstream, doc="The upstream action.")
    # read by validate and breaking (prefer ``texts`` and ``examples`` in new code)
    description = property(lambda self: self.texts.description, doc="``texts.description``.")
    title_zh = property(lambda self: self.texts.title_zh, doc="``texts.title_zh``.")
    sla = property(lambda self: self.texts.sla, doc="``texts.sla``.")
    related_services = property(lambda self: self.texts.related_services, doc="Related ids.")
    example_request = property(lambda self: self.examples.request, doc="``examples.request``.")
    example_response = property(lambda self: self.examples.response, doc="The example answer.")
    error_examples = property(lambda self: self.examples.errors, doc="``examples.errors``.")

    @property
    def search_text(self) -> str:
        """``discovery.searchText``: id, name, the description twice, category, input and
        output types, tags, keywords, use cases, limitations and endpoint, space-separated.

        Made when asked for, from the fields above: held, it was the largest string of
        a service (2.5 kB at 10,000 services, 25 MiB in all).
        """
        route, texts, discovery = self.route, self.texts, self.discovery
        return " ".join(
            [
                route.service_id,
                texts.name,
                texts.description,
                texts.description,
                texts.category,
                *discovery.input_types,
                *discovery.output_types,
                *texts.tags,
                *texts.keywords,
                *texts.use_cases,
                *texts.limitations,
                route.endpoint,
            ]
        )


@dataclass(frozen=True, slots=True)
class Category(Slotted):
    """A declared marketplace category: its labels, and the ids of its services in catalog
    order. ``synonyms`` maps a query word to the words it also matches (search expansions)."""

    id: str
    label: str
    label_zh: str
    description: str
    synonyms: dict[str, tuple[str, ...]]
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog(Slotted):
    """The compiled catalog: services in catalog order and the catalog-wide facts.
    ``categories`` are the declared ones, in declaration order (empty when none is)."""

    marketplace: str
    generated_at: str | None
    services: tuple[Service, ...]
    categories: tuple[Category, ...] = ()
    includes: tuple[str, ...] = ()  # the ``include:`` globs (the catalog is split in files)
    #: the x402 payment providers' runtime settings by provider id (``offers.json``'s
    #: ``providers``; :func:`s402gen.runtime.x402_contract.provider_settings`)
    x402_providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what their offers share, by provider id (:func:`~s402gen.runtime.x402_contract.offer_terms`);
    #: a service's offer is made from it when rendered (:func:`s402gen.documents.x402_offer`)
    x402_terms: dict[str, dict[str, Any]] = field(default_factory=dict)


def route_spec(svc: Service) -> RouteSpec:
    """What the route module of ``svc`` declares (the template writes exactly this)."""
    return svc.route

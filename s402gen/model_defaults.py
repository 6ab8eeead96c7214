"""The authoring model's defaults: what every service gets unless it overrides it.

:class:`Defaults` (the global ``defaults``: templates whose placeholders are checked, the
service level :class:`Sla`) and its scoped copies for a provider's and a category's
``defaults`` (:data:`ProviderDefaults`, :data:`CategoryDefaults`), where every key is
optional and a list may extend the inherited one (:data:`ListOrExtend`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, create_model, field_validator
from pydantic_core import PydanticCustomError

from .model_base import AuthoringModel, key

#: Placeholders each template of ``defaults`` may use.
TEMPLATE_PLACEHOLDERS = {
    "task_template": ("summary",),
    "description_template": ("task", "parameters", "required"),
}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class Sla(AuthoringModel):
    """Service level published with a service."""

    uptime: str = key("Availability promised, in percent.", "99.5%", pattern=r"^\d+(\.\d+)?%$")
    max_latency: str = key(
        "Slowest answer promised, in milliseconds.", "5000ms", pattern=r"^\d+ms$"
    )


def _placeholders(cls: Any, template: str | None, info: Any) -> str | None:
    """A template whose ``{placeholders}`` are all known for its key."""
    known = TEMPLATE_PLACEHOLDERS[info.field_name]
    for found in PLACEHOLDER.findall(template or ""):
        if found not in known:
            raise PydanticCustomError(
                "invalid-value",
                "unknown placeholder {found}; known: {known}",
                {"found": "{" + found + "}", "known": ", ".join("{" + k + "}" for k in known)},
            )
    return template


class Defaults(AuthoringModel):
    """Settings every service gets unless it overrides them."""

    provider: str = key("Provider (under `providers`) of every service.", "facebody")
    pricing_policy: str = key("Pricing policy (under `pricingPolicies`).", "aliyun-viapi")
    payment_provider: str = key("Payment provider (under `paymentProviders`).", "x402-base-usdc")
    category: str = key("Marketplace category.", "face-body")
    name_suffix: str = key(
        "Appended to the action's words to make the name.", "Face And Body Analysis"
    )
    task_template: str = key(
        "Task phrase of a service without `task`; {summary} is its summaryZh.",
        "the visual analysis task described by action {summary}",
    )
    description_template: str = key(
        "Service description; placeholders {task}, {parameters}, {required}.",
        "Use this visual AI API when the task needs {task}. Send the schema keys exactly "
        "as listed ({parameters}); {required}.",
    )
    tags: list[str] = key("Marketplace tags.", ["computer-vision", "face-body"])
    keywords: list[str] = key("Shared keywords, after the action and title.", ["face detection"])
    use_cases: list[str] = key(
        "Shared use cases, after the service's task.",
        ["Call one focused visual AI capability directly with JSON inputs"],
    )
    limitations: list[str] = key(
        "Limitations listed with every service.", ["Binary file upload is not exposed"]
    )
    required_context: list[str] = key(
        "What every caller needs, after the parameters' needs.", ["aliyun-credentials"]
    )
    complexity: str = key("How demanding a call is.", "moderate")
    typical_response_time: str = key("Usual latency.", "1200ms")
    cacheable: bool = key("Answers may be cached.", True)
    idempotent: bool = key(
        "The catalog's `idempotent` field. Set for a service, its category or its provider, "
        "it is also the MCP idempotentHint (else the action's verb decides the hint).",
        True,
    )
    read_only: bool | None = key(
        "The MCP readOnlyHint: the service changes nothing upstream (default: from the "
        "action's verb; `annotations` overrides).",
        True,
        None,
    )
    destructive: bool | None = key(
        "The MCP destructiveHint: the service may delete upstream data (default: from the "
        "action's verb; `annotations` overrides).",
        False,
        None,
    )
    output_format: str = key("Format of the answer.", "json")
    sla: Sla = key("Service level.", {"uptime": "99.5%", "maxLatency": "5000ms"})
    related_services: list[str] = key(
        "Candidates for relatedServices; the service itself is skipped.",
        ["face-database-add-face", "face-template-create"],
    )
    related_services_limit: int = key("How many related services each lists.", 3, ge=0)
    parameter_description: str = key(
        "Description of a parameter that has none; {name} is its name.",
        "Alibaba Cloud RPC parameter {name}.",
    )
    input_schema_description: str = key(
        "Description of every input schema.", "Use Alibaba Cloud RPC parameter names exactly."
    )
    output_schema: dict[str, Any] = key(
        "JSON Schema of the success envelope.",
        {"type": "object", "properties": {"requestId": {"type": "string"}}},
    )
    example_result: str = key(
        "Result text of derived example responses.", "example result from Alibaba Cloud facebody"
    )

    _known_placeholders = field_validator(*TEMPLATE_PLACEHOLDERS)(_placeholders)


class Extend(AuthoringModel):
    """A list that adds to the inherited one instead of replacing it."""

    extend: list[str] = key("Added after the inherited list's items.", ["image enhancement"])


def _list_kind(value: Any) -> str:
    return "[extend]" if isinstance(value, dict) else "[list]"


#: A list that replaces the inherited one, or ``{extend: [...]}`` that appends to it. (The
#: bracketed tags never name data: :mod:`s402gen.structure` leaves them out of locations.)
ListOrExtend = Annotated[
    Annotated[list[str], Tag("[list]")] | Annotated[Extend, Tag("[extend]")],
    Discriminator(_list_kind),
]

#: How a scoped default's list combines with the inherited one (the editor schema shows it).
LIST_RULE = (
    " In a provider's or category's `defaults` (and a service's `tags`, `limitations`): "
    "a list replaces the inherited one; `{extend: [...]}` appends to it."
)


def _scoped_defaults(name: str, doc: str, leave_out: tuple[str, ...]) -> type[AuthoringModel]:
    """A copy of :class:`Defaults` with every key optional and lists able to extend.

    Resolution (:func:`s402gen.derive.resolve_defaults`): service > category >
    provider > global ``defaults``.
    """
    fields: dict[str, Any] = {}
    for field_name, info in Defaults.model_fields.items():
        if field_name in leave_out:
            continue
        annotation: Any = info.annotation
        description = info.description or ""
        if annotation == list[str]:
            annotation = ListOrExtend
            description += LIST_RULE
        elif info.metadata:  # bounds such as ge=0
            annotation = Annotated[(annotation, *info.metadata)]
        fields[field_name] = (
            annotation | None,
            Field(None, description=description, examples=info.examples),
        )
    return create_model(  # type: ignore[call-overload, no-any-return]
        name,
        __base__=AuthoringModel,
        __doc__=doc,
        __validators__={"placeholders": field_validator(*TEMPLATE_PLACEHOLDERS)(_placeholders)},
        **fields,
    )


ProviderDefaults = _scoped_defaults(
    "ProviderDefaults",
    "Defaults of one provider's services (a service's category and the service win).",
    ("provider",),
)
CategoryDefaults = _scoped_defaults(
    "CategoryDefaults",
    "Defaults of one category's services (the service wins; they win over the provider's).",
    ("provider", "category"),
)

"""Authoring model: what a catalog author may write in catalog.yaml.

Pydantic models with ``extra="forbid"`` and strict types: an unknown key,
a missing key or a value of the wrong type is an error, reported by
:mod:`s402gen.validate` at its line and column. Keys are camelCase, like
the catalog JSON they compile to. Shared settings live once under
``providers``, ``pricingPolicies``, ``paymentProviders``, ``presets`` and
``defaults``; a service names what it uses and overrides only what differs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

JsonType = Literal["string", "number", "integer", "boolean", "array", "object"]
JSON_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "array", "object")

ID_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ACTION_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
PARAMETER_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        populate_by_name=False,
    )


class CatalogInfo(_Model):
    """Catalog-wide facts: the marketplace's display name and the catalog's date."""

    marketplace: str = Field(
        "Server402 marketplace", description="Marketplace name shown on every doc page."
    )
    generated_at: str | None = Field(
        None,
        pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$",
        description="UTC timestamp written as the catalog's generatedAt; "
        "SOURCE_DATE_EPOCH is used when absent.",
        examples=["2026-06-03T23:51:26Z"],
    )


class Provider(_Model):
    """An upstream API product (Alibaba Cloud OpenAPI, RPC style)."""

    product: str = Field(description="Product code, e.g. facebody.")
    version: str = Field(description="API version, e.g. 2019-12-30.")
    endpoint: str = Field(description="Default upstream host.")
    label_zh: str = Field(
        description="Chinese product label used in keywords, e.g. 阿里云人脸人体."
    )
    legacy_id_prefix: str = Field(
        description="Legacy service ids are this prefix plus the action in kebab case."
    )


class PricingPolicy(_Model):
    """How a service is priced and how its payment token may be spent."""

    amount_cents: int = Field(ge=0, description="Price per call in cents of `currency`.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")
    settle_mode: str
    billing_mode: str
    max_calls: int = Field(ge=1, description="Calls one paid token allows.")
    allow_reuse: bool
    bind_client: bool = Field(description="Tokens only work for the client that paid.")


class PaymentProvider(_Model):
    """A payment provider a service accepts payment through."""

    provider: str = Field(description="Provider kind, e.g. x402_facilitator.")


class Parameter(_Model):
    """One input parameter: a preset name, a JSON type name, or a mapping.

    Written as a string (``ImageURL: image-url`` or ``Limit: number``) it
    names a preset or a JSON type; as a mapping, every key given overrides
    the preset's value.
    """

    preset: str | None = Field(None, description="Name of a preset under `presets`.")
    type: JsonType | None = None
    format: str | None = None
    description: str | None = None
    example: Any = None
    items: dict[str, Any] | None = Field(None, description="JSON Schema of array items.")
    enum: list[Any] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    required_context: str | None = Field(
        None, description="Context a caller needs for this parameter, e.g. public-image-url."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            key = "type" if value in JSON_TYPES else "preset"
            return {key: value}
        return value


class Preset(_Model):
    """A reusable parameter definition; ``{name}`` in the description is the parameter name."""

    type: JsonType
    format: str | None = None
    description: str | None = None
    example: Any = None
    items: dict[str, Any] | None = None
    enum: list[Any] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    required_context: str | None = None


class Sla(_Model):
    """Service level published with a service."""

    uptime: str = Field(examples=["99.5%"])
    max_latency: str = Field(examples=["5000ms"])


class ErrorExample(_Model):
    """A request the route rejects, with its status and error text."""

    input: dict[str, Any]
    error: str
    status_code: int = Field(400, ge=400, le=499)


class Annotations(_Model):
    """MCP tool annotation overrides (all derived when absent)."""

    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    idempotent_hint: bool | None = None
    open_world_hint: bool | None = None


class Defaults(_Model):
    """Settings every service gets unless it overrides them."""

    provider: str
    pricing_policy: str
    payment_provider: str
    category: str
    name_suffix: str = Field(description="Appended to the action's words to make the name.")
    task_template: str = Field(
        description="Task phrase of a service without `task`; {summary} is its summaryZh."
    )
    description_template: str = Field(
        description="Service description; placeholders {task}, {parameters}, {required}."
    )
    tags: list[str]
    keywords: list[str] = Field(description="Shared keywords, after the action and title.")
    use_cases: list[str] = Field(description="Shared use cases, after the service's task.")
    limitations: list[str]
    required_context: list[str]
    complexity: str
    typical_response_time: str
    cacheable: bool
    idempotent: bool
    output_format: str
    sla: Sla
    related_services: list[str] = Field(description="Candidates; the service itself is skipped.")
    related_services_limit: int = Field(ge=0)
    parameter_description: str = Field(
        description="Description of a parameter that has none; {name} is its name."
    )
    input_schema_description: str
    output_schema: dict[str, Any]
    example_result: str = Field(description="Result text of derived example responses.")


class Service(_Model):
    """One paid service: one upstream action."""

    id: str = Field(pattern=ID_PATTERN, description="Canonical public id, kebab case.")
    action: str = Field(pattern=ACTION_PATTERN, description="Upstream action, e.g. DetectFace.")
    title_zh: str = Field(description="Chinese API title, e.g. 人脸检测定位.")
    summary_zh: str = Field(description="Chinese action summary, one sentence.")
    task: str | None = Field(
        None, description="English task phrase; defaults to one built from summaryZh."
    )
    name: str | None = None
    tool_name: str | None = Field(None, description="MCP tool name; default: id with - as _.")
    legacy_id: str | None = Field(None, pattern=ID_PATTERN)
    provider: str | None = None
    pricing_policy: str | None = None
    payment_provider: str | None = None
    category: str | None = None
    tags: list[str] | None = None
    keywords: list[str] = Field(default_factory=list, description="Extra keywords.")
    limitations: list[str] | None = None
    required_context: list[str] | None = None
    complexity: str | None = None
    typical_response_time: str | None = None
    cacheable: bool | None = None
    idempotent: bool | None = None
    output_format: str | None = None
    sla: Sla | None = None
    related_services: list[str] | None = None
    params: dict[str, Parameter] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    example_request: dict[str, Any] | None = None
    error_examples: list[ErrorExample] | None = None
    annotations: Annotations | None = None


class Catalog(_Model):
    """The whole catalog.yaml document."""

    catalog: CatalogInfo = Field(default_factory=CatalogInfo)
    providers: dict[str, Provider]
    pricing_policies: dict[str, PricingPolicy]
    payment_providers: dict[str, PaymentProvider]
    presets: dict[str, Preset] = Field(default_factory=dict)
    defaults: Defaults
    services: list[Service] = Field(min_length=1)

"""Authoring model: what a catalog author may write in catalog.yaml.

Pydantic models with ``extra="forbid"`` and strict types: an unknown key,
a missing key or a value of the wrong type is an error, reported by
:mod:`s402gen.validate` at its line and column. Keys are camelCase, like
the catalog JSON they compile to. Shared settings live once under
``providers``, ``pricingPolicies``, ``paymentProviders``, ``presets`` and
``defaults``; a service names what it uses and overrides only what differs.

Every constraint on one field is here (types, patterns, bounds, reserved
names, template placeholders, repeats in a list). A validator that reports a
particular rule raises ``PydanticCustomError`` whose type is the rule's name
(``missing-key``, ``invalid-value``): :mod:`s402gen.validate` reports it so.
Rules between fields or sections (references, uniqueness) live in
:mod:`s402gen.validate`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from .iso4217 import CURRENCY_CODES
from .runtime.protocol import MCP_ARGUMENT
from .runtime.spec import DEFAULT_PROTOCOL

JsonType = Literal["string", "number", "integer", "boolean", "array", "object"]
JSON_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "array", "object")

ID_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ACTION_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
PARAMETER_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


#: Placeholders each template of ``defaults`` may use.
TEMPLATE_PLACEHOLDERS = {
    "task_template": ("summary",),
    "description_template": ("task", "parameters", "required"),
}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _parameter_name(name: str) -> str:
    """A parameter name: an upstream name, not the MCP payment argument."""
    if name == MCP_ARGUMENT:
        raise PydanticCustomError(
            "invalid-value",
            "parameter name '{name}' is reserved for the MCP payment token",
            {"name": name},
        )
    if not re.fullmatch(PARAMETER_PATTERN, name):
        raise PydanticCustomError(
            "invalid-value",
            "parameter name '{name}' must match {pattern}",
            {"name": name, "pattern": PARAMETER_PATTERN},
        )
    return name


ParameterName = Annotated[str, AfterValidator(_parameter_name)]


def key(doc: str, example: Any, default: Any = ..., **constraints: Any) -> Any:
    """A documented key: its description and an example, for the editor schema."""
    return Field(default, description=doc, examples=[example], **constraints)


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

    marketplace: str = key(
        "Marketplace name shown on every doc page.",
        "Server402 marketplace",
        "Server402 marketplace",
    )
    generated_at: str | None = Field(
        None,
        pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$",
        description="UTC timestamp written as the catalog's generatedAt; "
        "SOURCE_DATE_EPOCH is used when absent.",
        examples=["2026-06-03T23:51:26Z"],
    )

    @field_validator("generated_at")
    @classmethod
    def _real_date(cls, value: str | None) -> str | None:
        """The pattern admits 2026-02-31; the calendar does not."""
        if value is not None:
            try:
                datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
            except ValueError as exc:
                raise PydanticCustomError(
                    "invalid-value",
                    "generatedAt {value} is not a real date ({reason})",
                    {"value": value, "reason": str(exc)},
                ) from None
        return value


class Provider(_Model):
    """An upstream API product (Alibaba Cloud OpenAPI, RPC style)."""

    product: str = key("Alibaba Cloud product code.", "facebody")
    version: str = key("API version of every action of the product.", "2019-12-30")
    endpoint: str = key("Default upstream host.", "facebody.cn-shanghai.aliyuncs.com")
    label_zh: str = key(
        "Chinese product label, first word of each service's title keyword.", "阿里云人脸人体"
    )
    legacy_id_prefix: str = key(
        "Legacy service ids are this prefix plus the action in kebab case.", "aliyun-facebody-"
    )
    protocol: str = key(
        "Upstream protocol: a plug-in of the `s402gen.protocols` entry point group "
        "(`aliyun-rpc` is built in).",
        "aliyun-rpc",
        DEFAULT_PROTOCOL,
    )

    @field_validator("endpoint")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        """A host name or IP address with an optional port: nothing a request line or a URL
        would read as more (no scheme, credentials, path, query, spaces or CR/LF)."""
        problem = _endpoint_problem(value)
        if problem is not None:
            raise PydanticCustomError(
                "invalid-value",
                "endpoint {value} must be a bare host[:port] ({problem})",
                {"value": repr(value), "problem": problem},
            )
        return value

    upstream_method: Literal["POST", "GET"] = key(
        "HTTP method of the provider's actions, as its official SDK sends them.", "POST", "POST"
    )
    sdk: str | None = key(
        "Distribution name of the product's official SDK, which `s402gen validate --upstream` "
        "compares each service with.",
        "alibabacloud-facebody20191230",
        None,
    )
    defaults: "ProviderDefaults | None" = key(
        "Defaults of this provider's services: they win over the global `defaults` and lose "
        "to the service's category and the service itself.",
        {"nameSuffix": "Image Enhancement", "keywords": {"extend": ["image enhancement"]}},
        None,
    )


#: A DNS host name: dot-separated labels of letters, digits and inner hyphens (RFC 1123).
HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)


def _endpoint_problem(value: str) -> str | None:
    """Why ``value`` is not ``host[:port]``, or ``None``."""
    if not value:
        return "it is empty"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "it holds spaces or control characters"
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.netloc != value or parts.path or parts.query or parts.fragment:
        return "it holds a path, a query or a scheme"
    if parts.username is not None or parts.password is not None:
        return "it holds credentials"
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOST_NAME.match(host):
            return f"'{host}' is not a host name"
    return None if port is None or port > 0 else "port 0"


class PricingPolicy(_Model):
    """How a service is priced and how its payment token may be spent."""

    amount_cents: int = key("Price per call, in cents of `currency`.", 20, ge=0)
    currency: str = key("ISO 4217 currency code.", "USD", pattern=r"^[A-Z]{3}$")
    settle_mode: str = key("When the payment settles relative to the call.", "settle_first")
    billing_mode: str = key("What one payment buys.", "per_call")
    max_calls: int = key("Calls one paid token allows (when `allowReuse`).", 1, ge=1)
    allow_reuse: bool = key("A token may pay for up to `maxCalls` calls; else for one.", False)
    bind_client: bool = key("A token works only for the API key that paid.", True)

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if value not in CURRENCY_CODES:
            raise PydanticCustomError(
                "invalid-value", "currency '{value}' is not an ISO 4217 code", {"value": value}
            )
        return value

    @model_validator(mode="after")
    def _reuse(self) -> "PricingPolicy":
        if self.max_calls > 1 and not self.allow_reuse:
            raise PydanticCustomError(
                "invalid-value",
                "maxCalls {calls} needs allowReuse: true (without reuse a token pays one call)",
                {"calls": self.max_calls},
            )
        return self


class PaymentProvider(_Model):
    """A payment provider a service accepts payment through.

    An ``x402_facilitator`` provider with ``network`` and ``asset`` gets x402 v2
    payment requirements per service (``generated/x402/offers.json``): the
    price in cents becomes ``amountCents * 10**(assetDecimals - 2)`` units of
    ``asset``, a USD stablecoin such as USDC. Without them it has none.
    """

    provider: str = key("Provider kind.", "x402_facilitator")
    network: str | None = key(
        "x402: CAIP-2 network id of the chain paid on.",
        "eip155:84532",
        None,
        pattern=r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$",
    )
    asset: str | None = key(
        "x402: address of the USD stablecoin paid in.",
        "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        None,
    )
    asset_decimals: int = key("x402: decimals of `asset` (6 for USDC).", 6, 6, ge=2, le=36)
    token_name: str | None = key("x402: the token's EIP-712 domain name.", "USDC", None)
    token_version: str | None = key("x402: the token's EIP-712 domain version.", "2", None)
    pay_to: str | None = key("x402: address that receives payments.", "0x" + "ab" * 20, None)
    pay_to_env: str | None = key(
        "x402: environment variable holding payTo when `payTo` is absent.", "X402_PAY_TO", None
    )
    facilitator_url: str | None = key(
        "x402: the facilitator that verifies and settles payments.",
        "https://x402.org/facilitator",
        None,
    )
    max_timeout_seconds: int = key(
        "x402: how long a payment authorization stays valid, in seconds.", 300, 300, ge=1
    )

    @model_validator(mode="after")
    def _x402_complete(self) -> "PaymentProvider":
        declared = (self.network, self.asset, self.token_name, self.token_version)
        if any(v is not None for v in declared) and None in declared:
            raise PydanticCustomError(
                "missing-key", "an x402 provider needs network, asset, tokenName and tokenVersion"
            )
        return self


class Parameter(_Model):
    """One input parameter: a preset name, a JSON type name, or a mapping.

    Written as a string (``ImageURL: image-url`` or ``Limit: number``) it
    names a preset or a JSON type; as a mapping, every key given overrides
    the preset's value.
    """

    preset: str | None = key("Name of a preset under `presets`.", "image-url", None)
    type: JsonType | None = key("JSON type of the value.", "string", None)
    format: str | None = key("JSON Schema format; `uri` means an http(s) URL.", "uri", None)
    description: str | None = key(
        "What the parameter is; default: `defaults.parameterDescription`.",
        "Name of the face database.",
        None,
    )
    example: Any = key("Value used in the example request.", "https://example.com/image.jpg", None)
    items: dict[str, Any] | None = key(
        "JSON Schema of array items.",
        {"type": "object", "properties": {"ImageURL": {"type": "string"}}},
        None,
    )
    enum: list[Any] | None = key("The only values allowed.", [0, 1], None)
    minimum: int | float | None = key("Smallest number allowed.", 0, None)
    maximum: int | float | None = key("Largest number allowed.", 1, None)
    required_context: str | None = key(
        "What a caller needs to use this parameter.", "public-image-url", None
    )
    allow_private_hosts: bool | None = key(
        "Whether the parameter's URLs may name private, loopback or link-local hosts; "
        "default: they may not, and the gateway refuses them.",
        False,
        None,
    )
    wire: str | None = key(
        "How the parameter goes on the wire, as the official SDK sends it; one of the "
        "provider protocol's styles (`aliyun-rpc`: `flat` (default), `json`, `repeatList`, "
        "`simple`, `query`).",
        "json",
        None,
    )

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        mapping = handler(core_schema)
        shorthand = {
            "type": "string",
            "description": "A preset name, or a JSON type name for a plain parameter.",
            "examples": ["image-url", "number"],
        }
        return {"anyOf": [shorthand, mapping]}

    @model_validator(mode="wrap")
    @classmethod
    def _shorthand(cls, value: Any, handler: Any) -> Any:
        """A string is ``{"type": ...}`` or ``{"preset": ...}``; the parameter it makes is
        shared by every use (frozen: thousands of services name a few presets)."""
        if not isinstance(value, str):
            return handler(value)
        found = _SHORTHANDS.get(value)
        if found is None:
            found = handler({"type" if value in JSON_TYPES else "preset": value})
            if len(_SHORTHANDS) < MAX_SHORTHANDS:
                _SHORTHANDS[value] = found
        return found

    @model_validator(mode="after")
    def _typed(self) -> "Parameter":
        if self.preset is None and self.type is None:
            raise PydanticCustomError("missing-key", "a parameter needs a preset or a type")
        return self


#: The parameter each shorthand string made (see :meth:`Parameter._shorthand`), at most
#: :data:`MAX_SHORTHANDS` of them.
_SHORTHANDS: dict[str, Parameter] = {}
MAX_SHORTHANDS = 4096


class Preset(_Model):
    """A reusable parameter definition; ``{name}`` in the description is the parameter name."""

    type: JsonType = key("JSON type of the value.", "string")
    format: str | None = key("JSON Schema format; `uri` means an http(s) URL.", "uri", None)
    description: str | None = key(
        "What a parameter of this preset is; {name} is the parameter's name.",
        "Public http or https image URL accepted by the Alibaba Cloud API.",
        None,
    )
    example: Any = key("Value used in example requests.", "https://example.com/image.jpg", None)
    items: dict[str, Any] | None = key("JSON Schema of array items.", {"type": "object"}, None)
    enum: list[Any] | None = key("The only values allowed.", ["a", "b"], None)
    minimum: int | float | None = key("Smallest number allowed.", 0, None)
    maximum: int | float | None = key("Largest number allowed.", 1, None)
    required_context: str | None = key(
        "What a caller needs to use such a parameter.", "public-image-url", None
    )
    allow_private_hosts: bool | None = key(
        "Whether such a parameter's URLs may name private, loopback or link-local hosts "
        "(default: no).",
        False,
        None,
    )


class Sla(_Model):
    """Service level published with a service."""

    uptime: str = key("Availability promised, in percent.", "99.5%", pattern=r"^\d+(\.\d+)?%$")
    max_latency: str = key(
        "Slowest answer promised, in milliseconds.", "5000ms", pattern=r"^\d+ms$"
    )


class ErrorExample(_Model):
    """A request the route rejects, with its status and error text."""

    input: dict[str, Any] = key("The request body.", {})
    error: str = key("The route's error text.", "ImageURL is required")
    status_code: int = key("The HTTP status of the answer.", 400, 400, ge=400, le=499)


class Annotations(_Model):
    """MCP tool annotation overrides (over `readOnly`, `destructive`, `idempotent`, verbs)."""

    read_only_hint: bool | None = key("The tool changes nothing upstream.", True, None)
    destructive_hint: bool | None = key("The tool may delete upstream data.", False, None)
    idempotent_hint: bool | None = key("Repeating a call has no further effect.", True, None)
    open_world_hint: bool | None = key("The tool reaches outside systems.", True, None)


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


class Defaults(_Model):
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


class Extend(_Model):
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


def _scoped_defaults(name: str, doc: str, leave_out: tuple[str, ...]) -> type[_Model]:
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
        __base__=_Model,
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
Provider.model_rebuild()


class Category(_Model):
    """A marketplace category: how the doc index groups services and search filters them."""

    label: str = key("English label (doc index heading).", "Image enhancement")
    label_zh: str | None = key("Chinese label.", "图像增强", None)
    description: str | None = key(
        "One sentence on what the category holds.", "Make images sharper, larger, cleaner.", None
    )
    synonyms: dict[str, list[str]] = key(
        "Search expansions of this category's services: a query with this word (an English "
        "word, whole; Chinese text, anywhere in the query) also matches these terms.",
        {"enhance": ["super resolution", "denoise"], "增强": ["超分"]},
        default_factory=dict,
    )
    defaults: CategoryDefaults | None = key(  # type: ignore[valid-type]
        "Defaults of this category's services: they win over the provider's and the global "
        "`defaults`, and lose to the service's own keys.",
        {"tags": ["computer-vision", "image-enhancement"]},
        None,
    )


class Service(_Model):
    """One paid service: one upstream action. Keys left out come from `defaults`."""

    id: str = key("Canonical public id, kebab case.", "face-detection", pattern=ID_PATTERN)
    action: str = key("Upstream action.", "DetectFace", pattern=ACTION_PATTERN)
    title_zh: str | None = key("Chinese API title (in the keywords).", "人脸检测定位", None)
    summary_zh: str = key("Chinese action summary, one sentence.", "检测图片中人脸的位置。")
    task: str | None = key(
        "English task phrase; default: `defaults.taskTemplate` with summaryZh.",
        "detecting face location, pose, landmarks, and quality",
        None,
    )
    name: str | None = key(
        "Display name; default: the action's words and nameSuffix.", "Detect Face", None
    )
    tool_name: str | None = key(
        "MCP tool name; default: the id with - as _.", "face_detection", None
    )
    legacy_id: str | None = key(
        "Legacy id; default: legacyIdPrefix and the action in kebab case.",
        "aliyun-facebody-detect-face",
        None,
        pattern=ID_PATTERN,
    )
    provider: str | None = key("Provider, instead of the default one.", "openplatform", None)
    pricing_policy: str | None = key(
        "Pricing policy, instead of the default.", "aliyun-viapi", None
    )
    payment_provider: str | None = key(
        "Payment provider, instead of the default.", "x402-base-usdc", None
    )
    category: str | None = key("Category, instead of the default.", "face-body", None)
    tags: ListOrExtend | None = key(
        "Tags, instead of the default ones." + LIST_RULE, ["computer-vision"], None
    )
    keywords: list[str] = key("Extra keywords.", ["face landmarks"], default_factory=list)
    limitations: ListOrExtend | None = key(
        "Limitations, instead of the default ones." + LIST_RULE, [], None
    )
    required_context: list[str] | None = key("Context, instead of the derived one.", [], None)
    complexity: str | None = key("Complexity, instead of the default.", "moderate", None)
    typical_response_time: str | None = key("Usual latency, instead of the default.", "800ms", None)
    cacheable: bool | None = key("Cacheable, instead of the default.", False, None)
    idempotent: bool | None = key(
        "Idempotent, instead of the default (and the MCP idempotentHint).", False, None
    )
    read_only: bool | None = key("The MCP readOnlyHint, instead of the default.", False, None)
    destructive: bool | None = key("The MCP destructiveHint, instead of the default.", True, None)
    output_format: str | None = key("Output format, instead of the default.", "json", None)
    sla: Sla | None = key(
        "Service level, instead of the default.", {"uptime": "99.9%", "maxLatency": "3000ms"}, None
    )
    related_services: list[str] | None = key(
        "Related service ids, instead of the derived ones.", ["face-search"], None
    )
    params: dict[ParameterName, Parameter] = key(
        "Input parameters by upstream name, in the order inputTypes lists their types.",
        {"ImageURL": "image-url", "MaxFaceNumber": "number"},
        default_factory=dict,
    )
    required: list[str] = key("Required parameter names.", ["ImageURL"], default_factory=list)
    output_schema: dict[str, Any] | None = key(
        "Output schema, instead of the default.", {"type": "object"}, None
    )
    example_request: dict[str, Any] | None = key(
        "Example request, instead of the derived one.",
        {"ImageURL": "https://example.com/a.jpg"},
        None,
    )
    error_examples: list[ErrorExample] | None = key(
        "Error examples, instead of the derived ones.",
        [{"input": {}, "error": "ImageURL is required"}],
        None,
    )
    upstream_method: Literal["POST", "GET"] | None = key(
        "HTTP method of the upstream action, as its official SDK sends it, instead of the "
        "provider's `upstreamMethod`.",
        "GET",
        None,
    )
    upstream_differences: dict[str, str] | None = key(
        "Parameters that differ from the official SDK on purpose, each with the reason "
        "(`s402gen validate --upstream` does not report them).",
        {"ImageURLA": "required here: the live service always compares two URLs"},
        None,
    )
    annotations: Annotations | None = key(
        "MCP tool annotation overrides.", {"readOnlyHint": True}, None
    )
    example_result: str | None = key(
        "Result text of the derived example response, instead of the inherited one.",
        "example result of face detection",
        None,
    )

    @field_validator("required")
    @classmethod
    def _no_repeats(cls, names: list[str]) -> list[str]:
        repeated = [name for position, name in enumerate(names) if name in names[:position]]
        if repeated:
            raise PydanticCustomError(
                "invalid-value", "'{name}' is listed twice", {"name": repeated[0]}
            )
        return names


class Catalog(_Model):
    """The whole catalog.yaml document."""

    catalog: CatalogInfo = key(
        "Catalog-wide facts.", {"generatedAt": "2026-06-03T23:51:26Z"}, default_factory=CatalogInfo
    )
    providers: dict[str, Provider] = key(
        "Upstream products by name.",
        {"facebody": {"product": "facebody", "version": "2019-12-30"}},
    )
    pricing_policies: dict[str, PricingPolicy] = key(
        "Pricing policies by id.", {"aliyun-viapi": {"amountCents": 20, "currency": "USD"}}
    )
    payment_providers: dict[str, PaymentProvider] = key(
        "Payment providers by id.", {"x402-base-usdc": {"provider": "x402_facilitator"}}
    )
    include: list[str] = key(
        "Globs, relative to this file, of more catalog files (sorted; each may hold "
        "`services`, `categories`, `providers`, `presets`, `pricingPolicies`, "
        "`paymentProviders`).",
        ["services/*.yaml"],
        default_factory=list,
    )
    categories: dict[str, Category] = key(
        "Marketplace categories by id (a service's `category`); when any is declared, every "
        "service's category must be one of them.",
        {"image-enhancement": {"label": "Image enhancement", "labelZh": "图像增强"}},
        default_factory=dict,
    )
    presets: dict[str, Preset] = key(
        "Reusable parameter definitions by name.",
        {"image-url": {"type": "string", "format": "uri"}},
        default_factory=dict,
    )
    defaults: Defaults = key("What every service gets unless it says otherwise.", {})
    services: list[Service] = key(
        "The services, in catalog order.",
        [{"id": "face-detection", "action": "DetectFace", "summaryZh": "检测人脸。"}],
        min_length=1,
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of catalog.yaml (Draft 2020-12), from this model, for editors."""
    schema = Catalog.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "s402gen catalog.yaml"
    # a catalog split in files may keep every service in the files it includes
    schema["required"] = [name for name in schema["required"] if name != "services"]
    schema["anyOf"] = [{"required": ["services"]}, {"required": ["include"]}]
    return schema


def part_json_schema() -> dict[str, Any]:
    """The JSON Schema of a file that a catalog's ``include:`` names: the catalog's
    :data:`s402gen.load.INCLUDABLE` keys, none required (Draft 2020-12), for editors."""
    from .load import INCLUDABLE

    whole = json_schema()
    return {
        "$defs": whole["$defs"],
        "$schema": whole["$schema"],
        "additionalProperties": False,
        "description": "A file of a catalog split with `include:`: services and definitions "
        "that join the including catalog's.",
        "properties": {name: whole["properties"][name] for name in INCLUDABLE},
        "title": "s402gen catalog part",
        "type": "object",
    }

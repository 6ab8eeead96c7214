"""Authoring model: what a catalog author may write in catalog.yaml.

Pydantic models with ``extra="forbid"`` and strict types: an unknown key,
a missing key or a value of the wrong type is an error, reported by
:mod:`s402gen.validate` at its line and column. Keys are camelCase, like
the catalog JSON they compile to. Shared settings live once under
``providers``, ``pricingPolicies``, ``paymentProviders``, ``presets`` and
``defaults``; a service names what it uses and overrides only what differs.

This module holds the document (:class:`Catalog`, its editor schema) and its
sections: catalog info, providers, pricing policies, payment providers,
categories and services. Parameters and presets are in
:mod:`s402gen.model_parameters`, defaults in :mod:`s402gen.model_defaults`,
the base they share in :mod:`s402gen.model_base`.

Every constraint on one field is in these modules (types, patterns, bounds,
reserved names, template placeholders, repeats in a list). A validator that
reports a particular rule raises ``PydanticCustomError`` whose type is the
rule's name (``missing-key``, ``invalid-value``): :mod:`s402gen.validate`
reports it so. Rules between fields or sections (references, uniqueness)
live in :mod:`s402gen.validate`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .iso4217 import CURRENCY_CODES
from .model_base import ACTION_PATTERN, ID_PATTERN, AuthoringModel, key
from .model_defaults import (
    LIST_RULE,
    CategoryDefaults,
    Defaults,
    ListOrExtend,
    ProviderDefaults,
    Sla,
)
from .model_parameters import Parameter, ParameterName, Preset
from .runtime.spec import DEFAULT_PROTOCOL


class CatalogInfo(AuthoringModel):
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


class Provider(AuthoringModel):
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
    defaults: ProviderDefaults | None = key(  # type: ignore[valid-type]
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


class PricingPolicy(AuthoringModel):
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


class PaymentProvider(AuthoringModel):
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


class ErrorExample(AuthoringModel):
    """A request the route rejects, with its status and error text."""

    input: dict[str, Any] = key("The request body.", {})
    error: str = key("The route's error text.", "ImageURL is required")
    status_code: int = key("The HTTP status of the answer.", 400, 400, ge=400, le=499)


class Annotations(AuthoringModel):
    """MCP tool annotation overrides (over `readOnly`, `destructive`, `idempotent`, verbs)."""

    read_only_hint: bool | None = key("The tool changes nothing upstream.", True, None)
    destructive_hint: bool | None = key("The tool may delete upstream data.", False, None)
    idempotent_hint: bool | None = key("Repeating a call has no further effect.", True, None)
    open_world_hint: bool | None = key("The tool reaches outside systems.", True, None)


class Category(AuthoringModel):
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


class Service(AuthoringModel):
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


class Catalog(AuthoringModel):
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

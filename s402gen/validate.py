"""Validate stage: structural checks (pydantic) and semantic checks (on the IR).

:func:`parse_model` turns the loaded tree into the authoring model and maps
every pydantic error back to ``catalog.yaml:LINE:COL``, with a did-you-mean
for unknown keys. :func:`check_catalog` then checks what a schema cannot:
uniqueness across services, tool names, JSON Schema validity, examples
against their schemas, error examples really rejected, references to
related services, and the lint warnings for the live catalog's known
defects. Both return diagnostics; neither raises for a user's mistake.
"""

from __future__ import annotations

import functools
import keyword
import re
import types
import typing
from typing import Any, Iterable

import jsonschema
import jsonschema_specifications
import orjson
from pydantic import BaseModel, ValidationError

from . import ir, model
from .runtime import protocol
from .diagnostics import Diagnostic, Rule, Rules, did_you_mean
from .load import LoadedDocument, SourceMap
from .runtime.validation import RequestError, RequestValidator, schema_validator

#: MCP tool names this compiler accepts (the MCP SDK allows up to 128 characters;
#: 64 keeps names usable by every client the marketplace targets).
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_META_VALIDATOR = jsonschema.Draft202012Validator(
    jsonschema.Draft202012Validator.META_SCHEMA,
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,  # a "pattern" must compile
)


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not valid Draft 2020-12 JSON Schema, or ``None``.

    Memoized on the schema's canonical JSON: presets make most parameter
    schemas of a catalog repeat.
    """
    return _schema_problem(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))


#: Every keyword of the Draft 2020-12 vocabularies, read from jsonschema's own metaschemas.
KNOWN_KEYWORDS = frozenset(
    keyword
    for uri, resource in jsonschema_specifications.REGISTRY.items()
    if "2020-12" in uri
    for keyword in resource.contents.get("properties", {})
)
_UNSUPPORTED = frozenset({"$ref", "$dynamicRef", "$recursiveRef", "$id", "$anchor"})
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_VALUES = (
    "items", "additionalProperties", "not", "contains", "if", "then", "else",
    "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema",
)  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _schema_problem(canonical: bytes) -> str | None:
    schema = orjson.loads(canonical)
    error = jsonschema.exceptions.best_match(_META_VALIDATOR.iter_errors(schema))
    if error is not None:
        return _describe(error)
    unknown = _unknown_keywords(schema, "")
    return unknown[0] if unknown else None


def _unknown_keywords(schema: Any, where: str) -> list[str]:
    """JSON Schema allows unknown keywords; in a catalog they are mistakes.

    ``description: a, b`` in a YAML flow mapping, for one, makes a key ``b``.
    """
    if not isinstance(schema, dict):
        return []
    found = [
        (
            f"unknown keyword '{key}' at {where or '/'} (a YAML typo?)"
            if key not in _UNSUPPORTED
            else f"'{key}' at {where or '/'} is not supported: write the schema inline or use a preset"
        )
        for key in schema
        if key not in KNOWN_KEYWORDS or key in _UNSUPPORTED
    ]
    children: list[tuple[str, Any]] = []
    for key in _SCHEMA_MAPS:
        children += [(f"{where}/{key}/{name}", sub) for name, sub in schema.get(key, {}).items()]
    for key in _SCHEMA_LISTS:
        children += [(f"{where}/{key}/{i}", sub) for i, sub in enumerate(schema.get(key, []))]
    children += [(f"{where}/{key}", schema[key]) for key in _SCHEMA_VALUES if key in schema]
    for path, sub in children:
        found += _unknown_keywords(sub, path.lstrip("/"))
    return found


# ---------------------------------------------------------------------------
# structure


def parse_model(doc: LoadedDocument) -> tuple[model.Catalog | None, list[Diagnostic]]:
    """Build the authoring model from a loaded tree; ``None`` and diagnostics on failure."""
    if not isinstance(doc.data, dict):
        found = "an empty document" if doc.data is None else type(doc.data).__name__
        return None, [
            Diagnostic(
                Rules.INVALID_VALUE,
                f"the catalog must be a mapping with 'services' and its settings, not {found}",
                doc.source.value(()),
            )
        ]
    try:
        return model.Catalog.model_validate(doc.data), []
    except ValidationError as exc:
        errors = exc.errors()
    # a misspelt key is reported once, as unknown with its suggestion, not also as missing
    suggested = {
        (tuple(err["loc"][:-1]), close)
        for err in errors
        if err["type"] == "extra_forbidden"
        for close in _close_keys(str(err["loc"][-1]), tuple(err["loc"][:-1]))
    }
    return None, [
        _pydantic_diagnostic(err, doc.source)
        for err in errors
        if not (err["type"] == "missing" and (tuple(err["loc"][:-1]), err["loc"][-1]) in suggested)
    ]


def _close_keys(key: str, parent: tuple) -> list[str]:
    suggestion = did_you_mean(key, _allowed_keys(parent))
    return [suggestion.split("'")[1]] if suggestion else []


def _pydantic_diagnostic(err: Any, source: SourceMap) -> Diagnostic:
    loc = tuple(err["loc"])
    dotted = _dotted(loc)
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        return Diagnostic(
            Rules.UNKNOWN_KEY,
            f"unknown key '{key}' in {_dotted(loc[:-1]) or 'the catalog'}"
            + did_you_mean(key, allowed),
            source.key(loc),
        )
    if err["type"] == "missing":
        return Diagnostic(
            Rules.MISSING_KEY,
            f"missing required key '{loc[-1]}' in {_dotted(loc[:-1]) or 'the catalog'}",
            source.value(loc[:-1]),
        )
    message = err["msg"][0].lower() + err["msg"][1:]
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
    return Diagnostic(Rules.INVALID_VALUE, f"{dotted}: {message}{shown}", source.value(loc))


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(loc: tuple) -> list[str]:
    """Keys the model accepts at ``loc`` (for did-you-mean); empty when unknown."""
    current: Any = model.Catalog
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _step(tp: Any, part: Any) -> Any:
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            if (info.alias or name) == part:
                return info.annotation
        return None
    if origin is list and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(tp)[1]
    return None


# ---------------------------------------------------------------------------
# semantics


def check_catalog(
    catalog: ir.Catalog, authored: model.Catalog, source: SourceMap
) -> list[Diagnostic]:
    """Semantic checks of a derived catalog; returns errors and warnings."""
    found: list[Diagnostic] = []

    def report(rule: Rule, message: str, path: tuple) -> None:
        found.append(Diagnostic(rule, message, source.value(path)))

    _check_unique(catalog.services, report)
    known_ids = {s.id for s in catalog.services}
    for svc, authored_svc in zip(catalog.services, authored.services):
        _check_service(svc, authored_svc, known_ids, report)
    if catalog.generated_at is None:
        report(
            Rules.NO_GENERATED_AT,
            "no catalog.generatedAt and no SOURCE_DATE_EPOCH: generatedAt is left out",
            ("catalog",),
        )
    return found


def _check_unique(services: Iterable[ir.Service], report: Any) -> None:
    seen: dict[tuple[str, str], ir.Service] = {}
    checks = (
        ("legacy id", Rules.DUPLICATE_LEGACY_ID, "legacyId"),
        ("tool name", Rules.DUPLICATE_TOOL_NAME, "toolName"),
        ("endpoint", Rules.DUPLICATE_ENDPOINT, "id"),
    )
    for svc in services:
        if seen.setdefault(("id", svc.id), svc) is not svc:
            first = seen[("id", svc.id)]
            report(
                Rules.DUPLICATE_ID,
                f"id '{svc.id}' is already used by services[{first.index}]",
                ("services", svc.index, "id"),
            )
            continue  # its tool name and endpoint repeat the same clash
        values = {
            "legacy id": [svc.legacy_id],
            "tool name": [svc.tool_name],
            "endpoint": list(unique_pair(svc.endpoint, svc.legacy_endpoint)),
        }
        for kind, rule, key in checks:
            for value in values[kind]:
                first = seen.setdefault((kind, value), svc)
                if first is not svc:
                    report(
                        rule,
                        f"{kind} '{value}' of service '{svc.id}' is already used by "
                        f"service '{first.id}' (services[{first.index}])",
                        ("services", svc.index, key),
                    )


def unique_pair(a: str, b: str) -> tuple[str, ...]:
    """``(a, b)``, or ``(a,)`` when both are the same."""
    return (a,) if a == b else (a, b)


def _check_service(
    svc: ir.Service, authored: model.Service, known_ids: set[str], report: Any
) -> None:
    path = ("services", svc.index)
    if svc.tool_name in protocol.RESERVED_TOOL_NAMES:
        report(
            Rules.DUPLICATE_TOOL_NAME,
            f"tool name '{svc.tool_name}' is taken by the MCP payment tools",
            path + ("toolName",),
        )
    if not TOOL_NAME_PATTERN.fullmatch(svc.tool_name):
        report(
            Rules.INVALID_TOOL_NAME,
            f"tool name '{svc.tool_name}' must match {TOOL_NAME_PATTERN.pattern}",
            path + ("toolName",),
        )
    if keyword.iskeyword(svc.module):
        report(
            Rules.INVALID_TOOL_NAME,
            f"route module name '{svc.module}' is a Python keyword; choose another id",
            path + ("id",),
        )
    for position, related in enumerate(svc.related_services):
        if related == svc.id or svc.related_services.index(related) != position:
            report(
                Rules.UNKNOWN_RELATED_SERVICE,
                f"related service '{related}' of '{svc.id}' is the service itself or a repeat",
                path + ("relatedServices", position),
            )
        elif related not in known_ids:
            report(
                Rules.UNKNOWN_RELATED_SERVICE,
                f"related service '{related}' of '{svc.id}' does not exist"
                + did_you_mean(related, known_ids),
                (
                    path + ("relatedServices", position)
                    if authored.related_services is not None
                    else ("defaults", "relatedServices")
                ),
            )
    input_ok = True
    for name, prop in svc.input_schema["properties"].items():
        problem = schema_problem(prop)
        if problem is not None:
            input_ok = False
            report(
                Rules.INVALID_INPUT_SCHEMA,
                f"schema of parameter '{name}' is not valid JSON Schema: {problem}",
                path + ("params", name),
            )
    output_path = (
        path + ("outputSchema",) if authored.output_schema else ("defaults", "outputSchema")
    )
    output_ok = _check_output_schema(svc.output_schema, output_path, report)
    if input_ok:
        _check_examples(svc, authored, path, report)
    if output_ok:
        for error in schema_validator(svc.output_schema).iter_errors(svc.example_response):
            report(
                Rules.INVALID_EXAMPLE_RESPONSE,
                f"example response of '{svc.id}' does not match its output schema: "
                f"{_describe(error)}",
                output_path,
            )
    _lint_params(svc, authored, path, report)


def _check_output_schema(schema: dict, path: tuple, report: Any) -> bool:
    problem = schema_problem(schema)
    if problem is not None:
        report(
            Rules.INVALID_OUTPUT_SCHEMA, f"output schema is not valid JSON Schema: {problem}", path
        )
        return False
    if schema.get("type") != "object":
        report(
            Rules.INVALID_OUTPUT_SCHEMA,
            "output schema must have type 'object' (MCP requires it)",
            path,
        )
        return False
    return True


def _describe(error: jsonschema.ValidationError | jsonschema.SchemaError) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" at {where}" if where else "")


def _check_examples(svc: ir.Service, authored: model.Service, path: tuple, report: Any) -> None:
    route = RequestValidator.for_spec(ir.route_spec(svc))  # the route's own schema validator
    if svc.example_request is not None:
        for error in route.validator.iter_errors(svc.example_request):
            where = (
                path + ("exampleRequest",)
                if authored.example_request is not None
                else path + ("params", str(error.absolute_path[0]) if error.absolute_path else "")
            )
            report(
                Rules.INVALID_EXAMPLE_REQUEST,
                f"example request of '{svc.id}' does not match its input schema: "
                f"{_describe(error)}",
                where,
            )
    for position, example in enumerate(svc.error_examples):
        where = (
            path + ("errorExamples", position)
            if authored.error_examples is not None
            else path + ("required",)
        )
        promise = f"error example {example.input!r} of '{svc.id}' promises {example.status_code} '{example.error}'"
        try:
            route.arguments(example.input)  # the route's own check, which ends with the schema
        except RequestError as refused:
            if (str(refused), 400) != (example.error, example.status_code):
                report(
                    Rules.ERROR_EXAMPLE_MISMATCH,
                    f"{promise}, but the route answers 400 '{refused}'",
                    where,
                )
        else:
            report(
                Rules.ERROR_EXAMPLE_ACCEPTED, f"{promise}, but its input schema accepts it", where
            )


def _lint_params(svc: ir.Service, authored: model.Service, path: tuple, report: Any) -> None:
    if not svc.title_zh:
        report(
            Rules.NO_CHINESE_TITLE,
            f"service '{svc.id}' has no titleZh: Chinese searches will not find it by title",
            path,
        )
    for name in svc.input_schema["required"]:
        if not re.search(rf"\b{re.escape(name)}\b", svc.description):
            report(
                Rules.DESCRIPTION_MISSES_REQUIRED,
                f"the description of '{svc.id}' does not name its required parameter '{name}'",
                path,
            )
    by_description: dict[str, list[str]] = {}
    for name, prop in svc.input_schema["properties"].items():
        by_description.setdefault(prop["description"], []).append(name)
        if prop["type"] == "array" and "items" not in prop:
            report(
                Rules.ARRAY_WITHOUT_ITEMS,
                f"array parameter '{name}' of '{svc.id}' has no 'items' schema",
                path + ("params", name),
            )
    for description, names in by_description.items():
        stems = {re.sub(r"[A-Z]$", "", n) if len(n) > 1 else n for n in names}
        if len(stems) > 1:  # A/B sides of a pair may share one description
            report(
                Rules.REPEATED_DESCRIPTION,
                f"parameters {', '.join(names)} of '{svc.id}' share the description "
                f"'{description}'; describe each one",
                path + ("params", names[1]),
            )

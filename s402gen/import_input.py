"""What ``s402gen import`` reads: a catalog JSON, checked before anything is imported.

Every entry is checked against :data:`ENTRY_SCHEMA`: the output contract's
catalog entry schema, requiring only the fields the import needs and adding
the authoring model's own constraints, so that a malformed file gets a list
of clear problems, never a traceback. A checked entry is then read as an
:data:`ImportEntry`: the contract's model of a catalog entry, with the same
needs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence, Union, get_args, get_origin

import jsonschema
import pydantic

from . import model_base
from .diagnostics import Finding
from .runtime import contract, protocol
from .validate import TOOL_NAME_PATTERN

PRICING_KEYS = "amountCents currency settleMode billingMode maxCalls allowReuse bindClient"


#: What the import needs of a catalog entry, by path (``[]`` is each item of a list);
#: everything else may be missing, and unknown keys are reported, not refused.
NEEDS = {
    "": "id internalServiceId name description category keywords useCases limitations tags "
    "inputSchema outputSchema exampleResponse pricing payment complexity typicalResponseTime "
    "cacheable idempotent outputFormat relatedServices requiredContext errorExamples sla",
    "inputSchema": "properties",
    "exampleResponse": "data",
    "exampleResponse.data": "Action",
    "pricing": "policyId " + PRICING_KEYS,
    "payment": "providerId provider",
    "errorExamples[]": "input error",
    "sla": "uptime maxLatency",
}
_S = {"type": "string"}
#: The authoring model's constraints on what the import reads, beyond the contract's types.
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "id": {"pattern": model_base.ID_PATTERN},
    "internalServiceId": {"pattern": model_base.ID_PATTERN},
    "keywords": {"minItems": 1},
    "useCases": {"minItems": 1},
    "inputSchema": {
        "properties": {
            "description": _S,
            "required": {"type": "array", "items": _S},
            "properties": {
                "type": "object",
                "additionalProperties": {"type": "object"},
                "propertyNames": {
                    "pattern": model_base.PARAMETER_PATTERN,
                    "not": {"const": protocol.MCP_ARGUMENT},
                },
            },
        }
    },
    "exampleResponse.data.Action": {"pattern": model_base.ACTION_PATTERN},
    "pricing.currency": {"pattern": "^[A-Z]{3}$"},
    "discovery.toolName": {"pattern": TOOL_NAME_PATTERN.pattern},
    "sla.uptime": {"pattern": r"^\d+(\.\d+)?%$"},
    "sla.maxLatency": {"pattern": r"^\d+ms$"},
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` replaced by its definition, and nothing required or closed."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    skipped = ("required", "additionalProperties", "$defs", "$schema", "title", "description")
    return {
        key: (
            {name: _inline(prop, defs) for name, prop in value.items()}  # names, not keywords
            if key == "properties"
            else _inline(value, defs)
        )
        for key, value in node.items()
        if key not in skipped
    }


def _at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    for part in filter(None, path.split(".")):
        schema = schema["items"] if part == "[]" else schema["properties"][part]
    return schema


def entry_schema() -> dict[str, Any]:
    """The JSON Schema of a catalog entry as the import reads it.

    The output contract's schema (``contract.CatalogEntry``) with the
    import's own needs (:data:`NEEDS`) as its only required keys, the
    authoring constraints of :data:`CONSTRAINTS`, and without the search's
    runtime fields, which the import ignores.
    """
    published = contract.contract_schema(contract.CatalogEntry)
    schema = _inline(published, published["$defs"])
    for runtime_field in contract.RUNTIME_FIELDS:
        del schema["properties"][runtime_field]
    for path, needs in NEEDS.items():
        _at(schema, path.replace("[]", ".[]"))["required"] = needs.split()
    for path, constraint in CONSTRAINTS.items():
        parent, _, name = path.rpartition(".")
        node = _at(schema, parent)["properties"][name]
        node.update({k: v for k, v in constraint.items() if k != "properties"})
        node.setdefault("properties", {}).update(constraint.get("properties", {}))
        if not node["properties"]:
            del node["properties"]
    return schema


ENTRY_SCHEMA = entry_schema()


class _Read(contract.Contract):
    """Base of the import's models: read by the published (camelCase) names only, unknown keys
    ignored (the import reports them when it compares the result with its input)."""

    model_config = pydantic.ConfigDict(extra="ignore", validate_by_name=False)


def _absent(value: Any) -> bool:
    return value is None


def import_model(model: type[contract.Contract], path: str = "") -> type[contract.Contract]:
    """``model`` as the import reads it at ``path`` (a :data:`NEEDS` path): the same fields and
    types (strict), its nested models read the same way, but only what :data:`NEEDS` names
    required (an absent field is ``None``), unknown keys ignored, and no runtime fields.
    """
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if not path and alias in contract.RUNTIME_FIELDS:
            continue
        where, annotation = f"{path}.{alias}".lstrip("."), field.annotation
        if get_origin(annotation) in (Union, type(int | None)):  # X | None: X
            (annotation,) = (arg for arg in get_args(annotation) if arg is not type(None))
        item = get_args(annotation)[0] if get_origin(annotation) is list else None
        if isinstance(item, type) and issubclass(item, contract.Contract):
            annotation = list[import_model(item, f"{where}[]")]  # type: ignore[misc]
        elif isinstance(annotation, type) and issubclass(annotation, contract.Contract):
            annotation = import_model(annotation, where)
        if alias in NEEDS.get(path, "").split():
            fields[name] = (annotation, pydantic.Field(alias=alias))
        else:
            absent = pydantic.Field(None, alias=alias, exclude_if=_absent)
            fields[name] = (annotation | None, absent)
    return pydantic.create_model(f"Import{model.__name__}", __base__=_Read, **fields)


#: A catalog entry as the import reads it: ``ImportEntry.model_validate(entry)`` of an entry
#: that :data:`ENTRY_SCHEMA` accepts, attributes as :class:`contract.CatalogEntry`'s.
ImportEntry = import_model(contract.CatalogEntry)
_DOCUMENT = jsonschema.Draft202012Validator(
    {
        "type": "object",
        "required": ["schemaVersion", "services"],
        "properties": {
            "schemaVersion": {"const": protocol.SCHEMA_VERSION},
            "services": {"type": "array", "minItems": 1, "items": ENTRY_SCHEMA},
        },
    }
)
GENERATED_AT_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MAX_PROBLEMS = 20


class ImportFailure(Exception):
    """``file`` cannot be imported; ``messages`` say why, one line each, after ``found``:
    the findings, located where they are, of a catalog.yaml that does not compile."""

    def __init__(self, file: str, messages: list[str], found: Sequence[Finding] = ()):
        super().__init__("; ".join(messages))
        self.file, self.messages, self.found = file, messages, tuple(found)


def document_problems(document: Any) -> list[str]:
    """Why ``document`` is not a catalog JSON the import can read, one line each; [] if it is."""
    problems = [
        _located(error.path, error.message)
        for error in sorted(_DOCUMENT.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]
    if not problems:
        ids = [entry["id"] for entry in document["services"]]
        problems = [
            f"services[{i}].id: {s!r} is repeated" for i, s in enumerate(ids) if s in ids[:i]
        ]
    for position, entry in enumerate(document["services"] if not problems else []):
        try:
            ImportEntry.model_validate(entry)
        except pydantic.ValidationError as invalid:  # stricter than JSON Schema: 1.0 is no int
            problems += [
                _located(
                    ["services", position, *error["loc"]],
                    f"{error['msg']} (got {error['input']!r})",
                )
                for error in invalid.errors()
            ]
    more = len(problems) - MAX_PROBLEMS
    return [p.lstrip(": ") for p in problems[:MAX_PROBLEMS]] + [f"... {more} more"] * (more > 0)


def _located(path: Any, message: str) -> str:
    """``message`` after the JSON path of the value (``services[0].pricing.amountCents: ...``)."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"{where}: {message}"


def read_text(path: str) -> str:
    """The UTF-8 text of ``path``; raises :class:`ImportFailure` when unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImportFailure(path, [f"cannot read: {reason}"]) from None


def read_catalog_json(path: str) -> dict[str, Any]:
    """Read and check a catalog JSON file; raises :class:`ImportFailure` saying what is wrong."""
    try:
        document = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportFailure(path, [f"not JSON: {exc}"]) from None
    problems = document_problems(document)
    if problems:
        raise ImportFailure(path, problems)
    return document


#: How ``--provider`` names the upstream of the imported services.
PROVIDER_PATTERN = re.compile(r"^([a-z][a-z0-9-]*):([0-9]{4}-[0-9]{2}-[0-9]{2}):([A-Za-z0-9.-]+)$")
PROVIDER_EXAMPLE = "facebody:2019-12-30:facebody.cn-shanghai.aliyuncs.com"


def parse_provider(text: str | None, file: str) -> dict[str, str]:
    """``PRODUCT:VERSION:ENDPOINT`` as a provider's ``product``, ``version``, ``endpoint``.

    Raises :class:`ImportFailure` about ``file`` (the import's input) when ``text``
    is absent (import does not guess the upstream) or malformed.
    """
    if not text:
        raise ImportFailure(
            file,
            [
                "the catalog JSON does not say which upstream product its services call, and "
                f"import does not guess it: pass --provider PRODUCT:VERSION:ENDPOINT "
                f"(e.g. {PROVIDER_EXAMPLE})"
            ],
        )
    found = PROVIDER_PATTERN.match(text)
    if found is None:
        raise ImportFailure(
            file, [f"--provider {text!r} is not PRODUCT:VERSION:ENDPOINT (e.g. {PROVIDER_EXAMPLE})"]
        )
    return dict(zip(("product", "version", "endpoint"), found.groups()))

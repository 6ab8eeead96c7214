"""What ``s402gen import`` reads: a catalog JSON, checked before anything is imported.

Every entry is checked against :data:`ENTRY_SCHEMA` (the fields the import
needs, with the authoring model's own constraints), so that a malformed
file gets a list of clear problems, never a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from . import model
from .runtime import protocol
from .validate import TOOL_NAME_PATTERN

PRICING_KEYS = "amountCents currency settleMode billingMode maxCalls allowReuse bindClient"


def _obj(needs: str = "", /, **props: Any) -> dict[str, Any]:
    """A JSON Schema object with properties ``props``, requiring the space-separated ``needs``."""
    return {"type": "object", "required": needs.split(), "properties": props}


# fmt: off
_S, _B, _O = {"type": "string"}, {"type": "boolean"}, {"type": "object"}
_SS, _ID = {"type": "array", "items": _S}, {"type": "string", "pattern": model.ID_PATTERN}
_NAMES = {"pattern": model.PARAMETER_PATTERN, "not": {"const": protocol.MCP_ARGUMENT}}
#: What the import reads of a catalog entry (with the authoring model's constraints).
ENTRY_SCHEMA = _obj(
    "id internalServiceId name description category keywords useCases limitations tags "
    "inputSchema outputSchema exampleResponse pricing payment complexity typicalResponseTime "
    "cacheable idempotent outputFormat relatedServices requiredContext errorExamples sla",
    id=_ID, internalServiceId=_ID, name=_S, description=_S, category=_S, complexity=_S,
    typicalResponseTime=_S, outputFormat=_S, cacheable=_B, idempotent=_B, limitations=_SS,
    tags=_SS, relatedServices=_SS, requiredContext=_SS, outputSchema=_O, exampleRequest=_O,
    keywords={**_SS, "minItems": 1}, useCases={**_SS, "minItems": 1},
    inputTypes=_SS, outputTypes=_SS,
    inputSchema=_obj("properties", description=_S, required=_SS, properties={
        **_O, "additionalProperties": _O, "propertyNames": _NAMES}),
    exampleResponse=_obj("data", data=_obj(
        "Action", Action={"type": "string", "pattern": model.ACTION_PATTERN})),
    pricing=_obj("policyId " + PRICING_KEYS, policyId=_S, settleMode=_S, billingMode=_S,
                 amountCents={"type": "integer", "minimum": 0}, allowReuse=_B, bindClient=_B,
                 currency={"type": "string", "pattern": "^[A-Z]{3}$"},
                 maxCalls={"type": "integer", "minimum": 1}),
    payment=_obj("providerId provider", providerId=_S, provider=_S),
    discovery=_obj(toolName={"type": "string", "pattern": TOOL_NAME_PATTERN.pattern}),
    errorExamples={"type": "array", "items": _obj(
        "input error", input=_O, error=_S, statusCode={"type": "integer"})},
    sla=_obj("uptime maxLatency", uptime={"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
             maxLatency={"type": "string", "pattern": r"^\d+ms$"}),
)
_DOCUMENT = jsonschema.Draft202012Validator(_obj(
    "schemaVersion services", schemaVersion={"const": protocol.SCHEMA_VERSION},
    services={"type": "array", "minItems": 1, "items": ENTRY_SCHEMA}))
# fmt: on
GENERATED_AT_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MAX_PROBLEMS = 20


class ImportFailure(Exception):
    """``file`` cannot be imported; ``messages`` say why, one line each."""

    def __init__(self, file: str, messages: list[str]):
        super().__init__("; ".join(messages))
        self.file, self.messages = file, messages


def document_problems(document: Any) -> list[str]:
    """Why ``document`` is not a catalog JSON the import can read, one line each; [] if it is."""
    problems = [
        "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path).lstrip(".")
        + f": {error.message}"
        for error in sorted(_DOCUMENT.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]
    if not problems:
        ids = [entry["id"] for entry in document["services"]]
        problems = [
            f"services[{i}].id: {s!r} is repeated" for i, s in enumerate(ids) if s in ids[:i]
        ]
    more = len(problems) - MAX_PROBLEMS
    return [p.lstrip(": ") for p in problems[:MAX_PROBLEMS]] + [f"... {more} more"] * (more > 0)


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

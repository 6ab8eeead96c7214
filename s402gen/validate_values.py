"""Validate stage, continued: rules on the values a catalog publishes.

Registered into :data:`s402gen.validate.REGISTRY` like every rule (one
function each): example requests naming unknown parameters, parameter
schemas no value satisfies, patterns a linear-time engine cannot run, ids
whose generated file names the file system refuses, and control characters
in published text. Single-field constraints (a real ``generatedAt``, an ISO
4217 ``currency``, a bare ``host[:port]`` endpoint, ``maxCalls`` with reuse)
are in :mod:`s402gen.model`.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Any, Iterator

import orjson
import re2

from .diagnostics import Rules, did_you_mean
from .runtime.validation import safe_pattern
from .schema_check import schema_problem, subschemas
from .validate import Context, Issue, rule

#: Longest file name (bytes) of one path component on the file systems s402gen writes to:
#: NAME_MAX of Linux ext4/xfs/btrfs and macOS APFS, and NTFS's 255 characters.
NAME_MAX = 255
#: The longest suffix render.iter_files adds to a service's id or module name (``.html``:
#: docs/tools/<id>.html; the others are ``.json`` and ``.py``).
LONGEST_SUFFIX = len(".html")


@rule(Rules.UNKNOWN_EXAMPLE_PARAMETER)
def unknown_example_parameter(ctx: Context) -> Iterator[Issue]:
    """An example request with a key its input schema does not have (the schema lets
    unknown keys through, so the example would teach callers a parameter that does nothing)."""
    for svc, authored, path in ctx.pairs():
        known = svc.input_schema["properties"]
        for name in svc.example_request or {}:
            if name not in known:
                where = path + ("exampleRequest", name)
                if authored.example_request is None:
                    where = path + ("params",)
                yield Issue(
                    f"example request of service '{svc.id}' sends '{name}', which is not one "
                    "of its parameters",
                    where,
                    did_you_mean(name, known),
                    svc.id,
                )


_JSON_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_BOUNDS = (("minLength", "maxLength"), ("minItems", "maxItems"))
_BOUNDS += (("minProperties", "maxProperties"),)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _unsatisfiable(schema: dict[str, Any]) -> str | None:
    """Why no value satisfies ``schema`` (one level, not its subschemas), or ``None``."""
    enum = schema.get("enum")
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    known = [_JSON_TYPES[t] for t in types if isinstance(t, str) and t in _JSON_TYPES]
    if isinstance(enum, list):
        if not enum:
            return "its enum is empty"
        wrong = [v for v in enum if known and not any(is_type(v) for is_type in known)]
        if wrong:
            return f"enum value {wrong[0]!r} is not of its type {'/'.join(types)}"
    low = [schema[k] for k in ("minimum", "exclusiveMinimum") if _number(schema.get(k))]
    high = [schema[k] for k in ("maximum", "exclusiveMaximum") if _number(schema.get(k))]
    if low and high and max(low) > min(high):
        return f"its lower bound {max(low)} is above its upper bound {min(high)}"
    lowest, highest = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _number(lowest) and _number(highest) and lowest >= highest:
        return f"exclusiveMinimum {lowest} is not below exclusiveMaximum {highest}"
    for least, most in _BOUNDS:
        if _number(schema.get(least)) and _number(schema.get(most)):
            if schema[least] > schema[most]:
                return f"{least} {schema[least]} is above {most} {schema[most]}"
    return None


@functools.lru_cache(maxsize=4096)
def _schema_findings(canonical: bytes, check: Any) -> tuple[tuple[str, str], ...]:
    """``(where, problem)`` of ``check`` over every subschema of a valid schema (given as
    its canonical JSON: presets make most schemas of a catalog repeat)."""
    schema = orjson.loads(canonical)
    if schema_problem(schema) is not None:
        return ()  # reported by invalid-input-schema or invalid-output-schema
    found = ((where, check(sub)) for where, sub in subschemas(schema))
    return tuple((where, problem) for where, problem in found if problem is not None)


def _findings(schema: Any, check: Any) -> tuple[tuple[str, str], ...]:
    return _schema_findings(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS), check)


@rule(Rules.UNSATISFIABLE_SCHEMA)
def unsatisfiable_schema(ctx: Context) -> Iterator[Issue]:
    """A parameter schema (or a schema inside it) no value satisfies: an empty ``enum``, an
    ``enum`` value of another type than the schema's, ``minimum`` above ``maximum``,
    ``minLength`` above ``maxLength`` and the like."""
    for svc, _, path in ctx.pairs():
        for name, prop in svc.input_schema["properties"].items():
            for where, problem in _findings(prop, _unsatisfiable):
                at = f" at {where}" if where else ""
                yield Issue(
                    f"no value satisfies parameter '{name}' of service '{svc.id}'{at}: {problem}",
                    path + ("params", name),
                    service=svc.id,
                )


def _pattern_problem(schema: dict[str, Any]) -> str | None:
    if "patternProperties" in schema:
        return (
            "patternProperties is not supported (its patterns would run in a backtracking "
            "engine); list the properties"
        )
    pattern = schema.get("pattern")
    if not isinstance(pattern, str):
        return None
    try:
        safe_pattern(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        return (
            f"pattern {pattern!r} cannot run in a linear-time engine (RE2: {reason}); write it "
            "without backreferences, lookaround or repeats over 1000"
        )
    return None


@rule(Rules.UNSAFE_PATTERN)
def unsafe_pattern(ctx: Context) -> Iterator[Issue]:
    """A ``pattern`` RE2 cannot compile. The gateway and the compiler match every pattern
    with RE2 (linear time, :func:`s402gen.runtime.validation.safe_pattern`), so no pattern
    can backtrack catastrophically; what RE2 cannot run (backreferences, lookaround) is
    refused here rather than run by a backtracking engine."""
    for svc, _, path in ctx.pairs():
        schemas = [(("params", n), p) for n, p in svc.input_schema["properties"].items()]
        schemas.append((("outputSchema",), svc.output_schema))
        for key, top in schemas:
            for where, problem in _findings(top, _pattern_problem):
                at = f" at {where}" if where else ""
                yield Issue(
                    f"schema of service '{svc.id}'{at}: {problem}", path + key, service=svc.id
                )


@rule(Rules.FILE_NAME_TOO_LONG)
def file_name_too_long(ctx: Context) -> Iterator[Issue]:
    """An id whose generated file names (``docs/tools/<id>.html``, ``routes/<module>.py``,
    ``catalog/services/<id>.json``) exceed :data:`NAME_MAX` bytes: ``build`` would fail
    half-way with "File name too long"."""
    for svc, _, path in ctx.pairs():
        longest = max(len(svc.id.encode()), len(svc.module.encode())) + LONGEST_SUFFIX
        if longest > NAME_MAX:
            yield Issue(
                f"id '{svc.id[:40]}...' of {len(svc.id)} characters makes a generated file "
                f"name of {longest} bytes; file systems allow {NAME_MAX}",
                path + ("id",),
                f"use an id of at most {NAME_MAX - LONGEST_SUFFIX} characters",
                svc.id,
            )


#: Keys whose text may span lines (a newline or tab is text there, not a control).
MULTILINE_KEYS = frozenset(
    {
        "description", "descriptionTemplate", "parameterDescription", "inputSchemaDescription",
        "task", "taskTemplate", "useCases", "limitations", "exampleResult", "summaryZh",
    }
)  # fmt: skip
#: Subtrees that are data (examples, schemas), published JSON-escaped: not checked here.
DATA_KEYS = frozenset({"example", "exampleRequest", "errorExamples", "outputSchema", "items"})
DATA_KEYS |= {"enum", "upstreamDifferences"}


_SPACED = re.compile(r"[\t\n\x20-\x7e]*\Z")


def _control(text: str, multiline: bool) -> str | None:
    """The first control or invisible formatting character of ``text`` (``\\t`` and ``\\n``
    allowed when ``multiline``), as ``U+XXXX``, or ``None``."""
    if text.isascii() and (text.isprintable() or (multiline and _SPACED.match(text))):
        return None  # the common case, in C
    for char in text:
        if multiline and char in "\t\n":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(char):04X}"
    return None


def _strings(value: Any, path: tuple, multiline: bool) -> Iterator[tuple[tuple, str, bool]]:
    """``(path, text, multiline)`` of every key and string of an authored value."""
    if isinstance(value, str):
        yield path, value, multiline
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,), multiline)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,), str(key), False
            if key not in DATA_KEYS:
                yield from _strings(item, path + (key,), key in MULTILINE_KEYS)


@rule(Rules.CONTROL_CHARACTER, "model")
def control_character(ctx: Context) -> Iterator[Issue]:
    """A control or invisible formatting character (``U+0000``-``U+001F``, ``U+007F``-
    ``U+009F``, bidi overrides, zero-width ...) in a name, a key or published text; a
    newline or tab only in text that may span lines (descriptions, tasks). A ``version``
    or a ``name`` with a newline would split a request line or a heading."""
    dump = dict(by_alias=True, exclude_defaults=True, warnings=False)
    trees: list[tuple[tuple, Any]] = []
    if ctx.shared:
        trees.append(((), ctx.authored.model_dump(exclude={"services"}, **dump)))
    trees += [(("services", index), svc.model_dump(**dump)) for index, svc in ctx.services()]
    strings = (each for path, tree in trees for each in _strings(tree, path, False))
    for path, text, multiline in strings:
        found = _control(text, multiline)
        if found is not None:
            where = ".".join(str(p) for p in path)
            yield Issue(
                f"{where} holds the control character {found}",
                path,
                "write the text without it (a YAML escape like \\x07 or \\u202e included)",
            )

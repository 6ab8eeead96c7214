"""JSON Schema checks of the schemas a catalog declares (Draft 2020-12).

:func:`schema_problem` says why a schema is not valid JSON Schema, or that it
uses a keyword no vocabulary defines (in a catalog, a YAML typo), memoized on
the schema's canonical JSON. :func:`describe_error` words a jsonschema error.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

import jsonschema
import jsonschema_specifications
import orjson

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
        return describe_error(error)
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


def subschemas(schema: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path like properties/a/items, schema)`` of ``schema`` and every schema inside it
    (the keywords :func:`_unknown_keywords` descends into), depth first; non-objects skipped.
    """
    if not isinstance(schema, dict):
        return
    yield where, schema
    for key in _SCHEMA_MAPS:
        value = schema.get(key)
        for name, sub in value.items() if isinstance(value, dict) else ():
            yield from subschemas(sub, f"{where}/{key}/{name}".lstrip("/"))
    for key in _SCHEMA_LISTS:
        value = schema.get(key)
        for index, sub in enumerate(value) if isinstance(value, list) else ():
            yield from subschemas(sub, f"{where}/{key}/{index}".lstrip("/"))
    for key in _SCHEMA_VALUES:
        if key in schema:
            yield from subschemas(schema[key], f"{where}/{key}".lstrip("/"))


def describe_error(error: jsonschema.ValidationError | jsonschema.SchemaError) -> str:
    """``message at path/in/instance`` of a jsonschema error."""
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" at {where}" if where else "")

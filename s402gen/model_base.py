"""The authoring model's base: what every model of catalog.yaml is built from.

:class:`AuthoringModel` (strict: an unknown key, a missing key or a value of the wrong type
is an error; keys in camelCase), :func:`key` (a documented key, for the editor schema), the
patterns of ids, actions and parameter names, and the JSON type names. The document and its
sections are in :mod:`s402gen.model`, parameters and presets in
:mod:`s402gen.model_parameters`, defaults in :mod:`s402gen.model_defaults`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

JsonType = Literal["string", "number", "integer", "boolean", "array", "object"]
JSON_TYPES: tuple[str, ...] = ("string", "number", "integer", "boolean", "array", "object")

ID_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ACTION_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
PARAMETER_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


def key(doc: str, example: Any, default: Any = ..., **constraints: Any) -> Any:
    """A documented key: its description and an example, for the editor schema."""
    return Field(default, description=doc, examples=[example], **constraints)


class AuthoringModel(BaseModel):
    """Base of every authoring model: unknown keys forbidden, frozen, strict types, keys
    read by their camelCase alias only."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        populate_by_name=False,
    )

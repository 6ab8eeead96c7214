"""The authoring model's parameters: a service's ``params`` and the ``presets`` they name.

A parameter is written as a preset name, a JSON type name, or a mapping that overrides a
preset's keys (:class:`Parameter`); a preset is a reusable definition (:class:`Preset`).
Parameter names are checked here (:data:`ParameterName`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, model_validator
from pydantic_core import PydanticCustomError

from .model_base import JSON_TYPES, PARAMETER_PATTERN, AuthoringModel, JsonType, key
from .runtime.protocol import MCP_ARGUMENT


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


class Parameter(AuthoringModel):
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


def is_shorthand(param: Parameter) -> bool:
    """Whether ``param`` is the one model a shorthand string made, shared by every use of
    that string (:meth:`Parameter._shorthand`)."""
    written = param.preset if param.preset is not None else param.type
    return written is not None and _SHORTHANDS.get(written) is param


class Preset(AuthoringModel):
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

"""Structure: the loaded tree as the authoring model, with every field constraint's finding.

:func:`parse_model` validates the tree with the pydantic model
(:mod:`s402gen.model` and the ``model_*`` modules it is built from, where
every constraint on one field lives) and maps each pydantic error back to
``catalog.yaml:LINE:COL``. Messages name a service by its id (``service
'face-detection'``); unknown keys and enum-like values get a did-you-mean
hint; a model validator names its rule through the error type
(``missing-key``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from . import model
from .diagnostics import Finding, Rules, closest, did_you_mean, rule_named
from .load import LoadedDocument


def parse_model(doc: LoadedDocument) -> tuple[model.Catalog | None, list[Finding]]:
    """Build the authoring model from a loaded tree; ``None`` and findings on failure."""
    if not isinstance(doc.data, dict):
        found = "an empty document" if doc.data is None else type(doc.data).__name__
        return None, [
            Finding(
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
        (_data_loc(err["loc"])[:-1], close)
        for err in errors
        if err["type"] == "extra_forbidden"
        for close in [closest(str(err["loc"][-1]), _allowed_keys(_data_loc(err["loc"])[:-1]))]
        if close
    }
    return None, [
        _pydantic_finding(err, doc)
        for err in errors
        if not (
            err["type"] == "missing" and (_data_loc(err["loc"])[:-1], err["loc"][-1]) in suggested
        )
    ]


def _pydantic_finding(err: Any, doc: LoadedDocument) -> Finding:
    loc = _data_loc(err["loc"])
    finding = _finding_of(err, loc, doc)
    sid = _service_id(loc, doc.data)
    return dataclasses.replace(finding, services=(sid,)) if sid else finding


def _data_loc(loc: Any) -> tuple:
    """A pydantic error location without union tags (``[list]``, ``[extend]``), which
    name a choice of the model, not a key of the data. ``[key]`` is kept."""
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and part.startswith("[") and part.endswith("]"))
        or part == "[key]"
    )


def _finding_of(err: Any, loc: tuple, doc: LoadedDocument) -> Finding:
    source = doc.source
    if loc and loc[-1] == "[key]":  # a constraint on a mapping key: point at the key
        named = rule_named(err["type"]) or Rules.INVALID_VALUE
        return Finding(named, f"{_where(loc[:-2], doc.data)}: {err['msg']}", source.key(loc[:-1]))
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        return Finding(
            Rules.UNKNOWN_KEY,
            f"unknown key '{key}' in {_where(loc[:-1], doc.data)}",
            source.key(loc),
            hint=did_you_mean(key, _allowed_keys(loc[:-1])),
        )
    if err["type"] == "missing":
        return Finding(
            Rules.MISSING_KEY,
            f"missing required key '{loc[-1]}' in {_where(loc[:-1], doc.data)}",
            source.value(loc[:-1]),
        )
    named = rule_named(err["type"])  # a model validator that names its rule
    if named is not None:
        return Finding(named, f"{_where(loc, doc.data)}: {err['msg']}", source.value(loc))
    message = err["msg"][0].lower() + err["msg"][1:]
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
    hint = None
    if err["type"] == "literal_error" and isinstance(got, str):  # an enum-like value
        hint = did_you_mean(got, _literal_values(loc))
    return Finding(
        Rules.INVALID_VALUE, f"{_where(loc, doc.data)}: {message}{shown}", source.value(loc), hint
    )


def _service_id(loc: tuple, data: Any) -> str | None:
    """The id of the service ``loc`` is in, when it has one."""
    if len(loc) >= 2 and loc[0] == "services" and isinstance(loc[1], int):
        try:
            sid = data["services"][loc[1]]["id"]
        except (KeyError, IndexError, TypeError):
            return None
        return sid if isinstance(sid, str) else None
    return None


def _where(loc: tuple, data: Any) -> str:
    """A model path for messages; a service is named by its id: ``service 'face-detection'``,
    ``service 'face-detection' params.ImageURL``; else dotted: ``defaults.sla.uptime``."""
    sid = _service_id(loc, data)
    if sid is not None:
        rest = _dotted(loc[2:])
        return f"service '{sid}'" + (f" {rest}" if rest else "")
    return _dotted(loc) or "the catalog"


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(loc: tuple) -> list[str]:
    """Keys the model accepts at ``loc`` (for did-you-mean); empty when unknown."""
    current = _unwrap_optional(_annotation_at(loc))
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _literal_values(loc: tuple) -> list[str]:
    """The values a ``Literal`` field at ``loc`` allows (for did-you-mean); empty when none."""
    current = _unwrap_optional(_annotation_at(loc))
    if typing.get_origin(current) is Literal:
        return [str(value) for value in typing.get_args(current)]
    return []


def _annotation_at(loc: tuple) -> Any:
    current: Any = model.Catalog
    for part in loc:
        current = _step(current, part)
        if current is None:
            return None
    return current


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _step(tp: Any, part: Any) -> Any:
    tp = _unwrap_optional(tp)
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # the first choice that fits
        return next(
            (found for arg in typing.get_args(tp) if (found := _step(arg, part)) is not None),
            None,
        )
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

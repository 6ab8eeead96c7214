"""``s402gen validate --upstream``: compare each service with the official facebody SDK.

The reference is the SDK installed in the environment
(``alibabacloud-facebody20191230``, the ``upstream`` extra): its
``client.py`` names every action (``action='...'``), and each
``<Action>Request`` model in ``models.py`` names the wire parameters (the
keys its ``to_map`` writes), their Python types, and which are required
(``# This parameter is required.`` above the attribute). Both files are
read as source, not imported, once a process (:func:`load_sdk` is cached);
of ``models.py`` (~320 kB, ~1000 classes) only the request classes the
catalog names are parsed. Findings:
unknown action and unknown parameter (errors), a parameter required
upstream but optional here or the reverse, and a type mismatch (warnings).
A difference the catalog keeps on purpose is declared on the service,
``upstreamDifferences: {Param: reason}``, and is not reported.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import ir, model
from .diagnostics import Diagnostic, Rules
from .load import SourceMap

SDK_PACKAGE = "alibabacloud_facebody20191230"
_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


class SdkMissing(Exception):
    """The official SDK is not installed (``pip install 's402gen[upstream]'``)."""


@dataclass(frozen=True)
class SdkParameter:
    """A wire parameter of an SDK request model."""

    name: str
    json_type: str
    required: bool


_TOP_LEVEL_CLASS = re.compile(r"^class (\w+)\b", re.MULTILINE)


@dataclass(frozen=True)
class SdkModels:
    """The SDK's ``models.py`` cut into top-level class sources: ``{class name: source}``."""

    classes: dict[str, str]

    @classmethod
    def from_source(cls, source: str) -> "SdkModels":
        """Cut ``source`` at each ``class`` statement that starts a line."""
        starts = [(m.group(1), m.start()) for m in _TOP_LEVEL_CLASS.finditer(source)]
        ends = [start for _, start in starts[1:]] + [len(source)]
        return cls({name: source[start:end] for (name, start), end in zip(starts, ends)})


def _sdk_source(module: str) -> str:
    """The source text of an SDK module, found without importing it."""
    try:
        spec = importlib.util.find_spec(f"{SDK_PACKAGE}.{module}")
    except ImportError:
        spec = None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise SdkMissing(
            f"the official SDK is not installed: pip install 's402gen[upstream]' ({SDK_PACKAGE})"
        )
    return Path(spec.origin).read_text(encoding="utf-8")


@functools.cache
def load_sdk() -> tuple[frozenset[str], SdkModels]:
    """The SDK's action names and its parsed models; raises :class:`SdkMissing`.

    Cached: a process reads and parses the SDK once, whatever the number of services.
    """
    actions = frozenset(re.findall(r"action='([A-Za-z0-9]+)'", _sdk_source("client")))
    return actions, SdkModels.from_source(_sdk_source("models"))


def sdk_parameters(models: SdkModels, action: str) -> dict[str, SdkParameter] | None:
    """Wire parameters of ``<action>Request``, or ``None`` when the SDK has no such model."""
    source = models.classes.get(f"{action}Request")
    if source is None:
        return None
    cls = ast.parse(source).body[0]
    assert isinstance(cls, ast.ClassDef)
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    lines = source.splitlines()
    annotations = {
        a.arg: ast.unparse(a.annotation) for a in methods["__init__"].args.args[1:] if a.annotation
    }
    required = {
        stmt.targets[0].attr
        for stmt in methods["__init__"].body
        if isinstance(stmt, ast.Assign)
        and isinstance(stmt.targets[0], ast.Attribute)
        and "required" in lines[stmt.lineno - 2]
    }
    wire: dict[str, str] = {}
    for node in ast.walk(methods["to_map"]):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            key = node.targets[0].slice
            if not isinstance(key, ast.Constant):
                continue
            attrs = [
                n.attr
                for n in ast.walk(node.value)
                if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id == "self"
            ]
            if not attrs:  # a list: `result['URLList'] = []`, filled by a loop after
                attrs = [a for a in annotations if a.replace("_", "") == key.value.lower()]
            if attrs:
                wire.setdefault(attrs[0], key.value)
    return {
        wire.get(attr, attr): SdkParameter(
            wire.get(attr, attr),
            "array" if kind.startswith("List") else _TYPES.get(kind, kind),
            attr in required,
        )
        for attr, kind in annotations.items()
    }


def check_upstream(
    catalog: ir.Catalog, authored: model.Catalog, source: SourceMap
) -> list[Diagnostic]:
    """Findings for every service whose provider is the SDK's product (facebody).

    Raises :class:`SdkMissing` when the SDK is not installed.
    """
    actions, models = load_sdk()
    found: list[Diagnostic] = []
    for svc, written in zip(catalog.services, authored.services):
        if svc.upstream.product != "facebody":
            continue
        found += _check_service(svc, written, actions, models, source)
    return found


def _check_service(
    svc: ir.Service,
    written: model.Service,
    actions: Iterable[str],
    models: SdkModels,
    source: SourceMap,
) -> list[Diagnostic]:
    path = ("services", svc.index)
    declared = written.upstream_differences or {}
    upstream = sdk_parameters(models, svc.upstream.action)
    if svc.upstream.action not in actions or upstream is None:
        where = source.value(path + ("action",))
        return [
            Diagnostic(
                Rules.UPSTREAM_UNKNOWN_ACTION,
                f"action '{svc.upstream.action}' of '{svc.id}' is not in the official SDK",
                where,
            )
        ]
    found = []
    required_here = set(svc.input_schema["required"])
    for name, prop in svc.input_schema["properties"].items():
        if name in declared:
            continue
        where = source.value(path + ("params", name))
        theirs = upstream.get(name)
        if theirs is None:
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_UNKNOWN_PARAMETER,
                    f"parameter '{name}' of '{svc.id}' is not a parameter of "
                    f"{svc.upstream.action} (SDK: {', '.join(sorted(upstream)) or 'none'})",
                    where,
                )
            )
            continue
        if theirs.required != (name in required_here):
            state = (
                "required upstream but optional here"
                if theirs.required
                else ("required here but optional upstream")
            )
            found.append(
                Diagnostic(Rules.UPSTREAM_REQUIRED, f"'{name}' of '{svc.id}' is {state}", where)
            )
        if theirs.json_type != prop.get("type"):
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_TYPE,
                    f"'{name}' of '{svc.id}' is {prop.get('type')} here but "
                    f"{theirs.json_type} upstream",
                    where,
                )
            )
    for name in sorted(set(upstream) - set(svc.input_schema["properties"]) - set(declared)):
        if upstream[name].required:
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_REQUIRED,
                    f"'{name}' is required by {svc.upstream.action} but missing from '{svc.id}'",
                    source.value(path + ("params",)),
                )
            )
    return found

"""Reading an official Alibaba Cloud Python SDK (a Tea SDK) as source, without importing it.

Every ``alibabacloud-<product><version>`` distribution has the same shape:
``client.py`` holds one ``<method>_with_options`` function per action, with
``action='...'`` in its ``Params``, the parameters it writes into ``body``
or ``query``, and, for the arrays it sends as a string, a "shrink" line
``OpenApiUtilClient.array_to_string_with_specified_style(tmp_req.x, 'X',
'json')`` (or, in older SDKs, the whole request in the query:
``query = OpenApiUtilClient.query(UtilClient.to_map(request))``) and the
HTTP ``method``; ``models.py`` holds the ``<Action>Request`` model: its wire names
(the keys ``to_map`` writes), Python types and required attributes (``#
This parameter is required.`` above the attribute). Both files are read
once a process (:func:`load` is cached); of ``models.py`` only the request
classes asked for are parsed. The distribution name is mapped to its import
package through the installed metadata (``top_level.txt``), else by the
naming convention (``-`` to ``_``).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from . import SdkMissing

_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_TOP_LEVEL_CLASS = re.compile(r"^class (\w+)\b", re.MULTILINE)
_WITH_OPTIONS = re.compile(r"^    def (\w+)_with_options\(", re.MULTILINE)
_SHRINK = re.compile(r"array_to_string_with_specified_style\(tmp_req\.\w+, '(\w+)', '(\w+)'\)")
_LOCATED = re.compile(r"\b(body|query)\['(\w+)'\] = ")


@dataclass(frozen=True)
class SdkParameter:
    """A wire parameter of an SDK request model, and the style the SDK sends it in."""

    name: str
    json_type: str
    required: bool
    wire: str


@dataclass(frozen=True)
class SdkOperation:
    """One action of ``client.py``: its method name and each parameter's wire style."""

    method: str
    wire: dict[str, str]
    http_method: str = "POST"
    all_in_query: bool = False


def _package(distribution: str) -> str:
    try:
        top = importlib.metadata.distribution(distribution).read_text("top_level.txt")
    except importlib.metadata.PackageNotFoundError:
        top = None
    names = (top or "").split()
    return names[0] if names else distribution.replace("-", "_")


def _source(package: str, module: str, distribution: str) -> str:
    try:
        spec = importlib.util.find_spec(f"{package}.{module}")
    except ImportError:
        spec = None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise SdkMissing(
            f"the SDK {distribution} is not installed: pip install {distribution} "
            "(the SDKs of the real catalog: pip install 's402gen[upstream]')"
        )
    return Path(spec.origin).read_text(encoding="utf-8")


def _operations(client: str) -> dict[str, SdkOperation]:
    """``{action: operation}`` of the synchronous ``*_with_options`` functions of ``client``."""
    starts = list(_WITH_OPTIONS.finditer(client))
    found: dict[str, SdkOperation] = {}
    for match, following in zip(starts, starts[1:] + [None]):
        chunk = client[match.end() : following.start() if following else len(client)]
        chunk = chunk.split("\n    async def ", 1)[0]
        action = re.search(r"action='([A-Za-z0-9]+)'", chunk)
        if action is None:
            continue
        wire = {name: where for where, name in _LOCATED.findall(chunk) if where == "query"}
        wire.update(dict(_SHRINK.findall(chunk)))
        http_method = re.search(r"method='([A-Z]+)'", chunk)
        found.setdefault(
            action.group(1),
            SdkOperation(
                match.group(1),
                wire,
                http_method.group(1) if http_method else "POST",
                # the whole request model in the query: `query = ...query(UtilClient.to_map(request))`
                "query(UtilClient.to_map(request))" in chunk,
            ),
        )
    return found


@dataclass(frozen=True)
class TeaSdk:
    """An installed Tea SDK: its operations and its request models' sources."""

    distribution: str
    package: str
    operations: dict[str, SdkOperation]
    classes: dict[str, str]

    @property
    def actions(self) -> frozenset[str]:
        """Every action ``client.py`` calls."""
        return frozenset(self.operations)

    def http_method(self, action: str) -> str | None:
        """The HTTP method ``client.py`` calls ``action`` with, or ``None`` for no such action."""
        operation = self.operations.get(action)
        return operation.http_method if operation else None

    def parameters(self, action: str, default_wire: str = "flat") -> dict[str, SdkParameter] | None:
        """Wire parameters of ``<action>Request``, or ``None`` when the SDK has no such model.

        ``wire`` is the style the SDK's ``client.py`` sends the parameter
        in: a shrink style, ``query``, else ``default_wire``.
        """
        source = self.classes.get(f"{action}Request")
        operation = self.operations.get(action)
        if source is None or operation is None:
            return None
        cls = ast.parse(source).body[0]
        assert isinstance(cls, ast.ClassDef)
        methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
        lines = source.splitlines()
        annotations = {
            a.arg: ast.unparse(a.annotation)
            for a in methods["__init__"].args.args[1:]
            if a.annotation
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
        parameters = {}
        for attr, kind in annotations.items():
            name = wire.get(attr, attr)
            parameters[name] = SdkParameter(
                name,
                "array" if kind.startswith("List") else _TYPES.get(kind, kind),
                attr in required,
                "query" if operation.all_in_query else operation.wire.get(name, default_wire),
            )
        return parameters


@functools.cache
def load(distribution: str) -> TeaSdk:
    """The installed SDK ``distribution`` (e.g. ``alibabacloud-facebody20191230``), read once.

    Raises :class:`SdkMissing` when it is not installed.
    """
    package = _package(distribution)
    client = _source(package, "client", distribution)
    models = _source(package, "models", distribution)
    starts = [(m.group(1), m.start()) for m in _TOP_LEVEL_CLASS.finditer(models)]
    ends = [start for _, start in starts[1:]] + [len(models)]
    classes = {name: models[start:end] for (name, start), end in zip(starts, ends)}
    return TeaSdk(distribution, package, _operations(client), classes)

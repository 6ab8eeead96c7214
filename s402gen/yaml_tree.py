"""A composed YAML node graph as plain JSON values, with locations: the located path of
:mod:`s402gen.load`.

:class:`TreeBuilder` records where every path stands and collects every finding at its
node: it expands aliases (a copy per use) and ``<<`` merge keys, and refuses duplicate
and non-string keys, values JSON cannot hold, and plain numbers YAML 1.1 reads as other
numbers than they look like (``020`` is 16, ``1:20`` is 80). The fast path
(:mod:`s402gen.yaml_events`) builds the same values and raises :class:`Unusual` at
whatever this one would report.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from .diagnostics import Diagnostic, Location, Rules

Path = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

#: Plain-scalar spellings that YAML 1.1 (PyYAML's resolver) reads as numbers other than
#: what they look like, and YAML 1.2 does not: ``020`` is 16, ``0b11`` is 3, ``1:20`` is
#: 80 (base 60), ``1_000`` is 1000. Source: the YAML 1.1 int and float types,
#: https://yaml.org/type/int.html and https://yaml.org/type/float.html.
_YAML_11_NUMBERS = (
    (re.compile(r"[-+]?0b[01_]+"), "a binary number"),
    (re.compile(r"[-+]?0[0-9_]+"), "an octal number"),
    (re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?"), "a base-60 number"),
    (re.compile(r"[-+]?[0-9.][0-9_.]*_[0-9_.]*([eE][-+][0-9]+)?"), "a number with '_' separators"),
)


#: What PyYAML's safe constructor raises for an explicitly tagged scalar whose text does
#: not fit the tag (``!!int x``: ValueError, ``!!bool x``: KeyError, ``!!timestamp x``:
#: AttributeError), besides its own YAMLError.
CONSTRUCT_ERRORS = (yaml.YAMLError, ValueError, KeyError, AttributeError, TypeError)


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


class Unusual(Exception):
    """What the fast path leaves to the located one: a finding, or a bound that may be
    crossed (the caller loads the document again, bounded and located)."""


def position(node: yaml.Node) -> tuple[int, int]:
    """``(line, column)`` of ``node``, both from 1."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def json_problem(value: Any) -> str | None:
    """Why a constructed YAML scalar is not a JSON value, or ``None``."""
    if value is None or isinstance(value, (str, bool)):
        return None
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return None
        return f"{value} does not fit in 64 bits; quote it if it is text"
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{value} is not a JSON number"
    return f"{type(value).__name__} values are not JSON ({value!r}); quote it if it is text"


def yaml_11_surprise(node: yaml.ScalarNode) -> str | None:
    """What YAML 1.1 reads the plain number ``node`` as (``"an octal number"`` ...), when its
    text means another number to a reader or to YAML 1.2; ``None`` for an ordinary one.
    The node's raw text is the one the composer kept, so nothing is parsed twice."""
    if node.tag not in (_INT_TAG, _FLOAT_TAG) or node.style:  # "" (libyaml) or None: plain
        return None
    for spelling, kind in _YAML_11_NUMBERS:
        if spelling.fullmatch(node.value):
            return kind
    return None


def _merge_sources(value_node: yaml.Node) -> list[yaml.Node]:
    return value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]


class TreeBuilder:
    """Turns a composed node graph into plain values, recording locations and errors:
    ``values[path]`` and ``keys[path]`` are ``(line, column)`` of the value at ``path`` and
    of the key that introduced it. ``max_nodes`` bounds the values built (aliases copied
    out)."""

    def __init__(self, loader: Any, filename: str, max_nodes: int):
        self.loader = loader
        self.filename = filename
        self.values: dict[Path, tuple[int, int]] = {}
        self.keys: dict[Path, tuple[int, int]] = {}
        self.errors: list[Diagnostic] = []
        self.expanded = 0
        self.max_nodes = max_nodes

    def _at(self, node: yaml.Node) -> Location:
        return Location(self.filename, *position(node))

    def build(self, node: yaml.Node, path: Path) -> Any:
        """The value of ``node`` at ``path``; its findings go to :attr:`errors`."""
        self.expanded += 1
        if self.expanded == self.max_nodes:
            self.errors.append(
                Diagnostic(
                    Rules.ALIAS_EXPANSION,
                    f"aliases expand to more than {self.max_nodes} nodes",
                    self._at(node),
                )
            )
        if self.expanded >= self.max_nodes:
            return None
        self.values.setdefault(path, position(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        if node.tag == _STR_TAG:
            return node.value  # the common case, without the constructor's bookkeeping
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        """A scalar as a JSON value; anything JSON cannot hold is an error at its node."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except CONSTRUCT_ERRORS as exc:
            if isinstance(exc, yaml.YAMLError):
                problem = getattr(exc, "problem", exc)
            else:
                shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
                problem = f"{shown!r} is not a valid {_tag_name(node.tag)}"
            self.errors.append(
                Diagnostic(Rules.YAML_SYNTAX, f"invalid YAML: {problem}", self._at(node))
            )
            return None
        problem = json_problem(value)
        if problem is not None:
            self.errors.append(Diagnostic(Rules.INVALID_VALUE, problem, self._at(node)))
            return None
        surprise = yaml_11_surprise(node)
        if surprise is not None:
            message = (
                f"'{node.value}' is {surprise} in YAML 1.1, read as {value!r}; write the "
                "number you mean in plain decimal, or quote it if it is text"
            )
            self.errors.append(Diagnostic(Rules.YAML_11_NUMBER, message, self._at(node)))
            return None
        return value

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """Key/value pairs with ``<<`` merges expanded; the flag marks merged-in pairs."""
        pairs: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                pairs.append((key_node, value_node, False))
                continue
            for source in _merge_sources(value_node):
                if isinstance(source, yaml.MappingNode):
                    pairs.extend((k, v, True) for k, v, _ in self._pairs(source))
                else:
                    self.errors.append(
                        Diagnostic(
                            Rules.INVALID_VALUE,
                            "a '<<' merge needs a mapping or a list of mappings",
                            self._at(source),
                        )
                    )
        return pairs

    def _key(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return node.value if node.tag == _STR_TAG else self._scalar(node)
        return node.tag

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: set[str] = set()
        for key_node, value_node, merged in self._pairs(node):
            key = self._key(key_node)
            if not isinstance(key, str):
                self.errors.append(
                    Diagnostic(
                        Rules.NON_STRING_KEY,
                        f"mapping keys must be strings, got {key!r}; quote it",
                        self._at(key_node),
                    )
                )
                continue
            if merged:
                if key in explicit or key in result:
                    continue  # explicit keys and earlier merges win, as in YAML 1.1
            elif key in explicit:
                first_line, _ = self.keys[path + (key,)]
                self.errors.append(
                    Diagnostic(
                        Rules.DUPLICATE_KEY,
                        f"duplicate key '{key}' (first defined at line {first_line})",
                        self._at(key_node),
                    )
                )
                continue
            else:
                explicit.add(key)
                result.pop(key, None)
            self.keys[path + (key,)] = position(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result

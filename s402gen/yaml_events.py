"""The fast path of :mod:`s402gen.load`: plain values straight from libyaml's events.

No node graph is composed (at 10,000 services it held ~85 MiB while it lived): each
event the parser gives becomes a value at once, and the bounds are kept on the way
(nesting depth, scalar length, nodes and characters with aliases copied out, aliases
inside their own anchor). The values are those :class:`~s402gen.yaml_tree.TreeBuilder`
builds from the composed graph; anything it would report, a bound crossed or a YAML
error, and anything rare this path leaves to it (``<<`` merge keys), raises
:class:`~s402gen.yaml_tree.Unusual`.
"""

from __future__ import annotations

from typing import Any

import yaml

from .yaml_tree import CONSTRUCT_ERRORS, Unusual, json_problem, yaml_11_surprise

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_OPEN = object()  # an anchor whose collection is not closed yet
_NO_KEY = object()  # a mapping waiting for its next key


def _copy(value: Any) -> Any:
    """A fresh copy of an alias's value (its own lists and dicts, as a graph builds)."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class _Frame:
    """A mapping or list being filled: its value, the key waiting for a value, and for an
    anchored one its name and the totals when it opened."""

    __slots__ = ("value", "is_map", "key", "anchor", "nodes", "chars")

    def __init__(self, value: Any, is_map: bool, anchor: str | None, nodes: int, chars: int):
        self.value = value
        self.is_map = is_map
        self.key: Any = _NO_KEY
        self.anchor = anchor
        self.nodes = nodes
        self.chars = chars


class EventBuilder:
    """Builds the one document of ``loader`` (a PyYAML loader: parser, resolver and
    constructor) from its events, within ``max_depth`` nested collections,
    ``max_scalar`` characters per scalar and ``max_nodes`` nodes and ``max_chars``
    characters in all (aliases copied out); raises :class:`Unusual` otherwise."""

    def __init__(
        self, loader: Any, max_depth: int, max_scalar: int, max_nodes: int, max_chars: int
    ):
        self.loader = loader
        self.max_depth = max_depth
        self.max_scalar = max_scalar
        self.max_nodes = max_nodes
        self.max_chars = max_chars
        self.nodes = 0  # so far, aliases copied out
        self.chars = 0
        self.anchors: dict[str, Any] = {}  # name -> (value, nodes, chars), or _OPEN
        #: No resolver for any first character nor by path: a scalar starting with a
        #: character none is registered for is a string without asking.
        self.firsts = (
            loader.yaml_implicit_resolvers
            if None not in loader.yaml_implicit_resolvers and not loader.yaml_path_resolvers
            else None
        )

    def build(self) -> Any:
        """The document's value (``None`` for an empty stream)."""
        get = self.loader.get_event
        if not isinstance(get(), yaml.StreamStartEvent):
            raise Unusual
        start = get()
        if isinstance(start, yaml.StreamEndEvent):
            return None
        if not isinstance(start, yaml.DocumentStartEvent):
            raise Unusual
        value = self._document(get)
        if not isinstance(get(), yaml.DocumentEndEvent):
            raise Unusual
        if not isinstance(get(), yaml.StreamEndEvent):
            raise Unusual  # a second document
        return value

    def _document(self, get: Any) -> Any:
        stack: list[_Frame] = []
        scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
        map_start, seq_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
        while True:
            event = get()
            kind = event.__class__
            if kind is scalar_event:
                value, is_str = self._scalar(event)
            elif kind is map_start or kind is seq_start:
                if len(stack) >= self.max_depth:
                    raise Unusual
                self._count(1, 0)
                anchor = self._open(event.anchor)
                is_map = kind is map_start
                stack.append(_Frame({} if is_map else [], is_map, anchor, self.nodes, self.chars))
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                value, is_str = frame.value, False
                if frame.anchor is not None:
                    size = (value, self.nodes - frame.nodes + 1, self.chars - frame.chars)
                    self.anchors[frame.anchor] = size
            elif kind is alias_event:
                value, is_str = self._alias(event)
            else:
                raise Unusual
            if not stack:
                return value
            parent = stack[-1]
            if not parent.is_map:
                parent.value.append(value)
            elif parent.key is _NO_KEY:
                if not is_str or value in parent.value:
                    raise Unusual  # not a string key, or a duplicate
                parent.key = value
            else:
                parent.value[parent.key] = value
                parent.key = _NO_KEY

    def _count(self, nodes: int, chars: int) -> None:
        self.nodes += nodes
        self.chars += chars
        if self.nodes > self.max_nodes or self.chars > self.max_chars:
            raise Unusual

    def _open(self, anchor: str | None) -> str | None:
        if anchor is not None:
            if anchor in self.anchors:
                raise Unusual  # a duplicate anchor
            self.anchors[anchor] = _OPEN
        return anchor

    def _scalar(self, event: yaml.ScalarEvent) -> tuple[Any, bool]:
        """The scalar's value, and whether it is a string (a key must be one)."""
        text = event.value
        if len(text) > self.max_scalar:
            raise Unusual
        self._count(1, len(text))
        tag = event.tag
        if tag is None or tag == "!":
            implicit = event.implicit
            firsts = self.firsts
            if firsts is not None and (not implicit[0] or (text and text[0] not in firsts)):
                tag = _STR_TAG  # what resolve() answers: no implicit resolver may claim it
            else:
                tag = self.loader.resolve(yaml.ScalarNode, text, implicit)
        if tag == _STR_TAG:
            value: Any = text
        elif tag == _MERGE_TAG:
            raise Unusual  # '<<': the located path merges
        else:
            node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
            try:
                value = self.loader.construct_object(node, deep=True)
            except CONSTRUCT_ERRORS:
                raise Unusual from None  # text that does not fit its tag
            if json_problem(value) is not None or yaml_11_surprise(node) is not None:
                raise Unusual
        if event.anchor is not None:
            self._open(event.anchor)
            self.anchors[event.anchor] = (value, 1, len(text))
        return value, tag == _STR_TAG

    def _alias(self, event: yaml.AliasEvent) -> tuple[Any, bool]:
        found = self.anchors.get(event.anchor, _OPEN)
        if found is _OPEN:
            raise Unusual  # undefined, or inside the node it names
        value, nodes, chars = found
        self._count(nodes, chars)  # before copying: a bomb stops here
        return _copy(value), isinstance(value, str)

"""Composing YAML within bounds: the two composers of :mod:`s402gen.load`.

:func:`bounded_loader` composes with PyYAML's Python ``Composer``, checking each bound as
it goes and raising :class:`LimitError` at the node that crosses it. :func:`fast_loader`
lets libyaml compose in C, bounded only through the resolver hooks its composer calls
for every node (nesting, node count); :func:`check_expansion` then measures the graph
once, aliases copied out. Either raises :class:`~s402gen.yaml_tree.Unusual` when a
bound may be crossed: the bounded composer says where.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer

from .diagnostics import Diagnostic, Location, Rules
from .yaml_tree import Unusual

#: Most nodes an alias-heavy document may expand to ("billion laughs" guard).
MAX_EXPANDED_NODES = 2_000_000
#: Most characters of scalar text a document may expand to, aliases copied out: an alias
#: bomb under :data:`MAX_EXPANDED_NODES` that repeats long strings stops here. (A real
#: catalog of 2,000 services expands to about 0.6 million.)
MAX_EXPANDED_CHARS = 16_000_000
#: Longest scalar (characters): a catalog's texts are sentences, its examples small; one
#: scalar is copied into several generated files per service.
MAX_SCALAR_CHARS = 100_000
#: Deepest nesting of mappings and lists (the catalog itself is 4 deep, a parameter schema
#: or example adds its own); deeper documents would exhaust the recursion of every later
#: stage (JSON Schema validation, rendering), and libyaml's composer crashes at ~100,000.
MAX_DEPTH = 64

#: Where an alias may stand: ``*`` and an anchor character (a superset of the aliases:
#: a ``*`` in text matches too). A document without one expands to its own size.
ALIAS = re.compile(r"\*[^\s,\[\]{}]")


class LimitError(yaml.MarkedYAMLError):
    """A bound of :func:`bounded_loader` crossed: the rule, the message, the mark."""

    def __init__(self, rule: Any, message: str, mark: Any):
        super().__init__(problem=message, problem_mark=mark)
        self.rule = rule

    def diagnostic(self, filename: str) -> Diagnostic:
        """The finding, located at the mark in ``filename``."""
        mark = self.problem_mark
        return Diagnostic(
            self.rule, self.problem, Location(filename, mark.line + 1, mark.column + 1)
        )


_BOUNDED: dict[type, type] = {}


def bounded_loader(base: type) -> type:
    """``base`` (a PyYAML loader class) composing with PyYAML's own Python ``Composer`` over
    the parser's events, bounded while it composes: nesting past :data:`MAX_DEPTH`, a
    scalar longer than :data:`MAX_SCALAR_CHARS`, a node that expands (aliases copied out)
    past :data:`MAX_EXPANDED_NODES` nodes or :data:`MAX_EXPANDED_CHARS` characters, and an
    alias inside the node it names raise :class:`LimitError` at once, at the node's mark.

    The expanded size of each node is kept (by ``id``) as it is composed, so an alias costs
    one lookup: a billion-laughs document stops at the first anchor over the bound, before
    anything is copied. (libyaml's C composer has no such hooks and crashes on very deep
    nesting; its parser still does the scanning.)
    """
    if base in _BOUNDED:
        return _BOUNDED[base]

    bases = (base,) if issubclass(base, Composer) else (Composer, base)

    class Bounded(*bases):  # type: ignore[misc]
        def __init__(self, text: str):
            base.__init__(self, text)
            Composer.__init__(self)
            self.depth = 0
            self.open_anchors: list[str | None] = []
            self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, characters)

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                if event.anchor in self.open_anchors:
                    raise LimitError(
                        Rules.RECURSIVE_ALIAS,
                        f"alias *{event.anchor} is inside the node &{event.anchor} it names",
                        event.start_mark,
                    )
                return super().compose_node(parent, index)
            if isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_SCALAR_CHARS:
                    raise LimitError(
                        Rules.SCALAR_TOO_LONG,
                        f"a scalar of {len(event.value)} characters; at most "
                        f"{MAX_SCALAR_CHARS} are allowed",
                        event.start_mark,
                    )
                node = super().compose_node(parent, index)
                self.sizes[id(node)] = (1, len(node.value))
                return node
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise LimitError(
                    Rules.NESTING_TOO_DEEP,
                    f"mappings and lists nest more than {MAX_DEPTH} deep here",
                    event.start_mark,
                )
            self.open_anchors.append(event.anchor)
            node = super().compose_node(parent, index)
            self.open_anchors.pop()
            self.depth -= 1
            self._measure(node)
            return node

        def _measure(self, node: yaml.Node) -> None:
            children = (
                [part for pair in node.value for part in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
            )
            nodes, chars = 1, 0
            for child in children:
                child_nodes, child_chars = self.sizes[id(child)]
                nodes += child_nodes
                chars += child_chars
            if nodes > MAX_EXPANDED_NODES:
                raise LimitError(
                    Rules.ALIAS_EXPANSION,
                    f"aliases expand to more than {MAX_EXPANDED_NODES} nodes",
                    node.start_mark,
                )
            if chars > MAX_EXPANDED_CHARS:
                raise LimitError(
                    Rules.EXPANSION_TOO_LARGE,
                    f"this value expands (aliases copied out) to {chars} characters of text; "
                    f"a catalog may expand to at most {MAX_EXPANDED_CHARS}",
                    node.start_mark,
                )
            self.sizes[id(node)] = (nodes, chars)

    Bounded.__name__ = f"Bounded{base.__name__}"
    _BOUNDED[base] = Bounded
    return Bounded


_FAST: dict[type, type] = {}


def fast_loader(base: type) -> type:
    """``base`` (a PyYAML loader class, libyaml's ``CSafeLoader`` here) composing as it
    does (in C), bounded through the resolver hooks its composer calls for every node:
    :class:`Unusual` is raised before a node nests past ``MAX_DEPTH + 1`` (so the C
    composer's recursion stays shallow) or past :data:`MAX_EXPANDED_NODES` nodes, and
    ``at_bound`` is set when one nests at ``MAX_DEPTH + 1`` (a scalar there is fine, a
    collection too deep: the located path decides)."""
    if base in _FAST:
        return _FAST[base]

    class Fast(base):  # type: ignore[misc, valid-type]
        def __init__(self, text: str):
            super().__init__(text)
            self.depth = 0
            self.nodes = 0
            self.at_bound = False

        def descend_resolver(self, parent: Any, index: Any) -> None:
            self.depth += 1
            self.nodes += 1
            if self.depth > MAX_DEPTH or self.nodes > MAX_EXPANDED_NODES:
                if self.depth != MAX_DEPTH + 1 or self.nodes > MAX_EXPANDED_NODES:
                    raise Unusual
                self.at_bound = True

        def ascend_resolver(self) -> None:
            self.depth -= 1

        def resolve(self, kind: type, value: Any, implicit: Any) -> str:
            """``base``'s ``resolve``, with its answer for the common case given at once: a
            scalar no implicit resolver may claim (quoted, or starting with a character
            none is registered for) is a string."""
            if kind is yaml.ScalarNode and (
                not implicit[0] or (value and value[0] not in self.yaml_implicit_resolvers)
            ):
                return self.DEFAULT_SCALAR_TAG
            return super().resolve(kind, value, implicit)

    if None in base.yaml_implicit_resolvers or base.yaml_path_resolvers:
        del Fast.resolve  # resolvers for any first character, or by path: ask them all

    Fast.__name__ = f"Fast{base.__name__}"
    _FAST[base] = Fast
    return Fast


def check_expansion(root: yaml.Node) -> None:
    """Raise :class:`Unusual` when ``root``, aliases copied out, has more than
    :data:`MAX_EXPANDED_NODES` nodes or :data:`MAX_EXPANDED_CHARS` characters, or an alias
    inside the node it names (libyaml composes that as a cycle). Each node is measured
    once (by ``id``), so a billion-laughs graph costs its own size."""
    sizes: dict[int, tuple[int, int]] = {}
    measuring: set[int] = set()

    def measure(node: yaml.Node) -> tuple[int, int]:  # of a collection
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in measuring:
            raise Unusual  # an alias inside its own anchor
        measuring.add(id(node))
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [part for pair in node.value for part in pair]
        )
        nodes, chars = 1, 0
        for child in children:
            if isinstance(child, yaml.ScalarNode):
                nodes += 1
                chars += len(child.value)
            else:
                child_nodes, child_chars = measure(child)
                nodes += child_nodes
                chars += child_chars
        if nodes > MAX_EXPANDED_NODES or chars > MAX_EXPANDED_CHARS:
            raise Unusual
        measuring.discard(id(node))
        sizes[id(node)] = (nodes, chars)
        return nodes, chars

    if not isinstance(root, yaml.ScalarNode):
        measure(root)

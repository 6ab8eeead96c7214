"""Load stage: catalog.yaml text to a plain tree plus the source location of every node.

PyYAML's ``compose`` (with the libyaml ``CSafeLoader`` when available) keeps
the line and column of each node; this module turns the node graph into
plain ``dict``/``list``/scalar values and records, for every path into the
tree, where its key and its value stand in the file. YAML problems that the
usual ``safe_load`` silently accepts are errors here: duplicate keys,
non-string keys, numbers YAML 1.1 reads as other numbers than they look like
(``020`` is 16, ``1:20`` is 80), and documents past a bound (nesting depth,
scalar length, size once aliases are copied out), found while composing.
"""

from __future__ import annotations

import gc
import glob
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer

from .diagnostics import CatalogError, Diagnostic, Location, Rules, did_you_mean
from .inputs import InputError, read_input, read_input_text

try:  # libyaml is 5x faster; PyYAML without it still works
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]

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


@dataclass
class SourceMap:
    """Where each path of a loaded tree comes from.

    ``values[path]`` is the location of the value at ``path``; ``keys[path]``
    the location of the mapping key that introduced it (absent for list
    items and the root). Paths are in ``file``, except those under a prefix
    of ``files`` (the parts an ``include:`` brought in), which are in the file
    it names.
    """

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)

    def value(self, path: Path) -> Location:
        """Location of the value at ``path``, or of its nearest recorded ancestor."""
        return self._nearest(self.values, path)

    def key(self, path: Path) -> Location:
        """Location of the key of ``path`` (falls back to the value, then ancestors)."""
        if path in self.keys:
            return Location(self.file_of(path), *self.keys[path])
        return self._nearest(self.values, path)

    def file_of(self, path: Path) -> str:
        """The file the node at ``path`` is written in."""
        if self.files:
            for end in range(len(path), 0, -1):
                if path[:end] in self.files:
                    return self.files[path[:end]]
        return self.file

    def _nearest(self, table: dict[Path, tuple[int, int]], path: Path) -> Location:
        for end in range(len(path), -1, -1):
            if path[:end] in table:
                return Location(self.file_of(path[:end]), *table[path[:end]])
        return Location(self.file, 1, 1)


@dataclass
class LoadedDocument:
    """A loaded catalog: ``data`` is the plain tree, ``source`` its locations, ``problems``
    what its included files got wrong (the rest of the catalog is still checked)."""

    data: Any
    source: SourceMap
    problems: list[Diagnostic] = field(default_factory=list)


def load_text(text: str, filename: str) -> LoadedDocument:
    """Parse one YAML document into a plain tree with locations.

    Raises :class:`CatalogError` with every problem found (syntax error,
    duplicate keys, non-string keys), or with the first bound crossed (nesting past
    :data:`MAX_DEPTH`, a scalar past :data:`MAX_SCALAR_CHARS`, an expansion past
    :data:`MAX_EXPANDED_NODES` or :data:`MAX_EXPANDED_CHARS`, an alias inside its own
    anchor: see :func:`_bounded_loader`). An empty document loads as ``None``.
    """
    loader = _bounded_loader(_Loader)(text)
    builder = _TreeBuilder(loader, filename)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the node graph is acyclic garbage-wise; gc pauses dominate on big files
    try:
        try:
            root = loader.get_single_node()
        except _LimitError as exc:
            raise CatalogError([exc.diagnostic(filename)]) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise CatalogError([_syntax_diagnostic(exc, mark, filename)]) from None
        except yaml.YAMLError as exc:
            raise CatalogError(
                [Diagnostic(Rules.YAML_SYNTAX, str(exc), Location(filename, 1, 1))]
            ) from None
        data = builder.build(root, ()) if root is not None else None
    except RecursionError:  # composing or building a document nested thousands deep
        too_deep = Diagnostic(
            Rules.YAML_SYNTAX, "the document nests too deep", Location(filename, 1, 1)
        )
        raise CatalogError([too_deep]) from None
    finally:
        loader.dispose()
        if gc_was_enabled:
            gc.enable()
    if builder.errors:
        raise CatalogError(builder.errors)
    return LoadedDocument(data, builder.source)


def load_file(path: str, display_name: str | None = None) -> LoadedDocument:
    """Read ``path`` (UTF-8) and :func:`load_text` it; ``display_name`` is used in locations.

    Raises :class:`CatalogError` when the file cannot be read or parsed.
    """
    name = display_name or path
    try:
        text = read_input_text(path, name)
    except InputError as exc:
        refused = Diagnostic(exc.rule, str(exc), Location(name, 1, 1))
        raise CatalogError([refused]) from None
    except FileNotFoundError:
        missing = Diagnostic(
            Rules.CATALOG_NOT_FOUND,
            f"{name} does not exist",
            Location(name, 1, 1),
            hint="pass the catalog's path, or set [tool.s402gen] catalog in pyproject.toml",
        )
        raise CatalogError([missing]) from None
    except (OSError, UnicodeDecodeError) as exc:
        unreadable = Diagnostic(
            Rules.UNREADABLE_CATALOG, f"cannot read catalog: {exc}", Location(name, 1, 1)
        )
        raise CatalogError([unreadable]) from None
    return load_text(text, name)


#: What an included file may hold: the services and the named definitions.
INCLUDABLE = (
    "services",
    "categories",
    "providers",
    "presets",
    "pricingPolicies",
    "paymentProviders",
)
_ONE_OF = {
    "categories": "category",
    "providers": "provider",
    "presets": "preset",
    "pricingPolicies": "pricing policy",
    "paymentProviders": "payment provider",
}


def load_catalog(path: str, display_name: str | None = None) -> LoadedDocument:
    """:func:`load_file`, then every file its ``include:`` globs match, merged into one tree.

    Globs are relative to ``path``'s folder (``**`` crosses folders); their
    matches are read in sorted order, each file once. An included file holds
    only :data:`INCLUDABLE` keys: its services follow the root's, and its
    definitions join the root's sections (a name defined twice is an error).
    Every node keeps the location of the file it is written in
    (:attr:`SourceMap.files`), shown as the root's display folder plus the
    path relative to the root. Raises :class:`CatalogError` when the root file
    cannot be read or parsed; the problems of included files (one that cannot
    be parsed is left out) are the document's ``problems``.
    """
    name = display_name or path
    root = load_file(path, name)
    data = root.data
    if not isinstance(data, dict) or not isinstance(data.get("include"), list):
        return root  # no include, or a malformed one that the model reports
    base, shown = os.path.dirname(path), os.path.dirname(name)
    seen = {os.path.realpath(path)}
    errors: list[Diagnostic] = []
    for position, pattern in enumerate(data["include"]):
        if not isinstance(pattern, str):
            continue  # the model reports it
        matches = include_matches(base, pattern)
        if not matches:
            errors.append(
                Diagnostic(
                    Rules.INCLUDE_MATCHES_NOTHING,
                    f"include '{pattern}' matches no file",
                    root.source.value(("include", position)),
                    hint="globs are relative to the folder of the catalog",
                )
            )
        for match in matches:
            if os.path.realpath(match) in seen:
                continue
            seen.add(os.path.realpath(match))
            part_name = os.path.normpath(os.path.join(shown, os.path.relpath(match, base)))
            try:
                part = load_file(match, part_name)
            except CatalogError as exc:
                errors.extend(exc.diagnostics)
                continue
            errors.extend(_merge(root, part))
    root.problems = errors
    return root


def include_matches(base: str, pattern: str) -> list[str]:
    """The files ``pattern`` (a glob relative to the folder ``base``) names, sorted."""
    found = glob.glob(os.path.join(base, pattern), recursive=True)
    return sorted(match for match in found if os.path.isfile(match))


def included_files(path: str) -> list[str]:
    """The files the catalog at ``path`` includes (for the cache key); empty when it
    includes none or cannot be read or parsed (the compile reports that)."""
    try:
        text = read_input(path)
        if b"include" not in text:
            return []
        loader = _bounded_loader(_Loader)(text)  # a safe loader, bounded as load_text's
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except (OSError, InputError, yaml.YAMLError, RecursionError):
        return []
    patterns = data.get("include") if isinstance(data, dict) else None
    if not isinstance(patterns, list):
        return []
    base = os.path.dirname(path)
    return [m for p in patterns if isinstance(p, str) for m in include_matches(base, p)]


def _merge(root: LoadedDocument, part: LoadedDocument) -> list[Diagnostic]:
    """Add ``part``'s services and definitions to ``root`` (in place); the problems found."""
    found: list[Diagnostic] = []
    if part.data is None:
        return found  # an empty file adds nothing
    if not isinstance(part.data, dict):
        message = f"an included file must be a mapping of {', '.join(INCLUDABLE)}"
        return [Diagnostic(Rules.INVALID_VALUE, message, part.source.value(()))]
    for key, value in part.data.items():
        if key not in INCLUDABLE:
            found.append(
                Diagnostic(
                    Rules.UNKNOWN_KEY,
                    f"unknown key '{key}' in an included file (it may hold {', '.join(INCLUDABLE)})",
                    part.source.key((key,)),
                    hint=did_you_mean(key, INCLUDABLE),
                )
            )
            continue
        want = list if key == "services" else dict
        if not isinstance(value, want):
            kind = "a list" if want is list else "a mapping"
            found.append(
                Diagnostic(
                    Rules.INVALID_VALUE, f"'{key}' must be {kind}", part.source.value((key,))
                )
            )
            continue
        section = root.data.setdefault(key, want())
        if not isinstance(section, want):
            continue  # the root's own section is malformed: the model reports it
        moves: dict[str | int, str | int] = {}  # the part's name or index -> the root's
        if want is list:
            moves = {index: len(section) + index for index in range(len(value))}
            section.extend(value)
        for entry, item in value.items() if want is dict else ():
            if entry in section:
                first = root.source.key((key, entry))
                found.append(
                    Diagnostic(
                        Rules.DUPLICATE_DEFINITION,
                        f"{_ONE_OF[key]} '{entry}' is already defined at {first}",
                        part.source.key((key, entry)),
                    )
                )
                continue
            moves[entry] = entry
            section[entry] = item
        _adopt(root.source, part.source, key, moves)
    return found


def _adopt(root: SourceMap, part: SourceMap, key: str, moves: dict) -> None:
    """Copy the locations of ``part``'s ``key`` section items named in ``moves`` to their
    new place in ``root``, marked as written in ``part``'s file (one pass over ``part``)."""
    for table, into in ((part.values, root.values), (part.keys, root.keys)):
        for path, where in table.items():
            if len(path) > 1 and path[0] == key and path[1] in moves:
                into[(key, moves[path[1]], *path[2:])] = where
    for new in moves.values():
        root.files[(key, new)] = part.file


class _LimitError(yaml.MarkedYAMLError):
    """A bound of :func:`_bounded_loader` crossed: the rule, the message, the mark."""

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


def _bounded_loader(base: type) -> type:
    """``base`` (a PyYAML loader class) composing with PyYAML's own Python ``Composer`` over
    the parser's events, bounded while it composes: nesting past :data:`MAX_DEPTH`, a
    scalar longer than :data:`MAX_SCALAR_CHARS`, a node that expands (aliases copied out)
    past :data:`MAX_EXPANDED_NODES` nodes or :data:`MAX_EXPANDED_CHARS` characters, and an
    alias inside the node it names raise :class:`_LimitError` at once, at the node's mark.

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
                    raise _LimitError(
                        Rules.RECURSIVE_ALIAS,
                        f"alias *{event.anchor} is inside the node &{event.anchor} it names",
                        event.start_mark,
                    )
                return super().compose_node(parent, index)
            if isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_SCALAR_CHARS:
                    raise _LimitError(
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
                raise _LimitError(
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
                raise _LimitError(
                    Rules.ALIAS_EXPANSION,
                    f"aliases expand to more than {MAX_EXPANDED_NODES} nodes",
                    node.start_mark,
                )
            if chars > MAX_EXPANDED_CHARS:
                raise _LimitError(
                    Rules.EXPANSION_TOO_LARGE,
                    f"this value expands (aliases copied out) to {chars} characters of text; "
                    f"a catalog may expand to at most {MAX_EXPANDED_CHARS}",
                    node.start_mark,
                )
            self.sizes[id(node)] = (nodes, chars)

    Bounded.__name__ = f"Bounded{base.__name__}"
    _BOUNDED[base] = Bounded
    return Bounded


def _mark(node: yaml.Node, filename: str) -> Location:
    return Location(filename, *_position(node))


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, mark: Any, filename: str) -> Diagnostic:
    problem = exc.problem or exc.context or "invalid YAML"
    location = (
        Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename, 1, 1)
    )
    return Diagnostic(Rules.YAML_SYNTAX, f"invalid YAML: {problem}", location)


def _json_problem(value: Any) -> str | None:
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


def _yaml_11_surprise(node: yaml.ScalarNode) -> str | None:
    """What YAML 1.1 reads the plain number ``node`` as (``"an octal number"`` ...), when its
    text means another number to a reader or to YAML 1.2; ``None`` for an ordinary one.
    The node's raw text is the one the composer kept, so nothing is parsed twice."""
    if node.tag not in (_INT_TAG, _FLOAT_TAG) or node.style:  # "" (libyaml) or None: plain
        return None
    for spelling, kind in _YAML_11_NUMBERS:
        if spelling.fullmatch(node.value):
            return kind
    return None


class _TreeBuilder:
    """Turns a composed node graph into plain values, recording locations and errors."""

    def __init__(self, loader: Any, filename: str):
        self.loader = loader
        self.filename = filename
        self.source = SourceMap(filename)
        self.errors: list[Diagnostic] = []
        self.expanded = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.expanded += 1
        if self.expanded == MAX_EXPANDED_NODES:
            self.errors.append(
                Diagnostic(
                    Rules.ALIAS_EXPANSION,
                    f"aliases expand to more than {MAX_EXPANDED_NODES} nodes",
                    _mark(node, self.filename),
                )
            )
        if self.expanded >= MAX_EXPANDED_NODES:
            return None
        self.source.values.setdefault(path, _position(node))
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
        except yaml.YAMLError as exc:
            self.errors.append(
                Diagnostic(
                    Rules.YAML_SYNTAX,
                    f"invalid YAML: {getattr(exc, 'problem', exc)}",
                    _mark(node, self.filename),
                )
            )
            return None
        problem = _json_problem(value)
        if problem is not None:
            self.errors.append(Diagnostic(Rules.INVALID_VALUE, problem, _mark(node, self.filename)))
            return None
        surprise = _yaml_11_surprise(node)
        if surprise is not None:
            message = (
                f"'{node.value}' is {surprise} in YAML 1.1, read as {value!r}; write the "
                "number you mean in plain decimal, or quote it if it is text"
            )
            self.errors.append(
                Diagnostic(Rules.YAML_11_NUMBER, message, _mark(node, self.filename))
            )
            return None
        return value

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """Key/value pairs with ``<<`` merges expanded; the flag marks merged-in pairs."""
        pairs: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                pairs.append((key_node, value_node, False))
                continue
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    pairs.extend((k, v, True) for k, v, _ in self._pairs(source))
                else:
                    self.errors.append(
                        Diagnostic(
                            Rules.INVALID_VALUE,
                            "a '<<' merge needs a mapping or a list of mappings",
                            _mark(source, self.filename),
                        )
                    )
        return pairs

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: set[str] = set()
        for key_node, value_node, merged in self._pairs(node):
            key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else key_node.tag
            if not isinstance(key, str):
                self.errors.append(
                    Diagnostic(
                        Rules.NON_STRING_KEY,
                        f"mapping keys must be strings, got {key!r}; quote it",
                        _mark(key_node, self.filename),
                    )
                )
                continue
            if merged:
                if key in explicit or key in result:
                    continue  # explicit keys and earlier merges win, as in YAML 1.1
            elif key in explicit:
                first_line, _ = self.source.keys[path + (key,)]
                self.errors.append(
                    Diagnostic(
                        Rules.DUPLICATE_KEY,
                        f"duplicate key '{key}' (first defined at line {first_line})",
                        _mark(key_node, self.filename),
                    )
                )
                continue
            else:
                explicit.add(key)
                result.pop(key, None)
            self.source.keys[path + (key,)] = _position(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result

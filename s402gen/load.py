"""Load stage: catalog.yaml text to a plain tree plus the source location of every node.

PyYAML's ``compose`` (with the libyaml ``CSafeLoader`` when available) keeps
the line and column of each node; this module turns the node graph into
plain ``dict``/``list``/scalar values (:mod:`s402gen.yaml_tree`) and can tell,
for every path into the tree, where its key and its value stand in the file.
YAML problems that the usual ``safe_load`` silently accepts are errors here:
duplicate keys, non-string keys, numbers YAML 1.1 reads as other numbers than
they look like (``020`` is 16, ``1:20`` is 80), and documents past a bound
(nesting depth, scalar length, size once aliases are copied out).

Two paths give the same tree. The fast one builds values straight from
libyaml's events (:mod:`s402gen.yaml_events`: no node graph, the bounds kept
on the way); it gives up at anything unusual (a bound crossed, a finding, a
YAML error, a ``<<`` merge), and the document is loaded again by the located
path: PyYAML's Python composer, bounded while it composes
(:mod:`s402gen.yaml_bounds`), and a builder that records every location and
finding (:mod:`s402gen.yaml_tree`). The locations of a document the fast path
loaded are found once, when the first one is asked for (a valid catalog usually
asks for none), from libyaml's C composer bounded through its resolver hooks.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import yaml

from .diagnostics import CatalogError, Diagnostic, Location, Rules, did_you_mean
from .inputs import InputError, read_input, read_input_text
from . import yaml_bounds as bounds
from .yaml_events import EventBuilder
from .yaml_tree import CONSTRUCT_ERRORS, Path, TreeBuilder, Unusual

try:  # libyaml is 5x faster; PyYAML without it still works
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

Tables = tuple[dict[Path, tuple[int, int]], dict[Path, tuple[int, int]]]


class SourceMap:
    """Where each path of a loaded tree comes from.

    :meth:`value` is the location of the value at a path, :meth:`key` that of the
    mapping key that introduced it (list items and the root have none). Paths are in
    ``file``, except those under a prefix of ``files`` (the parts an ``include:``
    brought in), which are in the file it names. The tables behind (:attr:`values`,
    :attr:`keys`: path to ``(line, column)``) are made by ``locate`` the first time one
    is needed, when not given.
    """

    def __init__(
        self,
        file: str,
        tables: Tables | None = None,
        locate: Callable[[], Tables] | None = None,
    ):
        self.file = file
        self.files: dict[Path, str] = {}
        self._tables = tables
        self._locate = locate
        #: ``(section, name or index)`` here -> the included file's map and the prefix there
        self._moved: dict[Path, tuple[SourceMap, Path]] = {}

    def _table(self, which: int) -> dict[Path, tuple[int, int]]:
        if self._tables is None:
            self._tables = self._locate() if self._locate is not None else ({}, {})
            self._locate = None  # and what it held (the document's text)
        return self._tables[which]

    @property
    def values(self) -> dict[Path, tuple[int, int]]:
        """Path to ``(line, column)`` of its value (made on first use)."""
        return self._table(0)

    @property
    def keys(self) -> dict[Path, tuple[int, int]]:
        """Path to ``(line, column)`` of the key that introduced it (made on first use)."""
        return self._table(1)

    def value(self, path: Path) -> Location:
        """Location of the value at ``path``, or of its nearest recorded ancestor."""
        return self._nearest(path)

    def key(self, path: Path) -> Location:
        """Location of the key of ``path`` (falls back to the value, then ancestors)."""
        found = self._get(1, path)
        if found is not None:
            return Location(self.file_of(path), *found)
        return self._nearest(path)

    def file_of(self, path: Path) -> str:
        """The file the node at ``path`` is written in."""
        if self.files:
            for end in range(len(path), 0, -1):
                if path[:end] in self.files:
                    return self.files[path[:end]]
        return self.file

    def adopt(self, prefix: Path, part: SourceMap, there: Path) -> None:
        """Locate the paths under ``prefix`` (a section and a name or index) as those under
        ``there`` in ``part``, the map of an included file."""
        self._moved[prefix] = (part, there)
        self.files[prefix] = part.file

    def _get(self, which: int, path: Path) -> tuple[int, int] | None:
        if len(path) > 1 and self._moved:
            moved = self._moved.get(path[:2])
            if moved is not None:
                part, there = moved
                return part._table(which).get(there + path[2:])
        return self._table(which).get(path)

    def _nearest(self, path: Path) -> Location:
        for end in range(len(path), -1, -1):
            found = self._get(0, path[:end])
            if found is not None:
                return Location(self.file_of(path[:end]), *found)
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
    duplicate keys, non-string keys), or with the first bound of
    :mod:`s402gen.yaml_bounds` crossed (nesting, scalar length, expanded nodes or
    characters, an alias inside its own anchor). An empty document loads as ``None``.
    """
    try:
        data = _with_gc_paused(_plain_tree, text)
    except Unusual:
        values, keys, data = _with_gc_paused(_located_tree, text, filename)
        return LoadedDocument(data, SourceMap(filename, (values, keys)))
    kept = text.encode("utf-8", "surrogatepass")  # a str of CJK text is twice as big
    locate = lambda: _tables(kept.decode("utf-8", "surrogatepass"), filename)  # noqa: E731
    return LoadedDocument(data, SourceMap(filename, locate=locate))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off in the block (back on after, if it was on): a
    load or a compile makes hundreds of thousands of objects that stay alive and form no
    garbage cycles, and each collection would walk them all again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _with_gc_paused(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` under :func:`gc_paused`."""
    with gc_paused():
        return function(*args)


def _compose_fast(text: str) -> tuple[Any, yaml.Node | None]:
    """The loader and root node of ``text`` composed by libyaml in C (for the location
    tables), bounded by :func:`~.yaml_bounds.fast_loader`'s hooks and
    :func:`~.yaml_bounds.check_expansion`. Raises :class:`Unusual` on any YAML error or
    bound possibly crossed; disposes of the loader then."""
    loader = bounds.fast_loader(_Loader)(text)
    try:
        root = loader.get_single_node()
        if loader.at_bound:
            raise Unusual  # nesting at MAX_DEPTH + 1: a scalar is fine, a collection not
        if root is not None and (
            len(text) > bounds.MAX_EXPANDED_CHARS or bounds.ALIAS.search(text)
        ):
            bounds.check_expansion(root)
    except (yaml.YAMLError, RecursionError):
        loader.dispose()
        raise Unusual from None
    except Unusual:
        loader.dispose()
        raise
    return loader, root


def _plain_tree(text: str) -> Any:
    """The fast path: the tree of ``text`` built from libyaml's events, or :class:`Unusual`."""
    loader = _Loader(text)
    builder = EventBuilder(
        loader,
        bounds.MAX_DEPTH,
        bounds.MAX_SCALAR_CHARS,
        bounds.MAX_EXPANDED_NODES,
        bounds.MAX_EXPANDED_CHARS,
    )
    try:
        return builder.build()
    except (yaml.YAMLError, RecursionError):
        raise Unusual from None
    finally:
        loader.dispose()


def _tables(text: str, filename: str) -> Tables:
    """The location tables of ``text``, a document the fast path loaded."""
    try:
        loader, root = _with_gc_paused(_compose_fast, text)
    except Unusual:  # collections nested right at the bound: the bounded composer checks
        values, keys, _ = _with_gc_paused(_located_tree, text, filename)
        return values, keys
    try:
        builder = TreeBuilder(loader, filename, bounds.MAX_EXPANDED_NODES)
        if root is not None:
            _with_gc_paused(builder.build, root, ())
    finally:
        loader.dispose()
    return builder.values, builder.keys


def _located_tree(text: str, filename: str) -> tuple[dict, dict, Any]:
    """The located path: location tables and tree of ``text``, composed by the bounded
    Python composer; raises :class:`CatalogError` with what is wrong."""
    loader = bounds.bounded_loader(_Loader)(text)
    builder = TreeBuilder(loader, filename, bounds.MAX_EXPANDED_NODES)
    try:
        try:
            root = loader.get_single_node()
        except bounds.LimitError as exc:
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
    if builder.errors:
        raise CatalogError(builder.errors)
    return builder.values, builder.keys, data


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
    base = os.path.dirname(path)
    return [m for p in include_patterns(path) for m in include_matches(base, p)]


def include_patterns(path: str) -> list[str]:
    """The ``include:`` globs of the catalog at ``path``, as written; empty when it has
    none or cannot be read or parsed (the compile reports that)."""
    try:
        text = read_input(path)
        if b"include" not in text:
            return []
        loader = bounds.fast_loader(_Loader)(text)  # a safe loader, nesting bounded as load_text's
        try:
            data = loader.get_single_data()  # aliases are shared, not copied: no bomb
        finally:
            loader.dispose()
    except (OSError, InputError, RecursionError, Unusual, *CONSTRUCT_ERRORS):
        return []
    patterns = data.get("include") if isinstance(data, dict) else None
    if not isinstance(patterns, list):
        return []
    return [p for p in patterns if isinstance(p, str)]


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
    """Locate the items of ``part``'s ``key`` section named in ``moves`` (the part's name or
    index to the root's) at their new place in ``root``, written in ``part``'s file."""
    for old, new in moves.items():
        root.adopt((key, new), part, (key, old))


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, mark: Any, filename: str) -> Diagnostic:
    problem = exc.problem or exc.context or "invalid YAML"
    location = (
        Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename, 1, 1)
    )
    return Diagnostic(Rules.YAML_SYNTAX, f"invalid YAML: {problem}", location)

"""Command line: ``s402gen build | check | validate``.

Thin: parses options, calls :mod:`s402gen.pipeline` and :mod:`s402gen.write`,
prints diagnostics and maps results to exit codes. Every command reads
``[tool.s402gen]`` from pyproject.toml for its defaults.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import json
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, NoReturn, TypeVar

import click

from . import cache, statcache, write
from .config import ConfigError, Settings, load_settings, output_problem
from .config import display_path as _display
from .diagnostics import (
    FORMATS,
    CatalogError,
    Finding,
    Level,
    Location,
    Rules,
    format_findings,
)
from .exits import Exit, epilog
from .outdir import OutputFolder, UnsafePath
from .refusals import refusals

if TYPE_CHECKING:
    from .incremental import Reuse
    from .statcache import Spans
    from .pipeline import Compilation

T = TypeVar("T")

EXIT_OK, EXIT_FINDINGS, EXIT_INVALID = Exit.OK, Exit.FINDINGS, Exit.INVALID  # see exits.py

#: Where ``serve``, ``mcp`` and ``keys`` keep the payment ledger (and the API keys) by default.
DEFAULT_LEDGER = ".s402gen/payments.sqlite3"


def _settings(
    catalog: str | None,
    out: str | None,
    templates: str | None,
    fmt: str = "text",
    writing: bool = False,
) -> Settings:
    """The settings of a run: options over ``[tool.s402gen]``. With ``writing`` (build,
    check) an output folder that must not be written into exits 2
    (:func:`~s402gen.config.output_problem`)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        emit([exc.finding], fmt)
        sys.exit(EXIT_INVALID)
    chosen = Settings(
        catalog=Path(catalog) if catalog else settings.catalog,
        out=Path(out) if out else settings.out,
        templates=Path(templates) if templates else settings.templates,
    )
    if chosen.out.exists() and not chosen.out.is_dir():
        click.echo(f"error: output folder {_display(chosen.out)} is a file", err=True)
        sys.exit(EXIT_INVALID)
    problem = output_problem(chosen.out, chosen.catalog, chosen.templates) if writing else None
    if problem is not None:
        _refuse_output(chosen.out, problem, fmt)
    return chosen


def _refuse_output(out: Path, problem: str, fmt: str = "text") -> NoReturn:
    where = Location(_display(out), 1, 1)
    hint = "pass --out with a folder of its own, such as generated/"
    emit([Finding(Rules.UNSAFE_OUTPUT_FOLDER, problem, where, hint)], fmt)
    sys.exit(EXIT_INVALID)


@contextlib.contextmanager
def _locked(settings: Settings, create: bool, fmt: str = "text") -> Iterator[OutputFolder | None]:
    """The output folder, locked for this run (a second run waits, saying so), after
    finishing or discarding what a killed build left there; ``None`` when it does not
    exist and ``create`` is false. Released (and removed, if this run made it and left
    it empty) on exit."""
    where = _display(settings.out)

    def waiting() -> None:
        click.echo(f"waiting for another s402gen run to finish with {where}/ ...", err=True)

    try:
        folder, outcome = write.open_locked(settings.out, create=create, waiting=waiting)
    except UnsafePath as exc:
        _refuse_output(settings.out, f"output folder {where} {exc.reason}", fmt)
    except OSError as exc:
        click.echo(f"error: cannot open {where}: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    try:
        if outcome is not None:
            click.echo(f"note: {where}: a build that was cut short was {outcome}", err=True)
        yield folder
    finally:
        write.release(folder)


def emit(findings: list[Finding], fmt: str, **document: object) -> None:
    """Print ``findings`` in ``fmt`` through the one printer
    (:func:`~s402gen.diagnostics.format_findings`); ``document`` heads a JSON report."""
    out, err = format_findings(findings, fmt, **document)
    if err:
        click.echo(err, err=True, nl=False)
    if out:
        click.echo(out, nl=False)


def _compile(
    settings: Settings, fmt: str = "text", upstream: bool = False, caches: _Caches | None = None
) -> Compilation:
    """Compile the catalog (with the per-service cache of ``caches``, if any); its findings
    are printed now, except in ``json`` (the command prints one document at its end). An
    invalid catalog exits 2."""
    from .pipeline import (
        compile_catalog,  # lazy: a cache hit needs none of the compiler
    )
    from .allocator import map_large_blocks
    from .load import gc_paused
    from .servicecache import cache_at
    from .upstream_check import SdkMissing

    map_large_blocks()  # what the compile and the write free is given back, not kept

    # what a compile makes lives until the command ends: the cyclic garbage collector
    # never walks it (a full walk costs a second at 10,000 services); frozen before the
    # collector is back, or its next pass would walk it all as new objects
    with gc_paused():
        try:
            result = compile_catalog(
                settings.catalog,
                display_name=_display(settings.catalog),
                templates=settings.templates,
                upstream=upstream,
                cache=cache_at(caches.folder, settings.catalog, caches.code) if caches else None,
            )
        except SdkMissing as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_INVALID)
        finally:
            gc.freeze()
            context = click.get_current_context()
            context.call_on_close(gc.unfreeze)
            context.call_on_close(functools.partial(gc.set_threshold, *gc.get_threshold()))
            gc.set_threshold(*RENDER_GC_THRESHOLD)
    if fmt != "json":
        emit(result.diagnostics, fmt)
    if not result.ok:
        _fail(result.diagnostics, fmt, file=_display(settings.catalog), valid=False)
    return result


def _fail(findings: list[Finding], fmt: str = "text", **document: object) -> NoReturn:
    """Exit 2 for an invalid catalog: the JSON report in ``json``, a count on stderr."""
    if fmt == "json":
        emit(findings, fmt, **document)
    errors = sum(d.level is Level.ERROR for d in findings)
    command = click.get_current_context().info_name
    tail = "; nothing was written" if command == "build" else ""
    click.echo(f"{errors} error(s){tail}", err=True)
    sys.exit(EXIT_INVALID)


def _render_failed(exc: CatalogError, fmt: str = "text") -> NoReturn:
    if fmt != "json":
        emit(exc.diagnostics, fmt)
    _fail(exc.diagnostics, fmt, valid=False)


@dataclass
class _Caches:
    """The input cache's folder, key and hit, and the output folder's stat index."""

    folder: Path | None = None
    key: str | None = None
    hit: cache.Entry | None = None
    code: str | None = None
    index: statcache.Index | None = None
    index_read: bool = False  # index is what statcache.load gave (else not read yet)


def _cache_lookup(settings: Settings, out: OutputFolder | None) -> _Caches:
    """The caches of a run on the output folder ``out`` (``None``: it does not exist);
    ``hit`` is set when the output still matches the input cache's entry (its files' stat
    unchanged or their bytes), and then the diagnostics of the cached compile are printed
    again."""
    found = _service_cache(settings)
    if found.folder is None:
        return found
    found.key = cache.input_key(settings.catalog, settings.templates, os.environ, found.code)
    entry = cache.lookup(found.folder, found.key)
    if entry is None:  # the stat index is read once the compile is done (see _reuse)
        return found

    def lookup() -> Callable[[str], str | None] | None:
        # only once the manifest matches: an entry of another version of the catalog (an
        # edit undone) needs no index
        _load_index(found, settings.out)
        return found.index.known if found.index is not None else None

    if not write.matches_manifest(out, entry.manifest_sha256, lookup):
        return found
    for _, line in entry.diagnostics:
        click.echo(line, err=True)
    found.hit = entry
    return found


def _service_cache(settings: Settings) -> _Caches:
    """The caches of a run that takes no whole-run hit: the per-service cache of validate
    and derive, and the output folder's stat index once the compile is done (their
    folder and code key; none with ``S402GEN_CACHE_DIR=off``)."""
    folder = cache.cache_dir(os.environ)
    if folder is None:
        return _Caches()
    return _Caches(folder, code=cache.code_key(settings.templates, os.environ))


def _load_index(caches: _Caches, out: Path) -> None:
    """Read the stat index of the output folder ``out`` into ``caches`` (once; not when
    ``out`` holds no manifest: nothing the index lists is there, say a new folder)."""
    if not caches.index_read:
        caches.index_read = True
        if os.path.lexists(out / write.MANIFEST):
            caches.index = statcache.load(caches.folder, out, caches.code)


def _reuse(caches: _Caches, result: Compilation, out: Path) -> Reuse | None:
    """What the compile may take from the last one (``None`` without a cache). The stat
    index of ``out`` is read now if the lookup did not need it: into what the compile's
    loaded tree and model left free (12 MiB at 10,000 services, which the compile's
    peak no longer holds)."""
    if caches.code is None or result.catalog is None:
        return None
    from .incremental import Reuse

    _load_index(caches, out)

    user = result.templates is not None
    return Reuse(caches.code, result.catalog, caches.index, user, result.digests)


def _made(reuse: Reuse | None) -> tuple[dict[str, str], dict[str, Spans]] | None:
    """What the stat index keeps of ``reuse`` once the files are made: the services' render
    keys and where the members lie (``None`` without a cache). Taken before the IR is let
    go: the index is made without it (the last and highest memory of a build)."""
    return None if reuse is None else (reuse.keys, reuse.members)


def _record(
    caches: _Caches,
    out: Path,
    files: dict[str, str],
    entry: cache.Entry,
    made: tuple[dict[str, str], dict[str, Spans]] | None,
) -> None:
    """Save the stat index of ``out``, which now holds ``files`` (``{path: sha256}``) and the
    manifest listing them, whose sha256 ``entry`` holds (``made``: see :func:`_made`)."""
    if made is None:
        return
    digests = {**files, write.MANIFEST: entry.manifest_sha256}
    statcache.record(caches.folder, out, caches.code, digests, made[0], caches.index, made[1])


def _entry(files: dict[str, str], manifest_sha256: str, result: Compilation) -> cache.Entry:
    """The input cache's entry of a compile that made ``files`` (``{path: sha256}``) listed
    in the manifest whose hex sha256 is ``manifest_sha256``."""
    listed = sum(1 for path in files if path != write.MANIFEST)
    findings = tuple((d.level.value, d.format()) for d in result.diagnostics)
    return cache.Entry(manifest_sha256, listed, findings)


catalog_argument = click.argument("catalog", required=False, type=click.Path(dir_okay=False))
out_option = click.option(
    "--out", type=click.Path(file_okay=False), help="Output folder (default: generated/)."
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people (stderr), json for tools (one document on stdout), "
    "github for GitHub Actions annotations (stdout).",
)
templates_option = click.option(
    "--templates",
    type=click.Path(file_okay=False, exists=True),
    help="Folder of templates that override the packaged ones.",
)
quiet_option = click.option(
    "-q", "--quiet", is_flag=True, help="Print only errors, warnings and drift; no progress."
)

#: ``-h`` works as ``--help`` for every command (subcommands inherit it).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def _progress(files: Iterator[T], quiet: bool) -> contextlib.AbstractContextManager[Iterator[T]]:
    """``files`` with a progress bar on stderr when it is a terminal (and not ``quiet``)."""
    if quiet or not sys.stderr.isatty():
        return contextlib.nullcontext(files)
    return click.progressbar(
        files,
        label="building",
        file=sys.stderr,
        show_pos=True,
        item_show_func=lambda item: item[0] if item else None,
    )


#: Commands whose modules are imported only when they run: ``check`` starts faster.
LAZY_COMMANDS = {
    "diff": ("s402gen.breaking", "diff_command"),
    "import": ("s402gen.import_cli", "import_command"),
    "keys": ("s402gen.keys_cli", "keys_command"),
    "mcp": ("s402gen.serve_cli", "mcp_command"),
    "serve": ("s402gen.serve_cli", "serve_command"),
}


class _Group(click.Group):
    """Turns SIGTERM into KeyboardInterrupt (so a killed build cleans up its staging
    folder) and an unexpected exception into a one-line error, never a traceback
    (a closed stdout is left to click, which exits 1 quietly).
    Commands in :data:`LAZY_COMMANDS` are imported only when run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> object:
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            raise  # stdout closed (`| head`): click's main() exits 1 quietly, as click tools do
        except KeyboardInterrupt:
            click.echo(
                "interrupted; the output folder holds the previous build "
                "(or the next build or check completes this one)",
                err=True,
            )
            sys.exit(Exit.INTERRUPTED)
        except Exception as exc:  # a bug of s402gen, not of the catalog
            if os.environ.get("S402GEN_DEBUG"):
                raise
            click.echo(
                f"s402gen: internal error: {type(exc).__name__}: {exc} "
                "(set S402GEN_DEBUG=1 for the traceback, and please report it)",
                err=True,
            )
            sys.exit(EXIT_INVALID)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


#: The cyclic garbage collector's thresholds of a command (the compile itself runs with
#: the collector paused): a command allocates millions of acyclic objects, and rarer
#: passes save ~15% on large catalogs.
COMPILE_GC_THRESHOLD = (100_000, 50, 100)
#: ... and once the compile is frozen, while rendering: each doc page's Jinja context is a
#: reference cycle (a macro imported ``with context``), which only a pass frees, and so
#: many pages' texts waited for one (13 MiB at 10,000 services). A pass scans only what
#: was made since the freeze, so passes ten times as frequent cost little.
RENDER_GC_THRESHOLD = (10_000, 10, 10)


@click.group(cls=_Group, epilog=epilog("s402gen"), context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="s402gen")
def main() -> None:
    """Compile catalog.yaml into route modules, MCP tools, catalog JSON and doc pages.

    CATALOG defaults to catalog.yaml and --out to generated/, or to
    [tool.s402gen] catalog/out in pyproject.toml.
    """
    gc.set_threshold(*COMPILE_GC_THRESHOLD)


@main.command(epilog=epilog("build"))
@catalog_argument
@out_option
@templates_option
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite files s402gen did not write or that were edited by hand, and build "
    "into a folder that holds other files.",
)
@click.option(
    "--fail-on-change",
    is_flag=True,
    help="Exit 1 when a file was written or removed (for pre-commit, as black does).",
)
@quiet_option
@click.option(
    "-v", "--verbose", is_flag=True, help="List every file written or removed, not just counts."
)
def build(
    catalog: str | None,
    out: str | None,
    templates: str | None,
    force: bool,
    fail_on_change: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Compile CATALOG and write the files that changed.

    Prints one summary line (``N written, M removed, K unchanged``); ``--verbose``
    lists each file written or removed before it.
    """
    settings = _settings(catalog, out, templates, writing=True)
    with _locked(settings, create=True) as output:
        _build(settings, output, force, fail_on_change, quiet, verbose)


def _build(
    settings: Settings,
    output: OutputFolder | None,
    force: bool,
    fail_on_change: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    assert output is not None
    caches = _cache_lookup(settings, output)
    if caches.hit is not None:
        if not quiet:
            unchanged = caches.hit.files + 1
            click.echo(f"0 written, 0 removed, {unchanged} unchanged")
        return
    result = _compile(settings, caches=caches)
    reuse = _reuse(caches, result, settings.out)
    statcache.forget(caches.folder, settings.out)  # rebuilt below once the build is done
    known = caches.index.known if caches.index is not None else None
    try:
        with _progress(result.iter_files(reuse), quiet) as files:
            report = write.build(output, files, force=force, known=known)
    except CatalogError as exc:
        _render_failed(exc)
    except (OSError, UnsafePath) as exc:
        click.echo(f"error: cannot write {settings.out}: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    where = _display(settings.out)
    if report.refused:
        emit(refusals(where, report), "text")
        click.echo("nothing was written", err=True)
        sys.exit(EXIT_INVALID)
    for path in report.written if verbose and not quiet else ():
        click.echo(f"wrote {where}/{path}")
    for path in report.removed if verbose and not quiet else ():
        click.echo(f"removed {where}/{path}")
    for path in report.kept_modified:
        click.echo(
            f"warning: kept {where}/{path}: no longer generated but edited by hand", err=True
        )
    if not quiet:
        click.echo(
            f"{len(report.written)} written, {len(report.removed)} removed, "
            f"{report.unchanged} unchanged"
        )
    entry, made = _entry(report.files, report.manifest_sha256, result), _made(reuse)
    del result, reuse  # the IR, let go (with the render's cycles, which hold some of it)
    gc.collect(1)
    _record(caches, settings.out, report.files, entry, made)
    if not report.kept_modified:
        cache.store(caches.folder, caches.key, entry)
    if fail_on_change and (report.written or report.removed):
        sys.exit(EXIT_FINDINGS)


@main.command(epilog=epilog("check"))
@catalog_argument
@out_option
@templates_option
@format_option
@quiet_option
def check(
    catalog: str | None, out: str | None, templates: str | None, fmt: str, quiet: bool
) -> None:
    """Compare what CATALOG compiles to with the output folder; write nothing (but first
    finish or discard a build that was killed there)."""
    settings = _settings(catalog, out, templates, fmt, writing=True)
    with _locked(settings, create=False, fmt=fmt) as output:
        _check(settings, output, fmt, quiet)


def _check(settings: Settings, output: OutputFolder | None, fmt: str, quiet: bool) -> None:
    # a hit prints the cached findings as text: another format takes no whole-run hit (the
    # service cache and the stat index only, as a text check that misses)
    caches = _cache_lookup(settings, output) if fmt == "text" else _service_cache(settings)
    if caches.hit is not None:
        if not quiet:
            click.echo(f"{_display(settings.out)} is up to date")
        return
    result = _compile(settings, fmt, caches=caches)
    reuse = _reuse(caches, result, settings.out)
    try:
        drift = write.check(output, lambda: result.iter_files(reuse))
    except CatalogError as exc:
        _render_failed(exc, fmt)
    where = _display(settings.out)
    document = {"file": _display(settings.catalog), "out": where, "upToDate": drift.clean}
    drifted = _drift_findings(where, drift)
    if fmt == "json":
        emit(result.diagnostics + drifted, fmt, **document)
    if drift.clean:
        entry, made = _entry(drift.files, drift.manifest_sha256, result), _made(reuse)
        del result, reuse  # the IR, let go (with the render's cycles, which hold some of it)
        gc.collect(1)
        _record(caches, settings.out, drift.files, entry, made)
        cache.store(caches.folder, caches.key, entry)
        if fmt != "json" and not quiet:
            click.echo(f"{where} is up to date")
        return
    if fmt == "text":
        click.echo(drift.diff, nl=False)
    if fmt != "json":
        emit(drifted, fmt)
    click.echo(f"{where} is out of date; run `s402gen build`", err=True)
    sys.exit(EXIT_FINDINGS)


def _drift_findings(where: str, drift: write.Drift) -> list[Finding]:
    """One finding per generated file that changed, is missing or is an orphan."""
    hint = "run `s402gen build` and commit the result"
    kinds = (
        (Rules.GENERATED_FILE_CHANGED, drift.changed, "differs from what the catalog compiles to"),
        (Rules.GENERATED_FILE_MISSING, drift.missing, "is missing"),
        (Rules.GENERATED_FILE_ORPHANED, drift.orphans, "is not generated from the catalog"),
    )
    return [
        Finding(rule, f"{where}/{path} {text}", Location(f"{where}/{path}", line, 1), hint)
        for rule, paths, text in kinds
        for path in paths
        for line in [
            (
                (drift.first_lines.get(path) or _first_changed_line(drift.diff, path))
                if rule is kinds[0][0]
                else 1
            )
        ]
    ]


_HUNK = re.compile(r"^@@ -(\d+)")


def _first_changed_line(diff: str, path: str) -> int:
    """The line of the first difference in the on-disk ``path``, read from the unified diff
    :func:`write.check` made (1 when the diff does not show it)."""
    lines = iter(diff.splitlines())
    for line in lines:
        if line == f"--- a/{path}":
            next(lines, None)  # +++ b/path
            hunk = _HUNK.match(next(lines, ""))
            if hunk is None:
                return 1
            for offset, body in enumerate(lines):
                if body[:1] in "-+":
                    return max(int(hunk.group(1)) + offset, 1)
    return 1


@main.command(epilog=epilog("validate"))
@catalog_argument
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings.")
@click.option(
    "--upstream",
    is_flag=True,
    help="Also compare each service with its provider's official SDK (`sdk:`).",
)
@format_option
@quiet_option
def validate(catalog: str | None, strict: bool, upstream: bool, fmt: str, quiet: bool) -> None:
    """Report the errors and warnings of CATALOG."""
    settings = _settings(catalog, None, None, fmt)
    result = _compile(settings, fmt, upstream, _service_cache(settings))
    warnings = sum(d.level is Level.WARNING for d in result.diagnostics)
    if fmt == "json":
        emit(result.diagnostics, fmt, file=_display(settings.catalog), valid=True)
    elif fmt == "text" and not quiet:
        click.echo(f"{_display(settings.catalog)}: valid, {warnings} warning(s)")
    if strict and warnings:
        sys.exit(EXIT_FINDINGS)


@main.command(epilog=epilog("schema"))
@click.option("--part", is_flag=True, help="The schema of a file that `include:` names.")
def schema(part: bool) -> None:
    """Print the JSON Schema of catalog.yaml (for editors; generated/ holds a copy)."""
    from .model import json_schema, part_json_schema

    chosen = part_json_schema() if part else json_schema()
    click.echo(json.dumps(chosen, ensure_ascii=False, indent=2))

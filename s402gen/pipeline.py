"""The whole compile, load to file map, as one call.

``catalog.yaml --load--> tree --structure--> model --model rules--> --derive--> IR
--ir rules--> --render--> {path: text}``. :func:`compile_catalog` never raises for a
user's mistake: it returns a :class:`Compilation` whose ``diagnostics``
say what is wrong. Its files are rendered on demand; asking for them from
an invalid catalog, or rendering a broken user template, raises
:class:`~s402gen.diagnostics.CatalogError` carrying the diagnostics.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

from . import ir, write
from .derive import derive
from .diagnostics import (
    CatalogError,
    Diagnostic,
    Location,
    Rules,
    has_errors,
    sort_diagnostics,
)
from .formatting import FormatError
from .load import LoadedDocument, gc_paused, load_catalog, load_text
from .structure import parse_model
from .validate import check_catalog, check_model

if TYPE_CHECKING:
    from . import render
    from .incremental import Reuse
    from .servicecache import Cache


@dataclass
class Compilation:
    """Result of a compile: every diagnostic, and the IR when the catalog is valid.

    The files are rendered on demand: :meth:`iter_files` streams them (what
    ``build`` and ``check`` use, holding one file at a time) and
    :attr:`files` collects them into a dict.
    """

    diagnostics: list[Diagnostic] = field(default_factory=list)
    catalog: ir.Catalog | None = None
    templates: Path | None = None
    source_name: str = "catalog.yaml"
    #: :func:`s402gen.incremental.ir_digest` of each service, by position, where the
    #: per-service cache knows it (see :class:`s402gen.incremental.Reuse`)
    digests: list[bytes | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.diagnostics = sort_diagnostics(self.diagnostics)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not has_errors(self.diagnostics)

    def iter_files(
        self, reuse: Reuse | None = None
    ) -> Iterator[tuple[str, render.Chunks | write.Unchanged]]:
        """``(relative path, text chunks)`` of every generated file but the manifest.

        Lazy (see :func:`render.iter_files`); the consumer makes the manifest
        (:func:`write.manifest_text`). With ``reuse``, a file that needs no render
        comes as :class:`write.Unchanged` (see :mod:`s402gen.incremental`). Raises
        :class:`CatalogError` when the catalog is invalid, or while iterating when a
        user template fails.
        """
        if self.catalog is None or not self.ok:
            raise CatalogError(self.diagnostics)
        from . import render  # Jinja and the documents: imported when rendering (0.2 s)

        with self._render_errors():
            for path, chunks in render.iter_files(self.catalog, self.templates, reuse):
                if isinstance(chunks, write.Unchanged):
                    yield path, chunks
                else:
                    yield path, self._guarded(chunks)

    def _guarded(self, chunks: render.Chunks) -> Iterator[str]:
        with self._render_errors():
            yield from chunks

    @contextlib.contextmanager
    def _render_errors(self) -> Iterator[None]:
        from .render import TemplateFailure

        try:
            yield
        except TemplateFailure as exc:
            where = Location(exc.filename or self.source_name, exc.lineno or 1, 1)
            problem = Diagnostic(Rules.TEMPLATE_ERROR, f"template error: {exc}", where)
            raise CatalogError([problem]) from None
        except FormatError as exc:
            where = Location(str(self.templates or self.source_name), 1, 1)
            raise CatalogError([Diagnostic(Rules.TEMPLATE_ERROR, str(exc), where)]) from None

    @property
    def files(self) -> dict[str, str]:
        """Every generated file with the manifest, ``{relative path: text}``, in memory."""
        files = {path: write.text_of(chunks) for path, chunks in self.iter_files()}  # type: ignore[arg-type]
        files[write.MANIFEST] = write.manifest_text(
            {path: write.sha256(text) for path, text in files.items()}
        )
        return files


def source_date(environ: Mapping[str, str], file: str) -> tuple[str | None, list[Diagnostic]]:
    """``SOURCE_DATE_EPOCH`` (reproducible-builds.org) as ``YYYY-MM-DDTHH:MM:SSZ``, if set."""
    raw = environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None, []
    try:
        moment = datetime.fromtimestamp(int(raw), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None, [
            Diagnostic(
                Rules.INVALID_VALUE,
                f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {raw!r}",
                Location(file, 1, 1),
            )
        ]
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ"), []


def compile_catalog(
    catalog_path: str | os.PathLike[str],
    *,
    display_name: str | None = None,
    templates: Path | None = None,
    environ: Mapping[str, str] | None = None,
    upstream: bool = False,
    cache: Cache | None = None,
) -> Compilation:
    """Compile ``catalog_path`` into the file map of ``generated/`` (manifest included).

    ``display_name`` names the catalog in diagnostics (default: the path);
    ``templates`` is a user template folder searched before the packaged
    one; ``environ`` supplies ``SOURCE_DATE_EPOCH`` (default: the process
    environment); ``upstream`` adds the comparison with the official SDK
    (:mod:`s402gen.upstream_check`, which raises ``SdkMissing`` without it);
    ``cache`` is the per-service cache of validate and derive
    (:mod:`s402gen.servicecache`; ``None``: none).
    """
    name = display_name or str(catalog_path)
    try:
        document = load_catalog(str(catalog_path), name)
    except CatalogError as exc:
        return Compilation(exc.diagnostics)
    return _compile_document(document, name, templates, environ, upstream, True, cache)


def compile_text(
    text: str, name: str, *, environ: Mapping[str, str] | None = None, checks: bool = True
) -> Compilation:
    """Compile catalog YAML held in memory (as :func:`compile_catalog`, packaged templates).

    With ``checks=False`` only the structure and the derivation are checked
    (no uniqueness, schema, example or lint checks): a faster first pass.
    """
    try:
        document = load_text(text, name)
    except CatalogError as exc:
        return Compilation(exc.diagnostics)
    return _compile_document(document, name, None, environ, False, checks)


@gc_paused()  # the model, the IR and the cached entries stay alive
def _compile_document(
    document: LoadedDocument,
    name: str,
    templates: Path | None,
    environ: Mapping[str, str] | None,
    upstream: bool,
    checks: bool,
    cache: Cache | None = None,
) -> Compilation:
    authored, diagnostics = parse_model(document)
    if authored is None:
        return Compilation(document.problems + diagnostics)
    env = os.environ if environ is None else environ
    generated_at, diagnostics = source_date(env, name)
    session = None
    if cache is not None and checks:
        from .servicecache import Session

        session = Session(cache, document.data)
    document.data = None  # the plain tree, let go: the model holds it (11 MiB at 10,000 services)
    if session is not None:
        session.read()
    diagnostics += document.problems + check_model(authored, document.source, session)
    if has_errors(diagnostics):
        if session is not None:
            session.save()
        return Compilation(diagnostics)
    compiled = derive(authored, generated_at, session)
    if upstream:
        from .upstream_check import check_upstream

        diagnostics += check_upstream(compiled, authored, document.source)
    if checks:
        diagnostics += check_catalog(compiled, authored, document.source, session)
    if session is None:
        return Compilation(diagnostics, compiled, templates, name)
    session.save()
    return Compilation(diagnostics, compiled, templates, name, session.digests())

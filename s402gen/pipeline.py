"""The whole compile, load to file map, as one call.

``catalog.yaml --load--> tree --validate--> model --derive--> IR --check-->
--render--> {path: text}``. :func:`compile_catalog` never raises for a
user's mistake: it returns a :class:`Compilation` whose ``diagnostics``
say what is wrong and whose ``files`` is ``None`` when there are errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import jinja2

from . import ir, render, write
from .derive import derive
from .diagnostics import CatalogError, Diagnostic, Location, Rules, has_errors, sort_diagnostics
from .load import load_file
from .validate import check_catalog, parse_model


@dataclass
class Compilation:
    """Result of a compile: the IR and file map when valid, and every diagnostic."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    catalog: ir.Catalog | None = None
    files: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.diagnostics = sort_diagnostics(self.diagnostics)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not has_errors(self.diagnostics)


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
) -> Compilation:
    """Compile ``catalog_path`` into the file map of ``generated/`` (manifest included).

    ``display_name`` names the catalog in diagnostics (default: the path);
    ``templates`` is a user template folder searched before the packaged
    one; ``environ`` supplies ``SOURCE_DATE_EPOCH`` (default: the process
    environment). Template errors in user templates become diagnostics.
    """
    name = display_name or str(catalog_path)
    env = os.environ if environ is None else environ
    try:
        document = load_file(str(catalog_path), name)
    except CatalogError as exc:
        return Compilation(exc.diagnostics)
    authored, diagnostics = parse_model(document)
    if authored is None:
        return Compilation(diagnostics)
    generated_at, date_problems = source_date(env, name)
    compiled, derive_problems = derive(authored, document.source, generated_at)
    diagnostics = date_problems + derive_problems
    if has_errors(diagnostics):
        return Compilation(diagnostics)
    result = Compilation(diagnostics + check_catalog(compiled, authored, document.source), compiled)
    if not result.ok:
        return result
    try:
        files = render.render(compiled, templates)
    except jinja2.TemplateError as exc:
        where = Location(getattr(exc, "filename", None) or name, getattr(exc, "lineno", 1) or 1, 1)
        problem = Diagnostic(Rules.INVALID_VALUE, f"template error: {exc}", where)
        return Compilation(result.diagnostics + [problem], compiled)
    files[write.MANIFEST] = write.manifest_text(files)
    result.files = files
    return result

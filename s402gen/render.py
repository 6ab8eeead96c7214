"""Render stage: IR to ``{relative path: text}``, through the Jinja templates.

Pure: no disk writes, no clock, no environment. The JSON documents are
assembled by :mod:`s402gen.documents` and serialized by one function;
templates only loop and substitute. Python is emitted black-stable by construction (every
collection exploded, one item a line, magic trailing commas); black itself
only runs when a user's template folder overrides the route template.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import aggregates, doc_site, ir, jsonstream, model, openapi, parallel, write
from .config import packaged_templates
from .documents import (  # noqa: F401 - re-exported: the documents the files hold
    catalog_document,
    catalog_entries,
    catalog_entry,
    catalog_head,
    categories_json,
    doc_schema_block,
    mcp_tool,
    to_json,
)
from .runtime import contract, protocol, search, x402_contract
from .write import Staged, Unchanged

if TYPE_CHECKING:
    from .incremental import Reuse

INDENT = "    "
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN = re.compile(r"[^\"'\\\x00-\x1f\x7f]*\Z")


def py_str(text: str) -> str:
    """A Python string literal with the quotes black would choose."""
    if _PLAIN.match(text):
        return f'"{text}"'
    body = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    body = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", body)
    quote = "'" if text.count("'") < text.count('"') else '"'
    return quote + body.replace(quote, "\\" + quote) + quote


def py_literal(value: Any, level: int = 0) -> str:
    """A Python literal for a JSON-like value, black-stable at indent ``level``.

    Non-empty dicts and lists (tuples become lists) are exploded one item
    per line with a trailing comma, which black keeps as is (magic trailing
    comma).
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value).replace("e+", "e")  # black writes 1e16, not 1e+16
    if isinstance(value, str):
        return py_str(value)
    inner = INDENT * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{py_str(str(k))}: {py_literal(v, level + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + INDENT * level + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        opening, closing = "[", "]"  # lists only: black keeps a 1-tuple on one line
        items = [f"{inner}{py_literal(v, level + 1)}," for v in value]
        return opening + "\n" + "\n".join(items) + "\n" + INDENT * level + closing
    raise TypeError(f"no Python literal for {type(value).__name__}")


class _Loader(jinja2.FileSystemLoader):
    """A template folder; a file that is not UTF-8 is a syntax error at the line of its
    first bad byte (instead of a ``UnicodeDecodeError``)."""

    def get_source(self, environment: jinja2.Environment, template: str) -> Any:
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError as exc:
            found = (os.path.join(folder, template) for folder in self.searchpath)
            filename = next((f for f in found if os.path.isfile(f)), template)
            line = exc.object[: exc.start].count(b"\n") + 1
            message = f"the template is not UTF-8 text ({exc.reason} at byte {exc.start})"
            raise jinja2.TemplateSyntaxError(message, line, template, filename) from None


class _Mapped:
    """A template that cannot be parsed is a :class:`TemplateFailure` at its file and line."""

    def get_template(self, *args: Any, **kwargs: Any) -> jinja2.Template:
        try:
            return super().get_template(*args, **kwargs)  # type: ignore[misc, no-any-return]
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateFailure(exc.message or str(exc), exc.filename, exc.lineno) from None


class _Environment(_Mapped, jinja2.Environment):
    """The packaged templates' environment (they are the package's own code)."""


class _Sandbox(_Mapped, ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, for a build with a user's template folder: a template
    formats the data it is given, but cannot reach Python internals (``__class__``,
    ``__subclasses__``, ...) nor change the data; what it tries raises ``SecurityError``
    (a located template error). It costs about a third more render time
    (``bench/sandbox_bench.py``), so the packaged templates alone render without it."""


def make_environment(user_templates: Path | None = None) -> jinja2.Environment:
    """Jinja environment: the user's template folder first, the packaged one second; with a
    user's folder, sandboxed (:class:`_Sandbox`)."""
    loaders: list[jinja2.BaseLoader] = []
    if user_templates is not None:
        loaders.append(_Loader(str(user_templates)))
    loaders.append(_Loader(str(packaged_templates())))
    kind = _Environment if user_templates is None else _Sandbox
    env = kind(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.jinja"), default=False
        ),
    )
    env.filters["py"] = py_literal
    env.filters["json"] = to_json
    return env


# ---------------------------------------------------------------------------
# the file map


Chunks = Iterable[str] | Iterable[bytes]
"""A file's text in pieces: ``str``, or UTF-8 ``bytes`` (rendered by a worker)."""


class TemplateFailure(Exception):
    """A template failed to render: ``filename`` and ``lineno`` say where, when known."""

    def __init__(self, message: str, filename: str | None, lineno: int | None):
        super().__init__(message)
        self.filename = filename
        self.lineno = lineno

    def __reduce__(self) -> tuple[Any, ...]:  # sent back from a render worker (pickled)
        return (TemplateFailure, (str(self), self.filename, self.lineno))


def _located(exc: Exception, template: jinja2.Template) -> TemplateFailure:
    """``exc`` raised while rendering ``template`` (a Jinja error, a filter that raised,
    templates including each other without end), at the innermost template line in its
    traceback (Jinja maps its frames back to the source)."""
    folders = tuple(
        os.path.join(os.path.abspath(folder), "")
        for loader in getattr(template.environment.loader, "loaders", ())
        for folder in getattr(loader, "searchpath", ())
    )
    filename, lineno = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        code_file = tb.tb_frame.f_code.co_filename
        if code_file == template.filename or os.path.abspath(code_file).startswith(folders):
            filename, lineno = code_file, tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, RecursionError):
        message = "templates include or call each other without end"
    elif isinstance(exc, jinja2.TemplateError):
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    return TemplateFailure(message, filename or template.filename, lineno)


#: Python frames a user's template may stack above its caller: a template that includes
#: itself stops with a RecursionError well before the C stack overflows (Jinja's nested
#: generators use C stack too; at the interpreter's own limit the process can segfault).
USER_TEMPLATE_FRAMES = 400


@contextlib.contextmanager
def _bounded_stack(template: jinja2.Template) -> Iterator[None]:
    """Lower the recursion limit while a sandboxed (user's) template renders."""
    if not isinstance(template.environment, _Sandbox):
        yield
        return
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(min(old, depth + USER_TEMPLATE_FRAMES))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _render(template: jinja2.Template, **context: Any) -> list[str]:
    try:
        with _bounded_stack(template):
            return [template.render(**context)]
    except TemplateFailure:
        raise
    except Exception as exc:  # whatever a template or its filters raise is the template's
        raise _located(exc, template) from None


def _stream(template: jinja2.Template, **context: Any) -> Iterator[str]:
    chunks = template.generate(**context)
    while True:
        try:
            with _bounded_stack(template):
                chunk = next(chunks, None)
        except TemplateFailure:
            raise
        except Exception as exc:
            raise _located(exc, template) from None
        if chunk is None:
            return
        yield chunk


def iter_files(
    catalog: ir.Catalog,
    user_templates: Path | None = None,
    reuse: Reuse | None = None,
    jobs: int = 1,
) -> Iterator[tuple[str, Chunks | Unchanged | Staged]]:
    """Every generated file but the manifest, as ``(posix relative path, text chunks)``.

    Lazy twice over: files come one at a time, and the two files that grow
    with the catalog (catalog.json, mcp/tools.json) come in chunks (Jinja's
    ``generate``), entry by entry, so that a caller hashing, comparing or
    writing never holds a whole one.
    With ``reuse`` (:mod:`s402gen.incremental`), a service's own file that needs no
    render comes as :class:`~s402gen.write.Unchanged` instead of its text.
    With ``jobs`` over 1 (and enough to render), the services' own files are rendered
    by that many forked workers (:mod:`s402gen.parallel`) and come as UTF-8 ``bytes``
    chunks, or, read by a build (:func:`write.active_stager`), as
    :class:`~s402gen.write.Staged`: already hashed, compared and staged by the worker.
    The files, their order, their text and the first error are those of ``jobs=1``. Raises :class:`TemplateFailure` for a broken user template.
    """
    env = make_environment(user_templates)
    route = env.get_template("route.py.jinja")
    needs_black = Path(route.filename or "").parent.resolve() != packaged_templates().resolve()
    services = catalog.services
    page = functools.cache(lambda: env.get_template("doc_page.html.jinja"))  # looked up when used
    categories = {c.id: c for c in catalog.categories}
    by_id = doc_site.services_by_id(catalog)

    def python(chunks: Chunks) -> Chunks:
        if not needs_black:
            return chunks
        from .formatting import format_python

        return [format_python("".join(chunks))]  # type: ignore[arg-type]

    def route_file(svc: ir.Service) -> Chunks:
        return python(_render(route, spec=svc.route))

    def page_file(svc: ir.Service) -> Chunks:
        return _render(
            page(),
            service=svc,
            marketplace=catalog.marketplace,
            payment_intro=protocol.PAYMENT_INTRO,
            schema_block=doc_schema_block(svc),
            retry_http=protocol.RETRY_HTTP,
            retry_mcp=protocol.RETRY_MCP,
            params=doc_site.param_rows(svc),
            curl_example=doc_site.curl_example(svc),
            python_example=doc_site.python_example(svc),
            mcp_example=doc_site.mcp_example(svc),
            related=doc_site.related(svc, catalog, by_id),
            categories=categories,
        )

    entries = _Entries(env, catalog)
    reused = {kind: _reused(services, reuse, kind) for kind in _SERVICE_FILES}
    farm = _farm(
        jobs,
        services,
        reused,
        {"route": route_file, "entry": entries.compute, "page": page_file},
    )

    def own(kind: str, svc: ir.Service) -> Chunks | Unchanged | Staged:
        found = reused[kind][svc.index]
        if found is not None:
            return found
        if farm is not None:
            return _settled(farm.take(kind))
        return route_file(svc) if kind == "route" else page_file(svc)

    try:
        for svc in services:
            yield _SERVICE_FILES["route"](svc), own("route", svc)
        routes_init = env.get_template("routes_init.py.jinja")
        yield "routes/__init__.py", python(_render(routes_init, services=services))

        tools = itertools.chain((mcp_tool(svc) for svc in services), contract.payment_tools())
        tools_template = env.get_template("mcp_tools.json.jinja")
        if _packaged(tools_template):
            yield "mcp/tools.json", aggregates.tools_json(tools)
        else:
            yield "mcp/tools.json", _stream(tools_template, tools=tools)
        yield from _catalog_files(entries, catalog, reuse, reused["entry"], farm)

        page()  # a broken page template fails here, before the first page
        for svc in services:
            yield _SERVICE_FILES["page"](svc), own("page", svc)
    finally:
        if farm is not None:
            farm.close()
    yield from _doc_assets(env, catalog)
    # the editor schema of catalog.yaml itself (its first line points yaml-language-server here)
    yield "catalog.schema.json", _render(
        env.get_template("catalog_schema.json.jinja"), schema=model.json_schema()
    )
    if catalog.categories:  # what search expands a query to, per category, and the filter
        yield search.CATEGORIES_FILE, _render(
            env.get_template("categories.json.jinja"), categories=categories_json(catalog)
        )
    if catalog.includes:  # the editor schema of the files it includes
        yield "catalog-part.schema.json", _render(
            env.get_template("catalog_schema.json.jinja"), schema=model.part_json_schema()
        )
    # x402: each service's payment requirements and Bazaar extension, for the gateway's 402
    offers_template = env.get_template("x402_offers.json.jinja")
    if _packaged(offers_template):
        yield x402_contract.OFFERS_FILE, aggregates.offers_json(catalog.x402 or {})
    else:
        yield x402_contract.OFFERS_FILE, _render(offers_template, offers=catalog.x402 or {})
    # the output contract: the JSON Schema of each document the catalog and the gateway publish
    contract_template = env.get_template("contract_schema.json.jinja")
    for name, schema in contract.published_schemas().items():
        yield f"contract/{name}.schema.json", _render(contract_template, schema=schema)
    yield "docs/index.html", _render(
        env.get_template("doc_index.html.jinja"),
        services=services,
        marketplace=catalog.marketplace,
        categories=categories,
        groups=doc_site.groups(catalog),
        search_data=doc_site.SEARCH_DATA[0],
    )
    # the gateway's OpenAPI 3.1 document (served as /openapi.json)
    openapi_template = env.get_template("openapi.json.jinja")
    if _packaged(openapi_template):
        yield "openapi.json", aggregates.openapi_json(catalog)
    else:
        yield "openapi.json", _render(openapi_template, document=openapi.openapi_document(catalog))


def _packaged(template: jinja2.Template) -> bool:
    """True when ``template`` is the packaged one (no user template overrides it): then the
    files :mod:`s402gen.aggregates` writes itself, as that template would, skip Jinja."""
    return Path(template.filename or "").parent.resolve() == packaged_templates().resolve()


#: The files of one service alone: ``kind: path of a service's file``.
_SERVICE_FILES: dict[str, Any] = {
    "route": lambda svc: f"routes/{svc.module}.py",
    "entry": lambda svc: f"catalog/services/{svc.route.service_id}.json",
    "page": lambda svc: f"docs/tools/{svc.route.service_id}.html",
}

#: Below this many files to render, a build renders them itself (forking costs more).
PARALLEL_MIN_FILES = 64


def _reused(
    services: tuple[ir.Service, ...] | list[ir.Service], reuse: Reuse | None, kind: str
) -> list[Unchanged | None]:
    """For each service, its ``kind`` file as :class:`Unchanged` when it needs no render."""
    if reuse is None:
        return [None] * len(services)
    return [reuse.unchanged(svc, _SERVICE_FILES[kind](svc)) for svc in services]


def _farm(
    jobs: int,
    services: tuple[ir.Service, ...] | list[ir.Service],
    reused: dict[str, list[Unchanged | None]],
    render: dict[str, Any],
) -> parallel.Farm | None:
    """Workers rendering every service file ``reused`` does not cover; ``None`` when ``jobs``
    is 1 or there is too little to render. During a build (:func:`write.active_stager`) a
    worker stages each file itself and sends its :class:`~s402gen.write.Staged`, else its
    UTF-8 bytes; an entry comes with its catalog.json piece (UTF-8)."""
    todo = {kind: [i for i, r in enumerate(found) if r is None] for kind, found in reused.items()}
    if jobs <= 1 or not parallel.available():
        return None
    if sum(len(positions) for positions in todo.values()) < PARALLEL_MIN_FILES:
        return None
    stager = write.active_stager()

    def made(kind: str) -> Any:
        def one(i: int) -> Any:
            svc = services[i]
            chunks, piece = render[kind](svc), None
            if kind == "entry":
                chunks, piece = chunks
                piece = piece if piece is None else piece.encode("utf-8")
            if stager is not None:
                file: Any = stager(_SERVICE_FILES[kind](svc), chunks)
            else:
                file = _utf8(chunks)
            return (file, piece) if kind == "entry" else file

        return one

    farm = parallel.Farm(jobs, [(kind, todo[kind], made(kind)) for kind in render])
    if stager is not None:
        stager.on_stop(farm.close)
    return farm


def _settled(found: Any) -> Chunks | Staged:
    """A worker's file: its :class:`Staged` outcome, or its bytes as chunks."""
    return found if isinstance(found, Staged) else [found]


def _utf8(chunks: Chunks | None) -> bytes | None:
    return None if chunks is None else "".join(chunks).encode("utf-8")  # type: ignore[arg-type]


class _Entries:
    """The catalog entries: each service's ``catalog/services/<id>.json`` and its piece of
    ``catalog/catalog.json``, computed once for both (the templates are looked up at the
    first use, where a serial render looks them up)."""

    def __init__(self, env: jinja2.Environment, catalog: ir.Catalog):
        self.env = env
        self.flow = contract.payment_flow()
        self._templates: tuple[jinja2.Template, jinja2.Template, bool, bool] | None = None

    def templates(self) -> tuple[jinja2.Template, jinja2.Template, bool, bool]:
        """``(entry template, catalog template, entry packaged, catalog packaged)``."""
        if self._templates is None:
            entry = self.env.get_template("catalog_entry.json.jinja")
            whole = self.env.get_template("catalog.json.jinja")
            self._templates = (entry, whole, _packaged(entry), _packaged(whole))
        return self._templates

    def compute(self, svc: ir.Service, file: bool = True) -> tuple[Chunks | None, str | None]:
        """``(the entry file's chunks, or None unless file; its catalog.json piece: its
        JSON indented two levels, or None when catalog.json is a user's template)``."""
        entry_template, _, fast_entry, fast_catalog = self.templates()
        entry = catalog_entry(svc, self.flow).to_json()
        text = to_json(entry) if fast_entry or fast_catalog else ""
        piece = text.replace("\n", "\n    ") if fast_catalog else None
        if not file:
            return None, piece
        if fast_entry:
            return [f"{text}\n"], piece
        return _render(entry_template, entry=entry), piece


def _catalog_files(
    entries: _Entries,
    catalog: ir.Catalog,
    reuse: Reuse | None,
    reused: list[Unchanged | None],
    farm: parallel.Farm | None,
) -> Iterator[tuple[str, Chunks | Unchanged | Staged]]:
    """``catalog/services/<id>.json`` of every service, then ``catalog/catalog.json``.

    Each entry is computed once: with the packaged templates, its indented text is
    spooled (:class:`aggregates.Spool`) for catalog.json; with a user's catalog.json
    template, catalog.json computes the entries again. ``reused``: each service's entry
    file as :class:`Unchanged` when it needs no render; the others come from ``farm``
    when there is one.
    """
    _, catalog_template, fast_entry, fast_catalog = entries.templates()
    spool = aggregates.Spool() if fast_catalog else None
    try:
        for i, svc in enumerate(catalog.services):
            path = _SERVICE_FILES["entry"](svc)
            unchanged = reused[i]
            file: Chunks | None = None
            piece: str | bytes | None = None
            if unchanged is None and farm is not None:
                data, piece = farm.take("entry")
                file = _settled(data)
            elif unchanged is None:
                file, piece = entries.compute(svc)
            elif spool is not None:
                written = reuse.text(path, unchanged) if reuse is not None and fast_entry else None
                if written is not None:
                    piece = written[:-1].replace("\n", "\n    ")  # the file is the JSON and \n
                else:
                    if fast_entry:  # replaced behind the index's back: render it again
                        unchanged = None
                    file, piece = entries.compute(svc, file=unchanged is None)
            if spool is not None and piece is not None:
                spool.append(piece)
            yield path, unchanged if unchanged is not None else file  # type: ignore[misc]
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    head, payment = catalog_head(catalog), contract.payment_block().to_json()
    if spool is not None:
        yield "catalog/catalog.json", aggregates.catalog_json(head, spool, payment)
    else:
        listed = (entry.to_json() for entry in catalog_entries(catalog))
        yield "catalog/catalog.json", _stream(
            catalog_template, head=head, entries=listed, payment=payment
        )


def _doc_assets(env: jinja2.Environment, catalog: ir.Catalog) -> Iterator[tuple[str, Chunks]]:
    """The doc site's style sheet, script and search data (``docs/assets/``)."""
    path, name = doc_site.STYLE
    yield f"docs/{path}", _render(env.get_template(name))
    path, name = doc_site.SCRIPT
    yield f"docs/{path}", _render(
        env.get_template(name),
        search_data_global=doc_site.SEARCH_GLOBAL,
        base_url=doc_site.DEFAULT_BASE_URL,
    )
    path, name = doc_site.SEARCH_DATA
    template = env.get_template(name)
    if _packaged(template):  # the one list it holds streamed, entry by entry
        frame = "".join(_render(template, search_data_global=doc_site.SEARCH_GLOBAL, entries=[]))
        entries = (doc_site.search_entry(svc) for svc in catalog.services)
        yield f"docs/{path}", aggregates.spliced(frame, "[]", jsonstream.Elements(entries))
    else:
        yield f"docs/{path}", _render(
            template,
            search_data_global=doc_site.SEARCH_GLOBAL,
            entries=doc_site.search_data(catalog),
        )

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

from . import aggregates, doc_site, documents, ir, jsonstream, model, openapi
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
from .incremental import Splice
from .write import Unchanged

if TYPE_CHECKING:
    from .incremental import Reuse

INDENT = "    "
STREAM_PIECE = 1 << 16  # characters: what :func:`_stream` joins before passing them on
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
"""A file's text in pieces: ``str``, or UTF-8 ``bytes`` (the JSON aggregates, from orjson)."""


class TemplateFailure(Exception):
    """A template failed to render: ``filename`` and ``lineno`` say where, when known."""

    def __init__(self, message: str, filename: str | None, lineno: int | None):
        super().__init__(message)
        self.filename = filename
        self.lineno = lineno


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
    """What ``template`` renders, in pieces of about :data:`STREAM_PIECE` characters
    (Jinja's own are a few characters each: joined, so that the writer sees few), never
    held whole: a page listing every service is megabytes of small strings."""
    chunks = template.generate(**context)
    pending: list[str] = []
    size = 0
    while True:
        try:
            with _bounded_stack(template):
                chunk = next(chunks, None)
        except TemplateFailure:
            raise
        except Exception as exc:
            raise _located(exc, template) from None
        if chunk is None:
            break
        pending.append(chunk)
        size += len(chunk)
        if size >= STREAM_PIECE:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


def iter_files(
    catalog: ir.Catalog, user_templates: Path | None = None, reuse: Reuse | None = None
) -> Iterator[tuple[str, Chunks | Unchanged]]:
    """Every generated file but the manifest, as ``(posix relative path, text chunks)``.

    Lazy twice over: files come one at a time, and the two files that grow
    with the catalog (catalog.json, mcp/tools.json) come in chunks (Jinja's
    ``generate``), entry by entry, so that a caller hashing, comparing or
    writing never holds a whole one.
    With ``reuse`` (:mod:`s402gen.incremental`), a service's own file that needs no
    render comes as :class:`~s402gen.write.Unchanged` instead of its text.
    Raises :class:`TemplateFailure` for a broken user template.
    """
    env = make_environment(user_templates)
    route = env.get_template("route.py.jinja")
    needs_black = not _packaged(route)
    services = catalog.services

    def python(chunks: Chunks) -> Chunks:
        if not needs_black:
            return chunks
        from .formatting import format_python

        return [format_python("".join(chunks))]  # type: ignore[arg-type]

    for svc in services:
        path = f"routes/{svc.module}.py"
        reused = reuse.unchanged(svc, path) if reuse is not None else None
        yield path, reused or python(_render(route, spec=svc.route))
    routes_init = env.get_template("routes_init.py.jinja")
    yield "routes/__init__.py", python(_render(routes_init, services=services))

    tools_template = env.get_template("mcp_tools.json.jinja")
    if _packaged(tools_template):
        splice = Splice(reuse, "mcp/tools.json")
        members = (splice.member(svc, "tool", functools.partial(mcp_tool, svc)) for svc in services)
        tools = itertools.chain(members, contract.payment_tools())
        yield "mcp/tools.json", splice.record(aggregates.tools_json(tools))
    else:
        tools = itertools.chain((mcp_tool(svc) for svc in services), contract.payment_tools())
        yield "mcp/tools.json", _stream(tools_template, tools=tools)
    yield from _catalog_files(env, catalog, reuse)

    page = env.get_template("doc_page.html.jinja")
    categories = {c.id: c for c in catalog.categories}
    by_id = doc_site.services_by_id(catalog)
    for svc in services:
        path = f"docs/tools/{svc.route.service_id}.html"
        reused = reuse.unchanged(svc, path) if reuse is not None else None
        if reused is not None:
            yield path, reused
            continue
        yield path, _render(
            page,
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
    yield from _doc_assets(env, catalog, reuse)
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
        splice = Splice(reuse, x402_contract.OFFERS_FILE)
        offers = aggregates.offers_json(
            catalog, lambda svc, make: splice.member(svc, "offer", make)
        )
        yield x402_contract.OFFERS_FILE, splice.record(offers)
    else:
        offers_document = documents.offers_document(catalog)
        yield x402_contract.OFFERS_FILE, _render(offers_template, offers=offers_document)
    # the output contract: the JSON Schema of each document the catalog and the gateway publish
    contract_template = env.get_template("contract_schema.json.jinja")
    for name, schema in contract.published_schemas().items():
        yield f"contract/{name}.schema.json", _render(contract_template, schema=schema)
    yield "docs/index.html", _stream(
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
        splice = Splice(reuse, "openapi.json")
        yield "openapi.json", splice.record(aggregates.openapi_json(catalog, splice.member))
    else:
        yield "openapi.json", _render(openapi_template, document=openapi.openapi_document(catalog))


def _packaged(template: jinja2.Template) -> bool:
    """True when ``template`` is the packaged one (no user template overrides it): then the
    files :mod:`s402gen.aggregates` writes itself, as that template would, skip Jinja."""
    return Path(template.filename or "").parent.resolve() == packaged_templates().resolve()


def _catalog_files(
    env: jinja2.Environment, catalog: ir.Catalog, reuse: Reuse | None
) -> Iterator[tuple[str, Chunks | Unchanged]]:
    """``catalog/services/<id>.json`` of every service, then ``catalog/catalog.json``.

    Each entry is computed once: with the packaged templates, its indented text is
    spooled (:class:`aggregates.Spool`) for catalog.json, unless catalog.json as it is
    holds it (:class:`~s402gen.incremental.Splice`); with a user's catalog.json
    template, catalog.json computes the entries again.
    """
    entry_template = env.get_template("catalog_entry.json.jinja")
    catalog_template = env.get_template("catalog.json.jinja")
    fast_entry, fast_catalog = _packaged(entry_template), _packaged(catalog_template)
    flow = contract.payment_flow()
    spool = aggregates.Spool() if fast_catalog else None
    splice = Splice(reuse, "catalog/catalog.json")
    spooled: list[tuple[int, int] | None] = []  # where each entry's text is in the spool
    try:
        for svc in catalog.services:
            path = f"catalog/services/{svc.route.service_id}.json"
            reused = reuse.unchanged(svc, path) if reuse is not None else None
            spliced = spool is not None and splice.has(svc, "entry")
            text = None  # the entry's JSON, when it is needed
            if reuse is not None and reused is not None and spool is not None and fast_entry:
                if not spliced:
                    written = reuse.text(path, reused)
                    if written is None:
                        reused = None  # replaced behind the index's back: render it again
                    else:
                        text = written[:-1]  # the file is the entry's JSON and a newline
            entry = None
            if text is None and (reused is None or (spool is not None and not spliced)):
                entry = catalog_entry(svc, flow).to_json()
                if fast_entry or spool is not None:
                    text = to_json(entry)
            if spool is not None:
                where = None if spliced else spool.write(text.replace("\n", "\n    "))
                spooled.append(where)
            if reused is not None:
                yield path, reused
            elif fast_entry:
                yield path, [f"{text}\n"]
            else:
                yield path, _render(entry_template, entry=entry)
    except BaseException:
        splice.close()
        if spool is not None:
            spool.close()
        raise
    head, payment = catalog_head(catalog), contract.payment_block().to_json()
    if spool is not None:
        entries = _catalog_entries(catalog, flow, spool, splice, spooled)
        yield "catalog/catalog.json", splice.record(aggregates.catalog_json(head, entries, payment))
    else:
        splice.close()
        entries = (entry.to_json() for entry in catalog_entries(catalog))
        yield "catalog/catalog.json", _stream(
            catalog_template, head=head, entries=entries, payment=payment
        )


def _catalog_entries(
    catalog: ir.Catalog,
    flow: contract.PaymentFlow,
    spool: aggregates.Spool,
    splice: Splice,
    spooled: list[tuple[int, int] | None],
) -> Iterator[bytes]:
    """Each entry's indented text for catalog.json: from catalog.json as it is, or from
    the spool; closes the spool."""
    try:
        for svc, where in zip(catalog.services, spooled):
            data = splice.old(svc, "entry") if where is None else spool.read(*where)
            if data is None:  # catalog.json as it is fell short: make the entry again
                data = jsonstream.dumps(catalog_entry(svc, flow).to_json(), 2)
            yield splice.tagged(svc, "entry", data)
    finally:
        spool.close()


def _doc_assets(
    env: jinja2.Environment, catalog: ir.Catalog, reuse: Reuse | None
) -> Iterator[tuple[str, Chunks]]:
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
        splice = Splice(reuse, f"docs/{path}")
        entries = (
            splice.member(svc, "search", functools.partial(doc_site.search_entry, svc))
            for svc in catalog.services
        )
        chunks = aggregates.spliced(frame, "[]", jsonstream.Elements(entries))
        yield f"docs/{path}", splice.record(chunks)
    else:
        yield f"docs/{path}", _render(
            template,
            search_data_global=doc_site.SEARCH_GLOBAL,
            entries=doc_site.search_data(catalog),
        )

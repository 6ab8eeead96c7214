"""The FastAPI app that serves a compiled ``generated/`` folder.

Routes: ``POST /api/tools/<id>`` and its legacy alias for every route
module (one parameterized route, the service looked up in a dict: thousands of
services cost no route matching at start or per request); ``POST /api/payments`` and ``GET /api/payments/{paymentId}``; ``GET /api/catalog`` and
``GET /api/catalog/search``; the doc pages at ``/tools/<id>`` and the index
at ``/``, with what their relative links reach: ``/assets/*`` (style, script, search
data) and ``/catalog/*`` (the catalog JSON files, as on disk); ``/openapi.json`` is the
compiled ``generated/openapi.json`` (its Swagger UI at ``/docs``). The paid call itself
is :class:`~s402gen.runtime.service.ServiceRuntime`'s.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.routing import Route

from . import contract, jsonio, protocol, x402_contract
from .auth import (
    AUTHORIZATION_HEADER,
    BEARER,
    UNAUTHORIZED,
    AuthRefused,
    ClientAuth,
    HostCheckMiddleware,
    HostPolicy,
    shown_to,
)
from .generated import Generated, GeneratedError, load_generated
from .ledger_store import LedgerBusy
from .payments import Ledger, PaymentProvider
from .recent import Recent
from .search import DEFAULT_LIMIT, LOOP_STATEMENTS, MAX_QUERY_CHARS, CatalogSearch
from .search_warm import warm_in_background
from .service import PaymentNeeded, ServiceRuntime, UnknownService, UpstreamFailed
from .spec import RouteSpec
from .upstream import (
    AlibabaCloudUpstream,
    Credentials,
    Upstream,
    UpstreamAnswer,
    UpstreamError,
)
from .validation import RequestError, schema_validator

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: image data travels as URLs, not in the body
#: Bodies up to this size (bytes) are parsed, and unpaid ones validated, on the event loop
#: (a thread hop costs more than their work); bigger ones go to the thread pool.
INLINE_BODY_BYTES = 4096
#: Bigger unpaid bodies are validated in a worker thread, one at a time in the process:
#: that work is pure Python and threads share one GIL, so checking several at once gains
#: nothing, and each more CPU-bound thread lengthens every wait of the threads doing I/O
#: (eight 0.94 MB bodies checked at once kept a first search waiting ~5 s; one at a time
#: ~0.1-0.6 s).
BIG_BODY_CHECKS = anyio.CapacityLimiter(1)
JSON = "application/json"
#: Searches that need SQLite or the disk (a new query's first statements and entries) run in
#: at most this many worker threads at once (``/api/catalog/search`` and MCP's
#: ``search_services`` together). Under a busy event loop each thread gets the
#: GIL in turns with the loop: one thread drained the first ~50 such searches of
#: serve_bench's "every query new" load in ~0.5 s (p99 ~500-690 ms), 8 in ~0.1 s (p99
#: ~40-100 ms); anyio's 40 let them crowd the loop (p99 ~270 ms).
SEARCH_THREADS = 8
#: How long shutdown waits for the search's read-ahead to stop, in seconds.
WARM_JOIN_SECONDS = 5.0


class _BodyError(Exception):
    def __init__(self, status: int, error: str):
        super().__init__(error)
        self.status = status
        self.error = error


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonio.dumps(body), status_code=status, media_type=JSON, headers=headers)


async def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object; raises ``_BodyError`` (415, 413 or 400).

    A body over :data:`INLINE_BODY_BYTES` is parsed in the thread pool, off the
    event loop; its size in bytes is left in ``request.state.body_bytes``.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON and not media_type.endswith("+json"):
        raise _BodyError(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _BodyError(413, f"request body is larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _BodyError(413, f"request body is larger than {max_bytes} bytes")
    request.state.body_bytes = len(body)
    try:  # integers exact: orjson read 2**70 as a float
        if len(body) <= INLINE_BODY_BYTES:
            value = jsonio.loads(body)
        else:
            value = await run_in_threadpool(jsonio.loads, body)
    except jsonio.JsonError:
        raise _BodyError(400, "request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise _BodyError(400, "request body must be a JSON object")
    return value


class _MissingCredentials:
    """Upstream stand-in when no AccessKey is configured: every call fails clearly."""

    def call(self, spec: RouteSpec, arguments: Any) -> UpstreamAnswer:
        raise UpstreamError(
            "MissingCredentials",
            "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        )


def default_upstream() -> Upstream:
    """The real Alibaba Cloud upstream with credentials from the environment, if set."""
    try:
        return AlibabaCloudUpstream(Credentials.from_environment())
    except KeyError:
        return _MissingCredentials()


async def _unauthorized(request: Request, exc: Exception) -> Response:
    """401 with the failure text and the scheme to use (RFC 6750): the answer to an
    :class:`AuthRefused` raised by any route."""
    return _json(UNAUTHORIZED, {"error": str(exc)}, {"WWW-Authenticate": BEARER})


def _client(auth: ClientAuth, request: Request) -> str | None:
    """The calling API key's id (``None``: anonymous); raises :class:`AuthRefused`."""
    return auth.client(request.headers.get(AUTHORIZATION_HEADER))


def create_app(
    generated_dir: str | Path | Generated = "generated",
    *,
    ledger: Ledger | None = None,
    upstream: Upstream | None = None,
    provider: PaymentProvider | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    host_policy: HostPolicy | None = None,
    auth: ClientAuth | None = None,
    x402: Any = None,
    mcp_discovery: bool = False,
    warm_search: bool = True,
) -> FastAPI:
    """A FastAPI app serving ``generated_dir`` (a folder, or one already loaded with
    :func:`~s402gen.runtime.generated.load_generated`), with the MCP server at ``/mcp``.

    ``ledger`` defaults to an in-memory one, ``upstream`` to Alibaba Cloud
    with credentials from the environment, ``provider`` to the dev
    provider (payments are paid on creation). ``host_policy`` is the one
    DNS-rebinding policy of the REST API and ``/mcp`` (default: loopback names
    on any port). ``auth`` says who calls (default: no API keys, everyone
    anonymous; ``s402gen serve`` passes the ledger's key store). Raises ``GeneratedError``
    when the folder is not a complete build. ``x402`` (an
    :class:`~s402gen.runtime.x402.X402Gateway`) turns on x402 payments: the
    402 adds ``PAYMENT-REQUIRED``, tool routes take ``PAYMENT-SIGNATURE``, and
    payments are created pending and paid at ``POST /api/payments/{paymentId}/x402``.
    ``mcp_discovery`` serves MCP's discovery mode (a search tool and a call tool,
    :mod:`~s402gen.runtime.mcp_discovery`) instead of one tool a service.
    ``warm_search``: once the app's lifespan starts, a thread reads ahead what the
    search's new queries need (:meth:`~s402gen.runtime.search.CatalogSearch.warm`;
    ``app.state.search_warming`` is that thread, ``None`` without it).
    """
    generated = (
        generated_dir if isinstance(generated_dir, Generated) else load_generated(generated_dir)
    )
    runtime = ServiceRuntime(
        generated.specs,
        ledger=ledger or Ledger(),
        upstream=upstream or default_upstream(),
        provider=provider,
        x402=x402,
    )
    host_policy = host_policy or HostPolicy.loopback()
    auth = auth or ClientAuth()
    search = generated.search()
    searches = anyio.CapacityLimiter(SEARCH_THREADS)  # the REST search's and MCP's alike

    def mcp_server() -> Any:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from .mcp_server import build_mcp_server, load_tools

        server = build_mcp_server(
            load_tools(generated.root),
            runtime,
            auth=auth,
            search=search if mcp_discovery else None,
            search_threads=searches,
        )
        return StreamableHTTPSessionManager(
            app=server, stateless=True, security_settings=host_policy.mcp_settings()
        )

    mcp = _LazyMCP(mcp_server)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.running():
            # what new queries need, read ahead once serving: start is not delayed
            warming, stop = warm_in_background(search) if warm_search else (None, None)
            app.state.search_warming = warming
            try:
                yield
            finally:
                if warming is not None and stop is not None:
                    stop.set()  # seen between two statements or entries (milliseconds); a
                    # read that hangs (a network disk) is not waited for: a daemon thread
                    await anyio.to_thread.run_sync(warming.join, WARM_JOIN_SECONDS)

    openapi = generated.root / "openapi.json"  # the compiled document replaces FastAPI's own
    if not openapi.is_file():
        raise GeneratedError(f"{generated.root} is not a complete s402gen output: no {openapi}")
    app = FastAPI(
        title="Server402", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )
    app.add_middleware(HostCheckMiddleware, policy=host_policy)  # REST and /mcp alike
    app.router.routes.append(Route("/mcp", endpoint=mcp))
    app.state.runtime = runtime
    app.state.auth = auth
    app.state.generated = generated
    _add_tool_routes(app, runtime, generated.specs, max_body_bytes, auth)
    _add_payment_routes(app, runtime, max_body_bytes, auth)
    _add_catalog_routes(app, runtime, generated, search, searches)
    _add_openapi_routes(app, openapi)
    app.add_exception_handler(AuthRefused, _unauthorized)  # a key refused, in any route
    app.add_exception_handler(LedgerBusy, _ledger_busy)  # 503, nothing spent
    return app


class _LazyMCP:
    """``/mcp``'s ASGI app. The MCP server is made on the first request, in a thread, by
    ``make()`` (a ``StreamableHTTPSessionManager``: importing the mcp SDK costs ~0.7 s of
    start, which an app that never sees MCP does not pay), and its session manager then runs
    in the task group of the app's lifespan (:meth:`running`) until shutdown."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._app: Any = None
        self._group: Any = None
        self._lock: anyio.Lock | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The app's lifespan: the task group the session manager will run in."""
        self._lock = anyio.Lock()
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                group.cancel_scope.cancel()
                self._group = self._app = None  # a session manager runs once

    async def _start(self) -> None:
        if self._group is None or self._lock is None:
            raise RuntimeError("/mcp needs the app's lifespan (run it with uvicorn)")
        async with self._lock:
            if self._app is not None:
                return
            sessions = await anyio.to_thread.run_sync(self._make)

            async def run(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
                async with sessions.run():  # the session manager needs its task group
                    task_status.started()
                    await anyio.sleep_forever()

            await self._group.start(run)
            from mcp.server.streamable_http_manager import StreamableHTTPASGIApp

            self._app = StreamableHTTPASGIApp(sessions)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            await self._start()
        await self._app(scope, receive, send)


async def _ledger_busy(request: Request, exc: Exception) -> Response:
    """503 with ``Retry-After`` when the ledger stays locked past its busy timeout (another
    process holds it): the contract's error answer, one log line, no traceback."""
    logger.warning(
        "payment ledger unavailable for %s %s: %s", request.method, request.url.path, exc
    )
    headers = {"Retry-After": str(protocol.RETRY_AFTER_SECONDS)}
    return _json(503, contract.ErrorAnswer(error=protocol.LEDGER_BUSY).to_json(), headers)


def _add_openapi_routes(app: FastAPI, openapi: Path) -> None:
    async def openapi_json() -> Response:
        return FileResponse(openapi, media_type=JSON)

    async def swagger_ui() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Server402 API")

    app.add_api_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)


#: The path every generated endpoint and legacy endpoint has (``/api/tools/<one segment>``).
TOOL_ROUTE = "/api/tools/{service_id}"
_NOT_FOUND = {"detail": "Not Found"}  # Starlette's own 404 body, for an unknown service


def _add_tool_routes(
    app: FastAPI,
    runtime: ServiceRuntime,
    specs: tuple[RouteSpec, ...],
    max_bytes: int,
    auth: ClientAuth,
) -> None:
    """One ``POST`` route for every service's endpoint and legacy endpoint; a spec whose
    endpoint does not fit :data:`TOOL_ROUTE` gets a route of its own."""
    prefix = TOOL_ROUTE.split("{")[0]
    by_path: dict[str, RouteSpec] = {}
    for spec in specs:
        for path in (spec.endpoint, spec.legacy_endpoint):
            rest = path.removeprefix(prefix)
            if path.startswith(prefix) and rest and "/" not in rest:
                by_path.setdefault(path, spec)
            else:
                app.add_api_route(
                    path, _tool_endpoint(runtime, spec, max_bytes, auth), methods=["POST"]
                )

    endpoints: dict[str, Any] = {}  # service id -> its call_tool, made on first use

    async def call_any_tool(service_id: str, request: Request) -> Response:
        spec = by_path.get(prefix + service_id)
        if spec is None:
            return _json(404, _NOT_FOUND)
        call_tool = endpoints.get(spec.service_id)
        if call_tool is None:
            call_tool = endpoints[spec.service_id] = _tool_endpoint(runtime, spec, max_bytes, auth)
        return await call_tool(request)

    app.add_api_route(TOOL_ROUTE, call_any_tool, methods=["POST"], name="call_tool")


def _tool_endpoint(
    runtime: ServiceRuntime, spec: RouteSpec, max_bytes: int, auth: ClientAuth
) -> Any:
    """The endpoint of one service's tool calls: 200, 400, 402, 413, 415 or 502."""

    async def call_tool(request: Request) -> Response:
        try:
            client_id = _client(auth, request)
            body = await read_json_object(request, max_bytes)
            token = request.headers.get(protocol.PAYMENT_HEADER.lower())
            signature = request.headers.get(x402_contract.PAYMENT_SIGNATURE_HEADER.lower())
            if signature and not token:  # verify, settle, call: all blocking
                auth.check_create(spec, client_id)  # an x402 call creates a payment too
                paid = await run_in_threadpool(runtime.call_paid, spec, body, signature, client_id)
                return _json(200, paid.envelope.to_json(), _paid_headers(paid))
            if token:  # the ledger and the upstream block: off the event loop
                envelope = await run_in_threadpool(runtime.call, spec, body, token, client_id)
            elif request.state.body_bytes > INLINE_BODY_BYTES:  # no request stalls another
                envelope = await anyio.to_thread.run_sync(
                    runtime.call, spec, body, None, client_id, limiter=BIG_BODY_CHECKS
                )
            else:  # a small unpaid body: a few ms at most to validate, no ledger, no upstream
                envelope = runtime.call(spec, body, None, client_id)
        except _BodyError as exc:
            return _json(exc.status, {"error": exc.error})
        except RequestError as exc:
            return _json(400, {"error": str(exc)})
        except PaymentNeeded as exc:
            return _json(402, exc.answer.to_json(), _required_headers(runtime, spec, request, exc))
        except UpstreamFailed as exc:
            # settled before the upstream failed: the paid token retries for free
            headers = {protocol.PAYMENT_HEADER: exc.payment.token} if exc.payment else None
            return _json(502, exc.answer().to_json(), headers)
        return _json(200, envelope.to_json())

    return call_tool


_PAYMENT_HEADERS = {protocol.REQUIRED_HEADER: "true"}


def _resource_url(request: Request) -> str:
    return str(request.url.replace(query=None, fragment=None))


def _required_headers(
    runtime: ServiceRuntime, spec: RouteSpec, request: Request, exc: PaymentNeeded
) -> dict[str, str]:
    """``X-Payment-Required``, plus x402's ``PAYMENT-REQUIRED`` when the service offers x402."""
    if not runtime.x402_offered(spec):
        return _PAYMENT_HEADERS
    error = exc.x402_error or exc.answer.error
    offer = runtime.x402.required_header(spec, _resource_url(request), error)
    return _PAYMENT_HEADERS | {x402_contract.PAYMENT_REQUIRED_HEADER: offer}


def _paid_headers(paid: Any) -> dict[str, str]:
    """``PAYMENT-RESPONSE``, and ``X-Payment-Token`` when the payment has calls left."""
    headers = {x402_contract.PAYMENT_RESPONSE_HEADER: paid.payment_response}
    if paid.payment.remaining_calls > 0:
        headers[protocol.PAYMENT_HEADER] = paid.payment.token
    return headers


def _add_payment_routes(
    app: FastAPI, runtime: ServiceRuntime, max_bytes: int, auth: ClientAuth
) -> None:
    body_schema = contract.wire_schema(contract.CreatePayment)
    body_validator = schema_validator(body_schema)

    async def create_payment(request: Request) -> Response:
        try:
            client_id = _client(auth, request)
            body = await read_json_object(request, max_bytes)
        except _BodyError as exc:
            return _json(exc.status, {"error": exc.error})
        error = await run_in_threadpool(lambda: next(iter(body_validator.iter_errors(body)), None))
        if error is not None:
            return _json(400, {"error": f"invalid payment request: {error.message}"})
        try:
            auth.check_create(runtime.spec(body["serviceId"]), client_id)
            payment = await run_in_threadpool(
                runtime.create_payment, body["serviceId"], body.get("providerId"), client_id
            )
        except UnknownService:
            return _json(404, {"error": f"unknown service {body['serviceId']!r}"})
        except RequestError as exc:
            return _json(400, {"error": str(exc)})
        headers = None
        spec = runtime.spec(payment.service_id)
        if payment.status == "pending" and runtime.x402_offered(spec):
            url = str(request.url_for("pay_payment", paymentId=payment.payment_id))
            headers = {
                x402_contract.PAYMENT_REQUIRED_HEADER: runtime.x402.required_header(spec, url)
            }
        return _json(201, payment.to_json(), headers)

    async def pay_payment(paymentId: str, request: Request) -> Response:  # noqa: N803
        """Complete a pending payment with an x402 payment signature (settled at once)."""
        signature = request.headers.get(x402_contract.PAYMENT_SIGNATURE_HEADER.lower())
        client_id = _client(auth, request)
        payment = await run_in_threadpool(runtime.ledger.get, paymentId)
        if payment is None:
            return _json(404, {"error": f"unknown payment {paymentId!r}"})
        spec = runtime.spec(payment.service_id)
        try:
            if not signature:
                answer = contract.PaymentRequired(
                    error=protocol.FAILURES[0], payment=shown_to(payment, client_id)
                )
                raise PaymentNeeded(answer)
            paid = await run_in_threadpool(runtime.pay_payment, paymentId, signature)
        except PaymentNeeded as exc:
            headers = _required_headers(runtime, spec, request, exc)
            return _json(402, exc.answer.to_json(), headers)
        assert paid is not None
        record, settled = paid
        shown = shown_to(record, client_id).to_json()
        return _json(200, shown, {x402_contract.PAYMENT_RESPONSE_HEADER: settled})

    async def verify_payment(paymentId: str, request: Request) -> Response:  # noqa: N803
        client_id = _client(auth, request)
        payment = await run_in_threadpool(runtime.verify_payment, paymentId)
        if payment is None:
            return _json(404, {"error": f"unknown payment {paymentId!r}"})
        return _json(200, shown_to(payment, client_id).to_json())  # a token only to its key

    # the routes' OpenAPI description is the compiled generated/openapi.json (s402gen.openapi)
    app.add_api_route(protocol.CREATE_PAYMENT_URL, create_payment, methods=["POST"])
    app.add_api_route(
        x402_contract.PAY_PAYMENT_URL, pay_payment, methods=["POST"], name="pay_payment"
    )
    app.add_api_route(protocol.VERIFY_PAYMENT_URL, verify_payment, methods=["GET"])


#: Query strings remembered (each with its search's key) by :class:`_EarlySearchAnswers`.
KEPT_QUERY_STRINGS = 4096
#: Longer query strings are not remembered.
KEPT_QUERY_STRING_BYTES = 512
#: A ``limit`` the fast path reads itself; any other goes to FastAPI, which validates it.
_PLAIN_LIMIT = re.compile(r"[0-9]{1,6}")


class _EarlySearchAnswers:
    """The search route's ASGI app: a ``GET`` whose answer needs neither SQLite nor the
    disk gets its bytes at once, before FastAPI parses it: a query string answered before
    whose answer the search keeps unchanged (:meth:`CatalogSearch.cached_body`), or any
    search whose ranking or statements, and entries, are kept (``answer_body(wait=False)``),
    running up to :data:`~s402gen.runtime.search.LOOP_STATEMENTS` index lookups itself.
    Anything else goes to FastAPI's handler (``app``), which validates, answers (SQLite and
    the disk in a thread) and remembers the query string's search key."""

    _HEADERS = [(b"content-type", JSON.encode())]

    def __init__(self, app: Any, search: CatalogSearch, stats: Any):
        self.app = app
        self.search = search
        self.stats = stats
        self.keys = Recent(KEPT_QUERY_STRINGS)

    def remember(self, query_string: bytes, key: Any) -> None:
        """The search of ``query_string`` has ``key`` (:meth:`CatalogSearch.key`)."""
        if len(query_string) <= KEPT_QUERY_STRING_BYTES:
            self.keys.put(query_string, key)

    def _answer(self, query_string: bytes) -> bytes | None:
        version = self.stats.version
        key = self.keys.get(query_string)
        if key is not None:
            body = self.search.cached_body(key, True, version)
            if body is not None:
                return body
        else:  # read as FastAPI reads it (the last of repeated names); a limit it must check
            params = QueryParams(query_string)
            limit, query = params.get("limit"), params.get("q", "")
            if limit is not None and not _PLAIN_LIMIT.fullmatch(limit):
                return None
            if len(query) > MAX_QUERY_CHARS:
                return None  # FastAPI refuses it
            limit_value = DEFAULT_LIMIT if limit is None else int(limit)
            key = self.search.key(query, limit_value, params.get("category", ""))
        query, limit_value, category = key
        body = self.search.answer_body(
            query,
            limit_value,
            self.stats.quality,
            category,
            version=version,
            wait=False,
            statements=LOOP_STATEMENTS,
        )
        if body is not None:
            self.remember(query_string, key)
        return body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = self._answer(scope["query_string"]) if scope["method"] == "GET" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        length = (b"content-length", str(len(body)).encode())
        await send(
            {"type": "http.response.start", "status": 200, "headers": [length, *self._HEADERS]}
        )
        await send({"type": "http.response.body", "body": body})


def _add_catalog_routes(
    app: FastAPI,
    runtime: ServiceRuntime,
    generated: Generated,
    search: CatalogSearch,
    searches: anyio.CapacityLimiter,
) -> None:
    app.state.search, app.state.search_threads = search, searches

    async def catalog() -> Response:
        return FileResponse(generated.catalog_file, media_type=JSON)

    async def catalog_search(
        request: Request,
        q: str = Query("", max_length=MAX_QUERY_CHARS),
        limit: int = DEFAULT_LIMIT,
        category: str = "",
    ) -> Response:
        quality, version = runtime.stats.quality, runtime.stats.version
        # what needs neither SQLite nor the disk was answered before FastAPI parsed it
        body = await anyio.to_thread.run_sync(
            functools.partial(search.answer_body, version=version),
            q, limit, quality, category, limiter=searches,
        )  # fmt: skip
        fast.remember(request.scope["query_string"], search.key(q, limit, category))
        return Response(body, media_type=JSON)

    async def index() -> Response:
        return FileResponse(generated.index_page, media_type="text/html")

    async def doc_page(service_id: str) -> Response:
        page = generated.doc_page(service_id.removesuffix(".html"))
        if page is None:
            return _json(404, {"error": f"unknown service {service_id!r}"})
        return FileResponse(page, media_type="text/html")

    app.add_api_route("/api/catalog", catalog, methods=["GET"])
    app.add_api_route("/api/catalog/search", catalog_search, methods=["GET"])
    route = app.router.routes[-1]
    fast = _EarlySearchAnswers(route.app, search, runtime.stats)
    route.app = fast  # a search needing neither SQLite nor the disk: before FastAPI parses it
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/index.html", index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/tools/{service_id}", doc_page, methods=["GET"], include_in_schema=False)
    # the pages link ../catalog/... and assets/... relative to generated/docs/: served from
    # /, those resolve to /catalog/... and /assets/..., mapped here onto the same files
    app.mount("/assets", StaticFiles(directory=generated.root / "docs" / "assets"), "doc-assets")
    app.mount("/catalog", StaticFiles(directory=generated.root / "catalog"), "catalog-files")

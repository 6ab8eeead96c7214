"""The FastAPI app that serves a compiled ``generated/`` folder.

Routes: ``POST /api/tools/<id>`` and its legacy alias (deprecated in the
OpenAPI document) for every route module; ``POST /api/payments`` and
``GET /api/payments/{paymentId}``; ``GET /api/catalog`` and
``GET /api/catalog/search``; the doc pages at ``/tools/<id>`` and the index
at ``/``, with what their relative links reach: ``/assets/*`` (style, script, search
data) and ``/catalog/*`` (the catalog JSON files, as on disk). The paid call itself is :class:`~s402gen.runtime.service.ServiceRuntime`'s.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from . import contract, protocol
from .generated import Generated, load_generated
from .mcp_server import build_mcp_server, load_tools
from .payments import Ledger, PaymentProvider
from .search import DEFAULT_LIMIT, CatalogSearch
from .service import PaymentNeeded, ServiceRuntime, UnknownService, UpstreamFailed
from .spec import RouteSpec
from .upstream import AlibabaCloudUpstream, Credentials, Upstream, UpstreamError, UpstreamResult
from .validation import RequestError, schema_validator

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: image data travels as URLs, not in the body
CLIENT_HEADER = "x-client-id"
JSON = "application/json"


class _BodyError(Exception):
    def __init__(self, status: int, error: str):
        super().__init__(error)
        self.status = status
        self.error = error


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


async def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object; raises ``_BodyError`` (415, 413 or 400)."""
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
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _BodyError(400, "request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise _BodyError(400, "request body must be a JSON object")
    return value


class _MissingCredentials:
    """Upstream stand-in when no AccessKey is configured: every call fails clearly."""

    def call(self, spec: RouteSpec, arguments: Any) -> UpstreamResult:
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


LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")


def create_app(
    generated_dir: str | Path = "generated",
    *,
    ledger: Ledger | None = None,
    upstream: Upstream | None = None,
    provider: PaymentProvider | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    mcp_allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
) -> FastAPI:
    """A FastAPI app serving ``generated_dir``, with the MCP server at ``/mcp``.

    ``ledger`` defaults to an in-memory one, ``upstream`` to Alibaba Cloud
    with credentials from the environment, ``provider`` to the dev
    provider (payments are paid on creation). ``mcp_allowed_hosts`` are the
    ``Host`` headers ``/mcp`` accepts (DNS-rebinding protection; ``None``
    accepts any, for a server behind a proxy). Raises ``GeneratedError``
    when the folder is not a complete build.
    """
    generated = load_generated(generated_dir)
    runtime = ServiceRuntime(
        generated.specs,
        ledger=ledger or Ledger(),
        upstream=upstream or default_upstream(),
        provider=provider,
    )
    mcp_server = build_mcp_server(load_tools(generated.root), runtime)
    security = None
    if mcp_allowed_hosts is not None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(mcp_allowed_hosts),
            allowed_origins=[f"http://{host}" for host in mcp_allowed_hosts],
        )
    sessions = StreamableHTTPSessionManager(
        app=mcp_server, stateless=True, security_settings=security
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sessions.run():  # the MCP session manager needs its task group
            yield

    app = FastAPI(
        title="Server402",
        description="Paid API services, each sold per call behind an HTTP 402 payment flow.",
        version=generated.catalog.generated_at or "0",
        lifespan=lifespan,
    )
    app.router.routes.append(Route("/mcp", endpoint=StreamableHTTPASGIApp(sessions)))
    app.state.runtime = runtime
    app.state.generated = generated
    for spec in generated.specs:
        _add_tool_routes(app, runtime, spec, max_body_bytes)
    _add_payment_routes(app, runtime, max_body_bytes)
    _add_catalog_routes(app, runtime, generated)
    return app


def _add_tool_routes(
    app: FastAPI, runtime: ServiceRuntime, spec: RouteSpec, max_bytes: int
) -> None:
    async def call_tool(request: Request) -> Response:
        try:
            body = await read_json_object(request, max_bytes)
            token = request.headers.get(protocol.PAYMENT_HEADER.lower())
            client_id = request.headers.get(CLIENT_HEADER)
            if token:  # the ledger and the upstream block: off the event loop
                envelope = await run_in_threadpool(runtime.call, spec, body, token, client_id)
            else:  # the 402 path touches neither, and stays on the loop
                envelope = runtime.call(spec, body, None, client_id)
        except _BodyError as exc:
            return _json(exc.status, {"error": exc.error})
        except RequestError as exc:
            return _json(400, {"error": str(exc)})
        except PaymentNeeded as exc:
            return _json(402, exc.answer.to_json(), _PAYMENT_HEADERS)
        except UpstreamFailed as exc:
            body = {"error": "upstream error", "code": exc.code, "message": exc.message}
            return _json(502, body | {"requestId": exc.request_id})
        return _json(200, envelope.to_json())

    request_body = {
        "required": True,
        "content": {JSON: {"schema": spec.input_schema}},
    }
    responses = {
        "400": {"description": "Invalid request: the catalog's error text in `error`."},
        "402": {"description": "Payment required: `{error, payment}`; pay and retry."},
        "502": {"description": "Upstream error; the call was given back to the token."},
    }
    for path, deprecated in ((spec.endpoint, False), (spec.legacy_endpoint, True)):
        app.add_api_route(
            path,
            call_tool,
            methods=["POST"],
            name=f"{spec.tool_name}{'_legacy' if deprecated else ''}",
            summary=spec.service_id,
            deprecated=deprecated,
            tags=["tools"],
            openapi_extra={"requestBody": request_body, "responses": responses},
        )


_PAYMENT_HEADERS = {"X-Payment-Required": "true"}


def _add_payment_routes(app: FastAPI, runtime: ServiceRuntime, max_bytes: int) -> None:
    body_schema = contract.wire_schema(contract.CreatePayment)
    body_validator = schema_validator(body_schema)

    async def create_payment(request: Request) -> Response:
        try:
            body = await read_json_object(request, max_bytes)
        except _BodyError as exc:
            return _json(exc.status, {"error": exc.error})
        error = next(iter(body_validator.iter_errors(body)), None)
        if error is not None:
            return _json(400, {"error": f"invalid payment request: {error.message}"})
        try:
            payment = runtime.create_payment(
                body["serviceId"], body.get("providerId"), request.headers.get(CLIENT_HEADER)
            )
        except UnknownService:
            return _json(404, {"error": f"unknown service {body['serviceId']!r}"})
        except RequestError as exc:
            return _json(400, {"error": str(exc)})
        return _json(201, payment.to_json())

    async def verify_payment(paymentId: str) -> Response:  # noqa: N803 - the URL's name
        payment = runtime.verify_payment(paymentId)
        if payment is None:
            return _json(404, {"error": f"unknown payment {paymentId!r}"})
        return _json(200, payment.to_json())

    record = contract.wire_schema(contract.PaymentRecord)
    app.add_api_route(
        protocol.CREATE_PAYMENT_URL,
        create_payment,
        methods=["POST"],
        tags=["payments"],
        status_code=201,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": body_schema}},
            },
            "responses": {"201": {"content": {JSON: {"schema": record}}}},
        },
    )
    app.add_api_route(
        protocol.VERIFY_PAYMENT_URL,
        verify_payment,
        methods=["GET"],
        tags=["payments"],
        openapi_extra={"responses": {"200": {"content": {JSON: {"schema": record}}}}},
    )


def _add_catalog_routes(app: FastAPI, runtime: ServiceRuntime, generated: Generated) -> None:
    search = CatalogSearch(generated.catalog)

    async def catalog() -> Response:
        return Response(generated.catalog_bytes, media_type=JSON)

    async def catalog_search(q: str = "", limit: int = DEFAULT_LIMIT) -> Response:
        return _json(200, search.search(q, limit, runtime.stats.quality).to_json())

    async def index() -> Response:
        return FileResponse(generated.index_page, media_type="text/html")

    async def doc_page(service_id: str) -> Response:
        page = generated.doc_page(service_id.removesuffix(".html"))
        if page is None:
            return _json(404, {"error": f"unknown service {service_id!r}"})
        return FileResponse(page, media_type="text/html")

    app.add_api_route("/api/catalog", catalog, methods=["GET"], tags=["catalog"])
    app.add_api_route("/api/catalog/search", catalog_search, methods=["GET"], tags=["catalog"])
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/index.html", index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/tools/{service_id}", doc_page, methods=["GET"], include_in_schema=False)
    # the pages link ../catalog/... and assets/... relative to generated/docs/: served from
    # /, those resolve to /catalog/... and /assets/..., mapped here onto the same files
    app.mount("/assets", StaticFiles(directory=generated.root / "docs" / "assets"), "doc-assets")
    app.mount("/catalog", StaticFiles(directory=generated.root / "catalog"), "catalog-files")

"""The upstream emulator: HTTP servers on 127.0.0.1 that answer like the upstream APIs.

For tests and ``s402gen serve --upstream emulator``. It serves the
services of the generated route specs, keyed on (product, version,
action): one listener per product (:attr:`Emulator.endpoints`), since an
RPC request names its action and version but its product only by the host
it goes to. It accepts what Alibaba Cloud's OpenAPI client sends for an
``aliyun-rpc`` call (a form-encoded POST to ``/`` with ``x-acs-action``,
``x-acs-version`` and an ``ACS3-HMAC-SHA256`` ``Authorization`` header),
and refuses:

- a signature that is not right: it is recomputed from the signed headers,
  the query and the body's SHA-256 with the test credentials' secret, by
  ``alibabacloud-tea-openapi``'s own ``Utils.get_authorization`` (403);
- an unknown (product, version, action), or another HTTP method than the
  action's (400);
- a parameter in a wire format the official SDK would not send for that
  action: each parameter must come in the style the spec's
  ``upstream.wire`` names (the catalog's, checked against the SDK by
  ``validate --upstream``), else the protocol's default ``flat`` (400);
- arguments the service's input schema refuses (400).

It answers Alibaba-shaped JSON: ``{"RequestId", "Data"}`` on success,
``{"RequestId", "Code", "Message"}`` with HTTP 400 or 403 on error. A
parameter value containing :data:`FAIL_MARKER` makes it answer an upstream
error (HTTP 400), one containing :data:`FAIL_IN_200_MARKER` an error inside
an HTTP 200, so tests can exercise both failure paths. Those name the
caller's input (``InvalidImage.*``); :data:`FAULT_MARKER` makes it answer an
upstream fault (HTTP 503), :data:`LIST_MARKER` a JSON list instead of an
object, :data:`HUGE_MARKER` a body one byte over the gateway's bound
(``upstream.MAX_UPSTREAM_BODY_BYTES``), and :data:`SLOW_MARKER` wait
:data:`SLOW_SECONDS` before it answers (the call is recorded first: it ran).
It never fetches the URLs it is given.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, Iterable
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from .spec import RouteSpec
from .upstream import MAX_UPSTREAM_BODY_BYTES, Credentials
from .upstreams import load as load_protocol
from .validation import schema_validator

FAIL_MARKER = "emulator-upstream-error"
FAIL_IN_200_MARKER = "emulator-error-in-200"
FAULT_MARKER = "emulator-upstream-fault"
LIST_MARKER = "emulator-answer-list"
HUGE_MARKER = "emulator-answer-huge"
SLOW_MARKER = "emulator-answer-slow"
SLOW_SECONDS = 2.0

#: The AccessKey pair the emulator accepts unless told otherwise.
TEST_CREDENTIALS = Credentials("test-key", "test-secret")

SIGNATURE_ALGORITHM = "ACS3-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    rf"^{SIGNATURE_ALGORITHM} Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)$"
)
#: Headers a request must sign, so that none of them can be changed in transit.
MUST_SIGN = frozenset(
    {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"}
    | {"x-acs-content-sha256"}
)


@dataclass
class Call:
    """One request the emulator accepted: product, action, raw form and typed arguments."""

    action: str
    version: str
    parameters: dict[str, str]
    product: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class Emulator:
    """Running emulator servers, one per product; ``calls`` what they served."""

    servers: dict[str, ThreadingHTTPServer]
    threads: list[threading.Thread]
    calls: list[Call] = field(default_factory=list)

    @property
    def endpoints(self) -> dict[str, str]:
        """``{product: "127.0.0.1:PORT"}``, to point the OpenAPI client at (protocol http)."""
        return {
            product: "%s:%s" % server.server_address[:2] for product, server in self.servers.items()
        }

    @property
    def endpoint(self) -> str:
        """``host:port`` of the first product (the only one of a one-product catalog)."""
        return next(iter(self.endpoints.values()))

    def stop(self) -> None:
        """Shut every server down and wait for its thread."""
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)


class Refused(Exception):
    """A request the emulator refuses: HTTP ``status``, error ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def verify_signature(
    method: str, target: str, headers: dict[str, str], body: bytes, secrets: dict[str, str]
) -> None:
    """Check an ACS3-HMAC-SHA256 ``Authorization``; raises :class:`Refused`.

    ``headers`` have lower-case names; ``secrets`` maps AccessKey id to
    secret. The expected value is computed by the OpenAPI client's own
    ``Utils.get_authorization`` over the headers the request says it signed.
    """
    from alibabacloud_tea_openapi.utils import Utils

    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        raise Refused(
            403, "IncompleteSignature", f"the request is not {SIGNATURE_ALGORITHM}-signed"
        )
    key_id, signed, _ = match.groups()
    signed_names = signed.split(";")
    if key_id not in secrets:
        raise Refused(403, "InvalidAccessKeyId.NotFound", f"unknown AccessKey id {key_id!r}")
    unsigned = sorted(MUST_SIGN - set(signed_names))
    if unsigned:
        raise Refused(403, "IncompleteSignature", f"headers not signed: {', '.join(unsigned)}")
    payload = hashlib.sha256(body).hexdigest()
    if headers.get("x-acs-content-sha256") != payload:
        raise Refused(400, "SignatureDoesNotMatch", "x-acs-content-sha256 is not the body's")
    url = urlsplit(target)
    request = SimpleNamespace(
        method=method,
        pathname=unquote_plus(url.path) or "/",
        query=dict(parse_qsl(url.query, keep_blank_values=True)),
        headers={name: headers.get(name, "") for name in signed_names},
    )
    expected = Utils.get_authorization(
        request, SIGNATURE_ALGORITHM, payload, key_id, secrets[key_id]
    )
    if not hmac.compare_digest(expected, headers["authorization"]):
        raise Refused(403, "SignatureDoesNotMatch", "the signature does not match")


def start_emulator(
    specs: Iterable[RouteSpec],
    port: int = 0,
    credentials: Iterable[Credentials] = (TEST_CREDENTIALS,),
) -> Emulator:
    """Start an emulator for ``specs`` on 127.0.0.1, one server thread per product.

    ``port`` is the first product's (0: a free one; the others always get
    free ones); ``credentials`` the AccessKey pairs whose signatures it accepts.
    """
    specs = tuple(specs)
    by_key = {(s.upstream.product, s.upstream.version, s.upstream.action): s for s in specs}
    validators = {key: schema_validator(spec.input_schema) for key, spec in by_key.items()}
    secrets = {c.access_key_id: c.access_key_secret for c in credentials}
    lock = threading.Lock()
    calls: list[Call] = []

    def answer(product: str, method: str, target: str, headers: dict[str, str], body: bytes):
        with lock:
            request_id = f"emulator-{len(calls) + 1:08d}"
        try:
            verify_signature(method, target, headers, body, secrets)
            key = (product, headers.get("x-acs-version", ""), headers.get("x-acs-action", ""))
            if key not in by_key:
                raise Refused(400, "InvalidAction.NotFound", f"unknown action {key[2]!r}")
            spec = by_key[key]
            if method != spec.upstream.method:
                raise Refused(
                    400, "InvalidParameter", f"the SDK sends {key[2]} by {spec.upstream.method}"
                )
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            query = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
            typed = wire_arguments(spec, form, query)
            errors = sorted(validators[key].iter_errors(typed), key=lambda e: list(e.path))
            if errors:
                raise Refused(400, "InvalidParameter", errors[0].message)
        except Refused as refused:
            return refused.status, _error(refused.code, refused.message, request_id)
        values = [*form.values(), *query.values()]
        if any(FAIL_MARKER in value for value in values):
            return 400, _error(
                "InvalidImage.Download", "the image cannot be downloaded", request_id
            )
        if any(FAIL_IN_200_MARKER in value for value in values):
            return 200, _error("InvalidImage.Content", "no face in the image", request_id)
        if any(FAULT_MARKER in value for value in values):
            return 503, _error("ServiceUnavailable", "the service is busy", request_id)
        with lock:
            calls.append(Call(key[2], key[1], form, product, typed))
        if any(LIST_MARKER in value for value in values):
            return 200, [{"RequestId": request_id}]
        if any(HUGE_MARKER in value for value in values):
            return 200, {"RequestId": request_id, "Data": "x" * MAX_UPSTREAM_BODY_BYTES}
        if any(SLOW_MARKER in value for value in values):
            time.sleep(SLOW_SECONDS)
        return 200, {"RequestId": request_id, "Data": {"Action": key[2], "Parameters": form}}

    def handler(product: str) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # the headers and the body go out in two writes: with Nagle's algorithm the
            # body waited for the client's delayed ACK (~40 ms a call on Linux)
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                length = int(self.headers.get("content-length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = answer(
                    product, self.command, self.path, headers, self.rfile.read(length)
                )
                data = json.dumps(payload).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json;charset=utf-8")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.close_connection = True

            do_GET = do_POST  # noqa: N815 - an SDK sends some actions by GET

            def log_message(self, format: str, *args: Any) -> None:  # quiet by default
                pass

        return Handler

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # socketserver's 5 drops connections under load (1 s SYN retries)

    servers: dict[str, ThreadingHTTPServer] = {}
    threads = []
    for product in dict.fromkeys(s.upstream.product for s in specs):
        servers[product] = Server(("127.0.0.1", port if not servers else 0), handler(product))
        threads.append(
            threading.Thread(
                target=servers[product].serve_forever,
                args=(0.05,),
                name=f"emulator-{product}",
                daemon=True,
            )
        )
        threads[-1].start()
    return Emulator(servers, threads, calls)


def _error(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"RequestId": request_id, "Code": code, "Message": message}


def wire_arguments(spec: RouteSpec, form: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
    """The typed arguments of a request, each parameter read in its wire style.

    Raises :class:`Refused` for a parameter sent another way than its style
    (the official SDK's), or a value that is not of its schema's type.
    """
    properties = spec.input_schema.get("properties", {})
    default = load_protocol(spec.upstream.protocol).default_wire
    typed: dict[str, Any] = {}
    for place, fields, other in (("body", form, "query"), ("query", query, "body")):
        for key in fields:
            name = key.split(".", 1)[0]
            if name not in properties:
                raise Refused(400, "InvalidParameter", f"unknown parameter {name}")
            if (spec.upstream.wire.get(name, default) == "query") != (place == "query"):
                style = spec.upstream.wire.get(name, default)
                raise Refused(
                    400, "InvalidParameter", f"{name} came in the {place}: the SDK sends it {style}"
                )
    for name, schema in properties.items():
        style = spec.upstream.wire.get(name, default)
        fields = query if style == "query" else form
        flat = {k: v for k, v in fields.items() if k.startswith(name + ".")}
        bare = fields.get(name)
        if bare is None and not flat:
            continue
        kind = schema.get("type")
        wrong = f"{name} is not sent as the SDK sends it ({style})"
        if style in ("flat", "query"):
            if kind in ("array", "object"):
                if bare is not None or not flat:
                    raise Refused(400, "InvalidParameter", wrong)
                value: Any = _unflatten(name, flat)
            elif flat:
                raise Refused(400, "InvalidParameter", wrong)
            else:
                value = bare
        else:
            if flat or bare is None:
                raise Refused(400, "InvalidParameter", wrong)
            value = _unshrink(style, name, bare, wrong)
        typed[name] = _coerce(value, schema, name)
    return typed


def _unshrink(style: str, name: str, text: str, wrong: str) -> Any:
    """The list an SDK shrink style made a string of."""
    if style == "json":
        try:
            value = json.loads(text)
        except ValueError:
            raise Refused(400, "InvalidParameter", wrong) from None
        if not isinstance(value, list):
            raise Refused(400, "InvalidParameter", wrong)
        return value
    if style == "simple":
        return text.split(",") if text else []
    if style == "repeatList":  # `Name.1=a&&Name.2=b`, each side quote_plus-encoded
        pairs = [part.split("=", 1) for part in text.split("&&") if part]
        if any(len(p) != 2 or not p[0].startswith(name + ".") for p in pairs):
            raise Refused(400, "InvalidParameter", wrong)
        return _unflatten(name, {unquote_plus(k): unquote_plus(v) for k, v in pairs})
    raise Refused(400, "InvalidParameter", wrong)


def _unflatten(name: str, flat: dict[str, str]) -> Any:
    """``{"Tasks.1.ImageURL": "u"}`` back to ``[{"ImageURL": "u"}]`` (1-based list indexes)."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root[name])


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        indexes = sorted(int(k) for k in node)
        if indexes != list(range(1, len(indexes) + 1)):
            raise Refused(400, "InvalidParameter", "list indexes must count from 1")
        return [_lists(node[str(i)]) for i in indexes]
    return {k: _lists(v) for k, v in node.items()}


def _coerce(value: Any, schema: dict[str, Any], name: str) -> Any:
    """Form strings back to the schema's types (the upstream does the same)."""
    kind = schema.get("type")
    try:
        if kind == "array" and isinstance(value, list):
            return [_coerce(v, schema.get("items", {}), name) for v in value]
        if kind == "object" and isinstance(value, dict):
            props = schema.get("properties", {})
            return {k: _coerce(v, props.get(k, {}), f"{name}.{k}") for k, v in value.items()}
        if not isinstance(value, str):
            return value
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return {"true": True, "false": False}[value.lower()]
    except (ValueError, KeyError):
        raise Refused(400, "InvalidParameter", f"{name} is not a valid {kind}") from None
    return value

"""A local facebody emulator: an HTTP server on 127.0.0.1 that answers like the upstream.

For tests and ``s402gen serve --upstream emulator``. It accepts what
Alibaba Cloud's OpenAPI client sends for an RPC call (a form-encoded POST
to ``/`` with ``x-acs-action``, ``x-acs-version`` and an ACS3-HMAC-SHA256
``Authorization`` header), checks the action and the parameters against
the service's published input schema, and answers facebody-shaped JSON:
``{"RequestId", "Data"}`` on success, ``{"RequestId", "Code", "Message"}``
with HTTP 400 or 403 on error. It checks that a signature is present, not
that it is right (it has no secret to check it with). A parameter value
containing :data:`FAIL_MARKER` makes it answer an upstream error, so tests
can exercise the failure path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import parse_qs

from .spec import RouteSpec
from .validation import schema_validator

FAIL_MARKER = "emulator-upstream-error"


@dataclass
class Call:
    """One request the emulator accepted: its action and form parameters."""

    action: str
    version: str
    parameters: dict[str, str]


@dataclass
class Emulator:
    """A running emulator: ``endpoint`` is ``127.0.0.1:PORT``; ``calls`` what it served."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    calls: list[Call] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """``host:port`` to point the OpenAPI client at (protocol http)."""
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _error(status: int, code: str, message: str, request_id: str) -> tuple[int, dict[str, Any]]:
    return status, {"RequestId": request_id, "Code": code, "Message": message}


def start_emulator(specs: Iterable[RouteSpec], port: int = 0) -> Emulator:
    """Start an emulator for ``specs`` on 127.0.0.1 (``port`` 0: a free one) in a thread."""
    by_action = {(spec.upstream.action, spec.upstream.version): spec for spec in specs}
    validators = {key: schema_validator(spec.input_schema) for key, spec in by_action.items()}
    lock = threading.Lock()
    calls: list[Call] = []

    def answer(headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        with lock:
            request_id = f"emulator-{len(calls) + 1:08d}"
        action = headers.get("x-acs-action", "")
        version = headers.get("x-acs-version", "")
        if not headers.get("authorization", "").startswith("ACS3-HMAC-SHA256 Credential="):
            return _error(403, "IncompleteSignature", "the request is not signed", request_id)
        key = (action, version)
        if key not in by_action:
            return _error(400, "InvalidAction.NotFound", f"unknown action {action!r}", request_id)
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        spec = by_action[key]
        typed, problem = _typed(spec, form)
        if problem is None:
            errors = sorted(validators[key].iter_errors(typed), key=lambda e: list(e.path))
            problem = errors[0].message if errors else None
        if problem is not None:
            return _error(400, "InvalidParameter", problem, request_id)
        if any(FAIL_MARKER in value for value in form.values()):
            return _error(
                400, "InvalidImage.Download", "the image cannot be downloaded", request_id
            )
        with lock:
            calls.append(Call(action, version, form))
        return 200, {"RequestId": request_id, "Data": {"Action": action, "Parameters": form}}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the http.server naming
            length = int(self.headers.get("content-length") or 0)
            status, payload = answer(
                {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
            )
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("content-type", "application/json;charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # socketserver's 5 drops connections under load (1 s SYN retries)

    server = Server(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="facebody-emulator", daemon=True)
    thread.start()
    return Emulator(server, thread, calls)


def _typed(spec: RouteSpec, form: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """Form strings back to the schema's types (the upstream does the same)."""
    properties = spec.input_schema.get("properties", {})
    typed: dict[str, Any] = {}
    for name, raw in form.items():
        if name not in properties:
            return typed, f"unknown parameter {name}"
        kind = properties[name].get("type")
        try:
            if kind == "array":
                typed[name] = json.loads(raw)
            elif kind in ("number", "integer"):
                typed[name] = int(raw) if kind == "integer" else float(raw)
            elif kind == "boolean":
                typed[name] = {"true": True, "false": False}[raw.lower()]
            else:
                typed[name] = raw
        except (ValueError, KeyError):
            return typed, f"{name} is not a valid {kind}"
    return typed, None

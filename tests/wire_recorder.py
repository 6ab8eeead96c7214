"""A loopback HTTP recorder and the differential wire comparison (official SDK vs s402gen).

The recorder answers every request with an Alibaba-shaped success and keeps
what came: method, path and query, headers, body. :func:`differences`
points the official SDK client of a service's provider and s402gen's
``aliyun-rpc`` client at one recorder with the same arguments and returns
what differs between the two requests, leaving aside what changes on every
request (signature, nonce, date) and what names the client (user agent).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlsplit

from s402gen.runtime.spec import RouteSpec
from s402gen.runtime.upstream import AlibabaCloudUpstream, Credentials
from s402gen.runtime.upstreams import aliyun_sdk
from s402gen.runtime.upstreams.aliyun_rpc import PROTOCOL

CREDENTIALS = Credentials("wire-key", "wire-secret")
#: Headers that differ on every request or name the client, not the call.
VOLATILE = {"authorization", "x-acs-date", "x-acs-signature-nonce", "user-agent"}
#: Headers of the HTTP layer (connection handling), not of the call.
TRANSPORT = {"connection", "accept-encoding", "content-length", "accept", "host"}


@dataclass(frozen=True)
class Recorded:
    """One request as the recorder saw it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes

    def comparable(self) -> dict[str, Any]:
        """What must be the same for two clients making the same call."""
        return {
            "method": self.method,
            "path": self.path,
            "query": sorted(self.query),
            "headers": {k: v for k, v in self.headers.items() if k not in VOLATILE | TRANSPORT},
            "form": sorted(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)),
            "body": self.body,
        }


@contextlib.contextmanager
def recorder() -> Iterator[tuple[str, list[Recorded]]]:
    """A recorder on 127.0.0.1 (a free port): ``(host:port, requests so far)``."""
    seen: list[Recorded] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            url = urlsplit(self.path)
            seen.append(
                Recorded(
                    self.command,
                    url.path,
                    tuple(parse_qsl(url.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            data = json.dumps({"RequestId": "recorded", "Data": {}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json;charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _record  # noqa: N815 - the http.server naming

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield "%s:%s" % server.server_address[:2], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sample(schema: dict[str, Any], name: str, index: int = 1) -> Any:
    """A valid value of ``schema`` for parameter ``name``; arrays get two items."""
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type")
    if kind == "array":
        return [sample(schema.get("items", {"type": "string"}), name, i) for i in (1, 2)]
    if kind == "object":
        props = schema.get("properties", {})
        return {key: sample(value, key, index) for key, value in props.items()}
    if kind == "integer":
        return index + 1
    if kind == "number":
        return index / 4
    if kind == "boolean":
        return True
    if schema.get("format") == "uri":
        return f"https://example.com/{name.lower()}-{index}.jpg?x=1&y=é"
    return f"{name} {index} & é"


def arguments(spec: RouteSpec) -> dict[str, Any]:
    """A value for every parameter of ``spec`` (optional ones too)."""
    props = spec.input_schema.get("properties", {})
    return {name: sample(schema, name) for name, schema in props.items()}


def sdk_call(distribution: str, spec: RouteSpec, endpoint: str, args: dict[str, Any]) -> None:
    """Call ``spec``'s action through the official SDK ``distribution`` at ``endpoint``."""
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_util import models as util_models

    sdk = aliyun_sdk.load(distribution)
    client_module = importlib.import_module(f"{sdk.package}.client")
    models = importlib.import_module(f"{sdk.package}.models")
    client = client_module.Client(
        open_api_models.Config(
            access_key_id=CREDENTIALS.access_key_id,
            access_key_secret=CREDENTIALS.access_key_secret,
            endpoint=endpoint,
            protocol="http",
        )
    )
    request = getattr(models, f"{spec.upstream.action}Request")().from_map(args)
    method = sdk.operations[spec.upstream.action].method
    getattr(client, f"{method}_with_options")(request, util_models.RuntimeOptions())


def differences(distribution: str, spec: RouteSpec) -> dict[str, tuple[Any, Any]]:
    """``{aspect: (SDK's, s402gen's)}`` for each aspect of the request that differs."""
    args = arguments(spec)
    with recorder() as (endpoint, seen):
        sdk_call(distribution, spec, endpoint, args)
        ours = AlibabaCloudUpstream(CREDENTIALS, endpoint=endpoint, protocol="http")
        PROTOCOL.interpret(ours.call(spec, args))
    assert len(seen) == 2, seen
    theirs, mine = seen[0].comparable(), seen[1].comparable()
    return {key: (theirs[key], mine[key]) for key in theirs if theirs[key] != mine[key]}

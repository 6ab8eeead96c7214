"""Upstream calls: the answer types every protocol shares, and the ``aliyun-rpc`` client.

:class:`AlibabaCloudUpstream` sends through Alibaba Cloud's generic OpenAPI
client: ``alibabacloud-tea-openapi``'s ``Client.call_api`` signs each
request (ACS3-HMAC-SHA256, its default) and sends it RPC style, as the
official SDKs do (their ``client.py``: ``Params(action, version,
protocol="HTTPS", pathname="/", method="POST", auth_type="AK", style="RPC",
req_body_type="formData", body_type="json")``). Each parameter goes as the
SDK sends it for that action, as the route spec's ``upstream.wire`` says:
``flat`` (the default: ``call_api`` flattens a list into ``Tasks.1.ImageURL``),
``json``/``repeatList``/``simple`` (the SDK's "shrink" requests:
``array_to_string_with_specified_style(value, name, style)``), or ``query``
(in the URL query, flattened by ``OpenApiUtilClient.query``). Whether an
answer is a success is the protocol's decision
(:meth:`s402gen.runtime.upstreams.aliyun_rpc.AliyunRpc.interpret`), not
this client's.

What comes back is bounded and read exactly: the body is taken as bytes
(``body_type="byte"``), refused past :data:`MAX_UPSTREAM_BODY_BYTES`, and
parsed with :func:`s402gen.runtime.jsonio.loads` (integers of any size stay
exact). The client never retries: Alibaba Cloud's facebody, imageenhan and
objectdet actions take no ``ClientToken`` (their SDK request models have
none), so a second send could run the action twice for one payment; the
SDK's retry policy is switched off explicitly (``RetryOptions(retryable=False)``).
A failure to connect means the upstream never saw the call; any other lost
answer (a read timeout, a dropped connection) means it may still complete it
(:attr:`UpstreamError.may_have_run`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from . import jsonio
from .protocol import UPSTREAM_UNAVAILABLE
from .spec import RouteSpec

DEFAULT_ENDPOINT = "facebody.cn-shanghai.aliyuncs.com"

#: The largest upstream answer body the gateway accepts (bytes); a larger one is an upstream fault.
MAX_UPSTREAM_BODY_BYTES = 8 << 20

logger = logging.getLogger(__name__)

#: The environment variables of an Alibaba Cloud AccessKey pair (id, secret).
ALIBABA_CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")


class UpstreamError(Exception):
    """The upstream refused or failed a call: its error ``code`` and ``message``.

    ``caller_fault`` is true when the upstream said the caller's input is
    wrong (the call counts, as any answered call does); otherwise the
    fault is the upstream's (5xx, no answer, a malformed answer).
    ``may_have_run`` is true when the request went out and no answer came
    back: the upstream may still complete it.
    """

    def __init__(
        self,
        code: str,
        message: str,
        request_id: str = "",
        *,
        caller_fault: bool = False,
        may_have_run: bool = False,
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id
        self.caller_fault = caller_fault
        self.may_have_run = may_have_run

    @property
    def charged(self) -> bool:
        """Whether the failed call still counts against its payment: the caller's fault, or
        a request that may have run upstream; any other fault is given back."""
        return self.caller_fault or self.may_have_run


@dataclass(frozen=True)
class UpstreamResult:
    """A successful upstream answer: its request id and its body (``Data`` or the rest)."""

    request_id: str
    result: Any


@dataclass(frozen=True)
class UpstreamAnswer:
    """What the upstream answered, undecided: HTTP ``status``, decoded JSON ``body``, headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class Upstream(Protocol):
    """Calls one service's upstream action with validated arguments.

    Returns the answer, success or not; raises :class:`UpstreamError` only
    when there is no answer (network, timeout). The service's protocol
    decides what the answer means.
    """

    def call(self, spec: RouteSpec, arguments: Mapping[str, Any]) -> UpstreamAnswer: ...


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair; from ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``..._SECRET`` by default."""

    access_key_id: str
    access_key_secret: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "Credentials":
        """Read the standard Alibaba Cloud variables; raises ``KeyError`` naming a missing one."""
        key_id, secret = ALIBABA_CREDENTIAL_VARIABLES
        return cls(environ[key_id], environ[secret])


class AlibabaCloudUpstream:
    """The real upstream: one signed ``call_api`` per call.

    ``endpoint`` overrides every service's own host (``host[:port]``), or,
    as a mapping, the host of each product it names; ``protocol`` is
    ``https`` (default) or ``http`` (a local emulator).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        endpoint: str | Mapping[str, str] | None = None,
        protocol: str = "https",
        timeout_ms: int = 10_000,
    ):
        self.credentials = credentials
        self.endpoint = endpoint
        self.protocol = protocol
        self.timeout_ms = timeout_ms
        self.max_body_bytes = MAX_UPSTREAM_BODY_BYTES
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, host: str) -> Any:
        from alibabacloud_tea_openapi.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
        from darabonba.policy.retry import RetryOptions

        with self._lock:
            if host not in self._clients:
                self._clients[host] = Client(
                    Config(
                        access_key_id=self.credentials.access_key_id,
                        access_key_secret=self.credentials.access_key_secret,
                        endpoint=host,
                        protocol=self.protocol,
                        # one send per paid call: no action here takes a ClientToken
                        retry_options=RetryOptions({"retryable": False}),
                    )
                )
            return self._clients[host]

    def host(self, spec: RouteSpec) -> str:
        """The host a service's calls go to: the override, else the spec's own endpoint."""
        upstream = spec.upstream
        override = self.endpoint
        if isinstance(override, Mapping):
            override = override.get(upstream.product)
        return override or upstream.endpoint or DEFAULT_ENDPOINT

    def call(self, spec: RouteSpec, arguments: Mapping[str, Any]) -> UpstreamAnswer:
        """Send ``arguments`` to ``spec.upstream.action``; raises :class:`UpstreamError`
        only when no answer came (the protocol judges the answer)."""
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
        from darabonba.runtime import RuntimeOptions

        upstream = spec.upstream
        body, query = wire_form(spec, arguments)
        params = Params(
            action=upstream.action,
            version=upstream.version,
            protocol=self.protocol.upper(),
            pathname="/",
            method=upstream.method,
            auth_type="AK",
            style=upstream.style,
            req_body_type="formData",
            body_type="byte",  # read here: bounded, integers exact
        )
        runtime = RuntimeOptions(
            read_timeout=self.timeout_ms, connect_timeout=self.timeout_ms, autoretry=False
        )
        request = OpenApiRequest(query=query or None, body=None if _no_body(spec) else body)
        try:
            response = self._client(self.host(spec)).call_api(params, request, runtime)
        except AlibabaCloudException as exc:
            if not getattr(exc, "status_code", None):
                raise _no_answer(exc) from None
            data = exc.data if isinstance(exc.data, dict) else {}
            return UpstreamAnswer(int(exc.status_code), data)
        except Exception as exc:  # network errors from the HTTP layer
            raise _no_answer(exc) from None
        raw = response.get("body") or b""
        if len(raw) > self.max_body_bytes:
            logger.warning(
                "upstream %s answered %d bytes (bound %d)",
                upstream.action,
                len(raw),
                self.max_body_bytes,
            )
            raise UpstreamError("UpstreamAnswerTooLarge", UPSTREAM_UNAVAILABLE)
        try:
            body = jsonio.loads(raw)
        except jsonio.JsonError:
            logger.warning("upstream %s answered a body that is not JSON", upstream.action)
            raise UpstreamError("UpstreamAnswerInvalid", UPSTREAM_UNAVAILABLE) from None
        return UpstreamAnswer(
            int(response.get("statusCode") or 200), body, dict(response.get("headers") or {})
        )


#: Texts of the HTTP layer's errors that say the request never left (``requests``/``urllib3``).
_NOT_SENT = ("Failed to establish a new connection", "ConnectTimeout", "connect timeout=")


def _no_answer(exc: Exception) -> UpstreamError:
    """The error of a call that got no answer; details go to the log, not to the caller."""
    text = str(exc)
    logger.warning("upstream call got no answer: %s", text)
    inner = getattr(exc, "inner_exception", exc)  # the SDK wraps the HTTP layer's error
    lost = type(inner).__name__ == "RetryError" or isinstance(inner, OSError)
    sent = lost and not any(marker in text for marker in _NOT_SENT)
    return UpstreamError("UpstreamUnavailable", UPSTREAM_UNAVAILABLE, may_have_run=sent)


def _no_body(spec: RouteSpec) -> bool:
    """An action the SDK sends without a form body: a GET, or every parameter in the query."""
    names = spec.input_schema.get("properties", {})
    in_query = [spec.upstream.wire.get(name) == "query" for name in names]
    return spec.upstream.method == "GET" or (bool(in_query) and all(in_query))


def wire_form(
    spec: RouteSpec, arguments: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The form body and the query of an ``aliyun-rpc`` call, each parameter in its wire style.

    An array parameter given as a JSON string (the catalog accepts one) goes
    as that string in the ``json`` style, and is decoded first to go out in
    any other style.
    """
    from alibabacloud_tea_openapi.utils import Utils

    body: dict[str, Any] = {}
    query: dict[str, Any] = {}
    for name, value in arguments.items():
        style = spec.upstream.wire.get(name, "flat")
        if name in spec.array_params and isinstance(value, str) and style != "json":
            value = jsonio.loads(value)
        if style == "query":
            query[name] = value
        elif style != "flat" and isinstance(value, list):
            body[name] = Utils.array_to_string_with_specified_style(value, name, style)
        else:
            body[name] = value
    return body, (Utils.query(query) if query else {})

"""Upstream calls through Alibaba Cloud's generic OpenAPI client.

``alibabacloud-tea-openapi``'s ``Client.call_api`` signs each request
(ACS3-HMAC-SHA256, its default) and sends it RPC style, as the official
facebody SDK does (its ``client.py``: ``Params(action, version,
protocol="HTTPS", pathname="/", method="POST", auth_type="AK", style="RPC",
req_body_type="formData", body_type="json")``, with array parameters turned
into JSON strings by ``array_to_string_with_specified_style(..., "json")``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from .spec import RouteSpec

DEFAULT_ENDPOINT = "facebody.cn-shanghai.aliyuncs.com"


class UpstreamError(Exception):
    """The upstream refused or failed a call: its error ``code`` and ``message``."""

    def __init__(self, code: str, message: str, request_id: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class UpstreamResult:
    """A successful upstream answer: its request id and its body (``Data`` or the rest)."""

    request_id: str
    result: Any


class Upstream(Protocol):
    """Calls one service's upstream action with validated arguments."""

    def call(self, spec: RouteSpec, arguments: Mapping[str, Any]) -> UpstreamResult: ...


@dataclass(frozen=True)
class Credentials:
    """An AccessKey pair; from ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``..._SECRET`` by default."""

    access_key_id: str
    access_key_secret: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "Credentials":
        """Read the standard Alibaba Cloud variables; raises ``KeyError`` naming a missing one."""
        return cls(
            environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
        )


class AlibabaCloudUpstream:
    """The real upstream: one signed ``call_api`` per call.

    ``endpoint`` overrides every service's own host (``host[:port]``), and
    ``protocol`` is ``https`` (default) or ``http`` (a local emulator).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        endpoint: str | None = None,
        protocol: str = "https",
        timeout_ms: int = 10_000,
    ):
        self.credentials = credentials
        self.endpoint = endpoint
        self.protocol = protocol
        self.timeout_ms = timeout_ms
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, host: str) -> Any:
        from alibabacloud_tea_openapi.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        with self._lock:
            if host not in self._clients:
                self._clients[host] = Client(
                    Config(
                        access_key_id=self.credentials.access_key_id,
                        access_key_secret=self.credentials.access_key_secret,
                        endpoint=host,
                        protocol=self.protocol,
                    )
                )
            return self._clients[host]

    def call(self, spec: RouteSpec, arguments: Mapping[str, Any]) -> UpstreamResult:
        """Send ``arguments`` to ``spec.upstream.action``; raises :class:`UpstreamError`."""
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        from alibabacloud_tea_openapi.utils import Utils
        from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
        from darabonba.runtime import RuntimeOptions

        upstream = spec.upstream
        body: dict[str, Any] = {}
        for name, value in arguments.items():
            if name in spec.array_params and not isinstance(value, str):
                value = Utils.array_to_string_with_specified_style(value, name, "json")
            body[name] = value
        params = Params(
            action=upstream.action,
            version=upstream.version,
            protocol=self.protocol.upper(),
            pathname="/",
            method=upstream.method,
            auth_type="AK",
            style=upstream.style,
            req_body_type="formData",
            body_type="json",
        )
        runtime = RuntimeOptions(
            read_timeout=self.timeout_ms, connect_timeout=self.timeout_ms, autoretry=False
        )
        client = self._client(self.endpoint or upstream.endpoint or DEFAULT_ENDPOINT)
        try:
            response = client.call_api(params, OpenApiRequest(body=body), runtime)
        except AlibabaCloudException as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            raise UpstreamError(
                str(exc.code or data.get("Code") or "UpstreamError"),
                str(data.get("Message") or exc.message or exc),
                str(exc.request_id or data.get("RequestId") or ""),
            ) from None
        except Exception as exc:  # network errors from the HTTP layer
            raise UpstreamError("UpstreamUnavailable", str(exc)) from None
        answer = response.get("body") or {}
        request_id = str(answer.get("RequestId", "")) if isinstance(answer, dict) else ""
        result = answer.get("Data", answer) if isinstance(answer, dict) else answer
        return UpstreamResult(request_id, result)

"""The built-in ``aliyun-rpc`` protocol: Alibaba Cloud OpenAPI, RPC style, ACS3 signing.

Answers (Alibaba Cloud's RPC convention, as its OpenAPI client reads
them): the request id is the body's ``RequestId``, the result its ``Data``
(the whole body when there is no ``Data``). An answer is an error when its
HTTP status is 400 or more, or when, even with HTTP 200, its body carries
an error ``Code`` (any code but the success ones ``200``, ``OK``,
``Success``, ``0``) or ``"Success": false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..upstream import (
    ALIBABA_CREDENTIAL_VARIABLES,
    AlibabaCloudUpstream,
    Credentials,
    UpstreamAnswer,
    UpstreamError,
    UpstreamResult,
)

#: ``Code`` values that do not mean an error.
SUCCESS_CODES = frozenset({"200", "OK", "Success", "0"})


@dataclass(frozen=True)
class AliyunRpc:
    """The ``aliyun-rpc`` protocol object (see the module docstring)."""

    name: str = "aliyun-rpc"
    credential_variables: tuple[str, ...] = ALIBABA_CREDENTIAL_VARIABLES
    #: ``flat``: as the value is (a list flattened, ``Tasks.1.ImageURL``); ``json``,
    #: ``repeatList``, ``simple``: one string (the SDK's shrink styles); ``query``: in the URL.
    wire_styles: tuple[str, ...] = ("flat", "json", "repeatList", "simple", "query")
    default_wire: str = "flat"

    def interpret(self, answer: UpstreamAnswer) -> UpstreamResult:
        """The result of a successful answer; raises :class:`UpstreamError` for an error."""
        body = answer.body if isinstance(answer.body, dict) else {}
        request_id = str(body.get("RequestId") or body.get("requestId") or "")
        code = body.get("Code", body.get("code"))
        failed = (
            answer.status >= 400
            or (code is not None and str(code) not in SUCCESS_CODES)
            or body.get("Success") is False
        )
        if failed:
            raise UpstreamError(
                str(code or f"HTTP{answer.status}"),
                str(body.get("Message") or body.get("message") or f"HTTP {answer.status}"),
                request_id,
            )
        if not isinstance(answer.body, dict):
            return UpstreamResult(request_id, answer.body)
        return UpstreamResult(request_id, body.get("Data", body))

    def client(
        self, environ: Mapping[str, str], *, endpoint: Any = None, scheme: str = "https"
    ) -> AlibabaCloudUpstream:
        """A signed client; raises ``KeyError`` naming a missing credential variable."""
        return AlibabaCloudUpstream(
            Credentials.from_environment(environ), endpoint=endpoint, protocol=scheme
        )

    def sdk(self, distribution: str) -> Any:
        """The official Tea SDK reader (:func:`s402gen.runtime.upstreams.aliyun_sdk.load`)."""
        from .aliyun_sdk import load

        return load(distribution)


PROTOCOL = AliyunRpc()

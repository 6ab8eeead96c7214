"""The built-in ``aliyun-rpc`` protocol: Alibaba Cloud OpenAPI, RPC style, ACS3 signing.

Answers (Alibaba Cloud's RPC convention, as its OpenAPI client reads
them): the request id is the body's ``RequestId``, the result its ``Data``
(the whole body when there is no ``Data``). An answer is an error when its
HTTP status is 400 or more, or when, even with HTTP 200, its body carries
an error ``Code`` (any code but the success ones ``200``, ``OK``,
``Success``, ``0``) or ``"Success": false``. An answer whose body is not a
JSON object is malformed: an RPC answer always is one.

Whose fault an error is (:attr:`UpstreamError.caller_fault`), from Alibaba
Cloud's error-code convention (its OpenAPI "common error codes": 4xx for a
request the caller can fix, 5xx for the service; ``InvalidParameter``,
``MissingParameter``, ``InvalidImage.*``... name the caller's input):
an error with HTTP 400, 404 or 413, or with a code that starts with one of
:data:`CALLER_CODE_PREFIXES`, is the caller's, unless its code names the
gateway's own credentials, signature, permissions or quota
(:data:`GATEWAY_CODE_PREFIXES`). Everything else (5xx, 403, throttling) is
the upstream's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..protocol import UPSTREAM_UNAVAILABLE
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
#: HTTP statuses of an error the caller's request caused.
CALLER_STATUSES = frozenset({400, 404, 413})
#: Error codes that name the caller's input, whatever the HTTP status.
CALLER_CODE_PREFIXES = (
    "InvalidParameter",
    "MissingParameter",
    "InvalidImage",
    "InvalidFile",
    "InvalidVideo",
    "InvalidUrl",
    "InvalidURL",
    "InvalidInput",
    "Unsupported",
)
#: Error codes that name the gateway's own account, request signing or quota: never the caller's.
GATEWAY_CODE_PREFIXES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "MissingSecurityToken",
    "InvalidTimeStamp",
    "SignatureNonceUsed",
    "Forbidden",
    "NoPermission",
    "InvalidAction",
    "InvalidVersion",
    "InvalidApi",
    "Throttling",
    "QuotaExceeded",
    "Unauthorized",
    "InvalidCredentials",
)


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
        if not isinstance(answer.body, dict):
            raise UpstreamError("UpstreamAnswerInvalid", UPSTREAM_UNAVAILABLE)
        body = answer.body
        request_id = str(body.get("RequestId") or body.get("requestId") or "")
        code = body.get("Code", body.get("code"))
        failed = (
            answer.status >= 400
            or (code is not None and str(code) not in SUCCESS_CODES)
            or body.get("Success") is False
        )
        if failed:
            code_text = str(code or f"HTTP{answer.status}")
            raise UpstreamError(
                code_text,
                str(body.get("Message") or body.get("message") or f"HTTP {answer.status}"),
                request_id,
                caller_fault=caller_fault(answer.status, code_text),
            )
        return UpstreamResult(request_id, body.get("Data", body))

    def vanishes(self, style: str, value: Any) -> bool:
        """The ``flat`` style flattens a list or an object into one parameter per element
        (``Tasks.1.ImageURL``): an empty one leaves none, so the upstream never sees it."""
        return style == "flat" and isinstance(value, (list, dict)) and not value

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


def caller_fault(status: int, code: str) -> bool:
    """Whether an error answer (HTTP ``status``, error ``code``) is the caller's fault."""
    if code.startswith(GATEWAY_CODE_PREFIXES):
        return False
    return status in CALLER_STATUSES or code.startswith(CALLER_CODE_PREFIXES)


PROTOCOL = AliyunRpc()

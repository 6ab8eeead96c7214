"""Who may reach the gateway, and who is calling: the Host/Origin policy and client API keys.

:class:`HostPolicy` is the one DNS-rebinding policy of the server: the REST API checks it
in :class:`HostCheckMiddleware` and ``/mcp`` gets the same lists as the MCP SDK's
``TransportSecuritySettings`` (whose matching rules it follows: an exact ``host[:port]``,
or ``host:*`` for any port; an absent ``Origin`` passes, as non-browser clients send
none). A wrong ``Host`` is answered 421 and a wrong ``Origin`` 403, as the SDK does.

:class:`ClientAuth` turns ``Authorization: Bearer <key>`` into the key's id (the payment's
``clientId``), using :class:`~.keys.KeyStore`. Failures are the live marketplace's
failure texts (:data:`.protocol.FAILURES`): ``api key required`` and ``api key is not
allowed to call this service``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from . import protocol
from .contract import PaymentRecord
from .keys import KeyStore
from .payments import Payment
from .spec import RouteSpec

#: The client credential header and its scheme (RFC 6750).
AUTHORIZATION_HEADER = "Authorization"
BEARER = "Bearer"
#: ``s402gen mcp`` (stdio): the client's API key, from the environment the client starts it with.
API_KEY_ENV = "S402GEN_API_KEY"
KEY_REQUIRED = protocol.FAILURES[3]
KEY_NOT_ALLOWED = protocol.FAILURES[4]
#: Names of the loopback interface, as a ``Host`` header carries them.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
LOOPBACK_ADDRESSES = ("127.0.0.1", "localhost", "::1")
#: An ``--allowed-host`` value: a DNS name, IPv4 address or bracketed IPv6 address, with an
#: optional port or ``*`` for any port (the ``Host`` header's form, RFC 9110 7.2).
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(:([0-9]{1,5}|\*))?")
MISDIRECTED = 421  # RFC 9110 15.5.20: the request was sent to a server not meant to answer
FORBIDDEN = 403
UNAUTHORIZED = 401


def is_loopback(host: str) -> bool:
    """Whether a listening address is loopback only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    return host in LOOPBACK_ADDRESSES or host.startswith("127.")


@dataclass(frozen=True)
class HostPolicy:
    """The ``Host`` values the server answers (``host[:port]``, or ``host:*`` for any port),
    and the browser ``Origin`` values it accepts (``http://`` and ``https://`` of each);
    ``any_host`` turns the check off (``--allowed-host '*'``, behind a proxy that checks)."""

    allowed_hosts: tuple[str, ...]
    any_host: bool = False

    @classmethod
    def for_hosts(cls, hosts: Iterable[str]) -> HostPolicy:
        """A policy from ``--allowed-host`` values (``*`` alone accepts any host).

        Raises ``ValueError`` naming a value that is not ``NAME[:PORT]`` (a URL, a path).
        """
        hosts = tuple(dict.fromkeys(h.strip().lower() for h in hosts))
        for host in hosts:
            if host != "*" and not _HOST.fullmatch(host):
                raise ValueError(
                    f"--allowed-host {host!r} is not NAME[:PORT] (e.g. api.example.com, "
                    "10.0.0.5:8402, [::1]:*)"
                )
        return cls(tuple(h for h in hosts if h != "*"), any_host="*" in hosts)

    @classmethod
    def loopback(cls, port: int | None = None) -> HostPolicy:
        """The loopback names on ``port`` (any port when ``None``)."""
        return cls(tuple(f"{name}:{'*' if port is None else port}" for name in LOOPBACK_NAMES))

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """The accepted ``Origin`` values."""
        return tuple(
            f"{scheme}://{host}" for host in self.allowed_hosts for scheme in ("http", "https")
        )

    @staticmethod
    def _matches(value: str, allowed: Iterable[str]) -> bool:
        for pattern in allowed:
            if value == pattern or (pattern.endswith(":*") and value.startswith(pattern[:-1])):
                return True
        return False

    def refusal(self, host: str | None, origin: str | None) -> tuple[int, str] | None:
        """``(status, error)`` when a request's ``Host`` or ``Origin`` is not accepted, else ``None``."""
        if self.any_host:
            return None
        if not host or not self._matches(host.lower(), self.allowed_hosts):
            return MISDIRECTED, "Host header is not one this server answers (--allowed-host)"
        if origin and not self._matches(origin.lower(), self.allowed_origins):
            return FORBIDDEN, "Origin is not allowed (--allowed-host)"
        return None

    def mcp_settings(self) -> Any:
        """The same lists as the MCP SDK's ``TransportSecuritySettings``."""
        from mcp.server.transport_security import TransportSecuritySettings

        return TransportSecuritySettings(
            enable_dns_rebinding_protection=not self.any_host,
            allowed_hosts=list(self.allowed_hosts),
            allowed_origins=list(self.allowed_origins),
        )


class HostCheckMiddleware:
    """ASGI middleware refusing HTTP requests whose ``Host``/``Origin`` the policy refuses
    (421 / 403, a JSON ``{"error"}`` body), before any route runs."""

    def __init__(self, app: Any, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Check ``http`` requests; pass everything else (lifespan) through."""
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
            host, origin = headers.get("host"), headers.get("origin")
            refused = self.policy.refusal(
                host.decode("latin-1") if host is not None else None,
                origin.decode("latin-1") if origin is not None else None,
            )
            if refused is not None:
                status, error = refused
                body = orjson.dumps({"error": error})
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class AuthRefused(Exception):
    """The caller's credentials do not allow this; ``str()`` is one of ``protocol.FAILURES``
    (HTTP 401 with ``WWW-Authenticate: Bearer``)."""


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` value; ``None`` when absent.

    Raises :class:`AuthRefused` for another scheme or an empty key.
    """
    if authorization is None:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != BEARER.lower() or not key.strip():
        raise AuthRefused(KEY_NOT_ALLOWED)
    return key.strip()


@dataclass(frozen=True)
class ClientAuth:
    """Who calls, by API key. ``keys`` is the store (``None``: no keys are issued, every
    caller is anonymous); ``anonymous`` lets a caller without a key pay for services whose
    pricing binds the client (``--no-api-keys``: local testing; such tokens bind nobody).
    Without it, an anonymous caller may only pay for services whose pricing does not bind."""

    keys: KeyStore | None = None
    anonymous: bool = True

    def client(self, authorization: str | None) -> str | None:
        """The calling key's id, or ``None`` for an anonymous caller.

        Raises :class:`AuthRefused` (``api key is not allowed to call this service``) for a
        key that is unknown, revoked, malformed, or sent where no keys are issued.
        """
        key = bearer_key(authorization)
        if key is None:
            return None
        found = self.keys.authenticate(key) if self.keys is not None else None
        if found is None:
            raise AuthRefused(KEY_NOT_ALLOWED)
        return found.key_id

    def check_create(self, spec: RouteSpec, client: str | None) -> None:
        """Raise :class:`AuthRefused` (``api key required``) when an anonymous caller pays
        for a service whose pricing binds the client and anonymous mode is off."""
        if client is None and spec.pricing.bind_client and not self.anonymous:
            raise AuthRefused(KEY_REQUIRED)


def shown_to(payment: Payment, client: str | None) -> PaymentRecord:
    """A payment's record as ``client`` may see it: a payment bound to a key shows its
    token only to that key (an anonymous payment's id is its only credential)."""
    record = payment.record()
    if payment.client_id and payment.client_id != client:
        return record.model_copy(update={"token": None})
    return record

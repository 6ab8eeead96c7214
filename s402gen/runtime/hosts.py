"""Which hosts a URL argument may name: the gateway never forwards an internal address.

A URL parameter (``format: uri``) is fetched by the upstream, so an address
inside a network (private, loopback, link-local, or any other address that
is not globally reachable: :attr:`ipaddress.IPv4Address.is_global`) is
refused unless the catalog says otherwise for that parameter
(``allowPrivateHosts: true``, the route spec's ``private_hosts``).

Two checks, cheapest first: :func:`literal_problem` reads the host as it is
written (an IP literal, in any form ``inet_aton`` accepts, such as
``127.1`` or ``2130706433``, and the ``localhost`` names of RFC 6761);
:func:`resolved_problem` asks the resolver (``getaddrinfo``) and refuses a
name any of whose addresses is internal. A name that does not resolve here
is not refused: the gateway cannot tell what it names, and the upstream
resolves it on its own. A name's answer is reused for :data:`RESOLVED_TTL_SECONDS`
(:data:`RESOLVED_NAMES` names at most): every paid call naming an image on one bucket
asked the resolver again, each time the system resolver's full timeout when it cannot
answer (5 s of every few calls where no DNS server answers).

The check is best-effort, as any check of a name made on another machine than the
one that fetches it: a name can answer the upstream otherwise than it answered here,
or change its answer (DNS rebinding) at any time, within that reuse or not.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from .recent import Recent

#: Distinct host names one call may make the gateway resolve (each lookup may take the
#: system resolver's full timeout, in a thread-pool thread).
MAX_RESOLVED_HOSTS = 8

#: Seconds a name's addresses (or that it has none) are reused without asking again.
RESOLVED_TTL_SECONDS = 60.0
#: Names whose answers are kept, the least recently used dropped first.
RESOLVED_NAMES = 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_resolved = Recent(RESOLVED_NAMES)  # name -> (monotonic expiry, addresses)
_now = time.monotonic


def refused_message(name: str) -> str:
    """The 400 text of a URL naming an internal host."""
    return f"{name} must not point at a private, loopback or link-local host"


def host_of(url: str) -> str | None:
    """The URL's host name, lower case, without brackets or a trailing dot (or ``None``)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def _internal(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells as a literal (``10.0.0.1``, ``::1``, ``127.1``), else ``None``."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:  # the forms inet_aton takes, which the resolver and many fetchers accept too
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def literal_problem(url: str) -> bool:
    """Whether the URL's host, as written, is internal (an IP literal, or a localhost name)."""
    host = host_of(url)
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = literal_address(host)
    return address is not None and _internal(address)


def _getaddrinfo(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [info[4][0] for info in infos]


def _resolve(host: str) -> list[str]:
    """``_getaddrinfo(host)``, reused for :data:`RESOLVED_TTL_SECONDS`."""
    now = _now()
    found = _resolved.get(host)
    if found is not None and found[0] > now:
        return found[1]
    addresses = _getaddrinfo(host)
    _resolved.put(host, (now + RESOLVED_TTL_SECONDS, addresses))
    return addresses


def resolved_problem(
    hosts: dict[str, str], resolve: Callable[[str], list[str]] | None = None
) -> str | None:
    """The 400 text for the first host name that resolves to an internal address, else
    ``None``. ``hosts`` maps each host name to the parameter it came in; more than
    :data:`MAX_RESOLVED_HOSTS` names is refused unasked; ``resolve`` maps a name to
    address strings (by default ``getaddrinfo``, its answers reused a while)."""
    names = sorted(host for host in hosts if literal_address(host) is None)
    if len(names) > MAX_RESOLVED_HOSTS:
        return f"a call may name at most {MAX_RESOLVED_HOSTS} distinct URL hosts"
    for host in names:
        for text in (resolve or _resolve)(host):
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                continue
            if _internal(address):
                return refused_message(hosts[host])
    return None


def urls_in(schema: dict[str, Any], value: Any) -> Iterator[str]:
    """Every string of ``value`` at a ``format: uri`` place of ``schema`` (through arrays'
    ``items`` and objects' ``properties``)."""
    if isinstance(value, str):
        if schema.get("format") == "uri":
            yield value
    elif isinstance(value, list):
        for item in value:
            yield from urls_in(schema.get("items") or {}, item)
    elif isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, item in value.items():
            if key in properties:
                yield from urls_in(properties[key], item)

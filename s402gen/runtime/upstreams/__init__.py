"""Upstream protocols as plug-ins, found through the ``s402gen.protocols`` entry point group.

A provider of ``catalog.yaml`` names its ``protocol``; the runtime, the
emulator and ``s402gen validate --upstream`` ask that protocol's object
(an :class:`UpstreamProtocol`) what they must know about the vendor:

- ``interpret(answer)``: success or error from the upstream's answer (an
  error inside an HTTP 200 is an error, and a call that ends in one is
  never charged), where the request id and the result are;
- ``credential_variables``: the environment variables of its credentials;
- ``wire_styles`` / ``default_wire``: how a parameter may go on the wire;
- ``vanishes(style, value)`` (optional, so that older plug-ins keep working):
  whether ``value`` sent in wire ``style`` leaves nothing on the wire; the
  gateway refuses such a value for a required parameter before anything is
  charged;
- ``client(environ, endpoint=..., scheme=...)``: the signed client;
- ``sdk(distribution)``: the reader of its official SDK (``None``: none),
  with ``actions`` (a set of names), ``http_method(action)`` and
  ``parameters(action, default_wire)`` (``{wire name: SdkParameter}`` with
  ``json_type``, ``required`` and ``wire``, or ``None``); it raises
  :class:`SdkMissing` when the distribution is not installed.

A vendor adapter ships as its own package and declares, in its
``pyproject.toml``::

    [project.entry-points."s402gen.protocols"]
    my-vendor-json = "my_adapter:PROTOCOL"

``aliyun-rpc`` (:mod:`.aliyun_rpc`) is built in: it is declared the same
way by s402gen itself, and found even when the installed metadata is older
than the source tree.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any, Iterable, Mapping, Protocol

from ..spec import RouteSpec
from ..upstream import Upstream, UpstreamAnswer, UpstreamResult

#: The entry point group a protocol plug-in registers in.
ENTRY_POINT_GROUP = "s402gen.protocols"

#: Protocols that ship with s402gen: name -> ``module:attribute``.
BUILTIN = {"aliyun-rpc": "s402gen.runtime.upstreams.aliyun_rpc:PROTOCOL"}


class SdkMissing(Exception):
    """An SDK a provider names is not installed; the message says how to install it."""


class ProtocolMissing(LookupError):
    """No installed plug-in provides this protocol name."""


class UpstreamProtocol(Protocol):
    """What a protocol plug-in's object provides (see the module docstring)."""

    name: str
    credential_variables: tuple[str, ...]
    wire_styles: tuple[str, ...]
    default_wire: str

    def interpret(self, answer: UpstreamAnswer) -> UpstreamResult:
        """The result of a successful answer; raises ``UpstreamError`` for an error one."""
        ...

    def client(
        self, environ: Mapping[str, str], *, endpoint: Any = None, scheme: str = "https"
    ) -> Upstream:
        """The signed client, credentials from ``environ``; raises ``KeyError`` naming one."""
        ...

    def sdk(self, distribution: str) -> Any:
        """The reader of the vendor's official SDK ``distribution``, or ``None``."""
        ...


def available() -> dict[str, str]:
    """Every installed protocol: name -> ``module:attribute`` (built-ins, then entry points)."""
    from importlib.metadata import (
        entry_points,  # ~50 ms: only when a plug-in is asked for
    )

    found = dict(BUILTIN)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point.value)
    return dict(sorted(found.items()))


@functools.cache
def load(name: str) -> UpstreamProtocol:
    """The protocol object named ``name``; raises :class:`ProtocolMissing`."""
    target = BUILTIN.get(name) or available().get(name)
    if target is None:
        raise ProtocolMissing(
            f"upstream protocol '{name}' is not installed (installed: "
            f"{', '.join(available())}; a plug-in registers in the "
            f"'{ENTRY_POINT_GROUP}' entry point group)"
        )
    module, _, attribute = target.partition(":")
    protocol: Any = importlib.import_module(module)
    for part in attribute.split("."):
        protocol = getattr(protocol, part)
    return protocol


class ProtocolClients:
    """An upstream that sends each service through the client of its own protocol."""

    def __init__(self, clients: Mapping[str, Upstream]):
        self.clients = dict(clients)

    def call(self, spec: RouteSpec, arguments: Mapping[str, Any]) -> UpstreamAnswer:
        """The answer of ``spec``'s protocol client (see :class:`..upstream.Upstream`)."""
        return self.clients[spec.upstream.protocol].call(spec, arguments)


def clients_for(
    specs: Iterable[RouteSpec],
    environ: Mapping[str, str] = os.environ,
    *,
    endpoint: Any = None,
    scheme: str = "https",
) -> ProtocolClients:
    """One client per protocol the services use, each with its credentials from ``environ``.

    Raises :class:`ProtocolMissing`, or ``KeyError`` naming the first
    credential variable (of a protocol's ``credential_variables``) not set.
    """
    clients = {}
    for name in sorted({spec.upstream.protocol for spec in specs}):
        protocol = load(name)
        for variable in protocol.credential_variables:
            if variable not in environ:
                raise KeyError(variable)
        clients[name] = protocol.client(environ, endpoint=endpoint, scheme=scheme)
    return ProtocolClients(clients)

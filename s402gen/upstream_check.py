"""``s402gen validate --upstream``: compare each service with its provider's official SDK.

A provider names its SDK (``sdk: alibabacloud-facebody20191230``, a
distribution installed in the environment) and its ``protocol``; the
protocol plug-in reads the SDK (:mod:`s402gen.runtime.upstreams`; for
``aliyun-rpc``, :mod:`s402gen.runtime.upstreams.aliyun_sdk` reads the Tea
SDK's ``client.py`` and ``models.py`` as source, once a process). Findings,
each naming the SDK: unknown action and unknown parameter (errors), a
parameter sent in another wire style or an action with another HTTP method
than the SDK's (errors: the upstream may refuse what its SDK never sends),
a parameter required upstream but optional here or the reverse, a type
mismatch (warnings), and one warning per service that could not be
compared, saying why (its provider names no SDK, or its protocol is not
installed or reads no SDK). A difference the catalog keeps on purpose is
declared on the service, ``upstreamDifferences: {Param: reason}``, and is
not reported.
"""

from __future__ import annotations

from typing import Any

from . import ir, model
from .diagnostics import Diagnostic, Rules
from .load import SourceMap
from .runtime import upstreams
from .runtime.upstreams import SdkMissing

__all__ = ["SdkMissing", "check_upstream"]


def _reference(provider: model.Provider, provider_id: str) -> tuple[Any, Any, str | None]:
    """``(protocol, sdk reader, None)``, or ``(.., .., why not)``; raises :class:`SdkMissing`."""
    try:
        protocol = upstreams.load(provider.protocol)
    except upstreams.ProtocolMissing:
        return None, None, f"its protocol '{provider.protocol}' is not installed"
    if provider.sdk is None:
        return protocol, None, f"provider '{provider_id}' names no `sdk`"
    sdk = protocol.sdk(provider.sdk)
    if sdk is None:
        return protocol, None, f"protocol '{provider.protocol}' reads no SDK"
    return protocol, sdk, None


def check_upstream(
    catalog: ir.Catalog, authored: model.Catalog, source: SourceMap
) -> list[Diagnostic]:
    """Findings for every service, each compared with its provider's SDK.

    Raises :class:`SdkMissing` when a named SDK is not installed.
    """
    references: dict[str, tuple[Any, Any, str | None]] = {}
    found: list[Diagnostic] = []
    for svc, written in zip(catalog.services, authored.services):
        provider_id = written.provider or authored.defaults.provider
        provider = authored.providers.get(provider_id)
        if provider is None:
            continue  # an unknown provider is reported by validate
        if provider_id not in references:
            references[provider_id] = _reference(provider, provider_id)
        protocol, sdk, why = references[provider_id]
        if why is not None:
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_NOT_COMPARED,
                    f"'{svc.id}' was not compared with an SDK: {why}",
                    source.value(("services", svc.index, "action")),
                )
            )
            continue
        found += _check_service(svc, written, provider.sdk or "", protocol, sdk, source)
    return found


def _check_service(
    svc: ir.Service,
    written: model.Service,
    sdk_name: str,
    protocol: Any,
    sdk: Any,
    source: SourceMap,
) -> list[Diagnostic]:
    path = ("services", svc.index)
    declared = written.upstream_differences or {}
    action = svc.upstream.action
    upstream = sdk.parameters(action, protocol.default_wire) if action in sdk.actions else None
    if upstream is None:
        return [
            Diagnostic(
                Rules.UPSTREAM_UNKNOWN_ACTION,
                f"action '{action}' of '{svc.id}' is not in the SDK {sdk_name}",
                source.value(path + ("action",)),
            )
        ]
    found = []
    if sdk.http_method(action) != svc.upstream.method:
        found.append(
            Diagnostic(
                Rules.UPSTREAM_WIRE,
                f"'{svc.id}' is sent {svc.upstream.method} here but {sdk.http_method(action)} "
                f"by the SDK {sdk_name} (set `upstreamMethod: {sdk.http_method(action)}`)",
                source.value(path + ("action",)),
            )
        )
    required_here = set(svc.input_schema["required"])
    for name, prop in svc.input_schema["properties"].items():
        where = source.key(path + ("params", name))
        theirs = upstream.get(name)
        ours = svc.upstream.wire.get(name, protocol.default_wire)
        if theirs is not None and theirs.wire != ours:  # even for a declared difference
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_WIRE,
                    f"'{name}' of '{svc.id}' is sent {ours} here but {theirs.wire} by the SDK "
                    f"{sdk_name} (declare `wire: {theirs.wire}`)",
                    where,
                )
            )
        if name in declared:
            continue
        if theirs is None:
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_UNKNOWN_PARAMETER,
                    f"parameter '{name}' of '{svc.id}' is not a parameter of {action} in the "
                    f"SDK {sdk_name} (it has: {', '.join(sorted(upstream)) or 'none'})",
                    where,
                )
            )
            continue
        if theirs.required != (name in required_here):
            state = (
                "required by the SDK {} but optional here"
                if theirs.required
                else "required here but optional in the SDK {}"
            ).format(sdk_name)
            found.append(
                Diagnostic(Rules.UPSTREAM_REQUIRED, f"'{name}' of '{svc.id}' is {state}", where)
            )
        if theirs.json_type != prop.get("type"):
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_TYPE,
                    f"'{name}' of '{svc.id}' is {prop.get('type')} here but "
                    f"{theirs.json_type} in the SDK {sdk_name}",
                    where,
                )
            )
    for name in sorted(set(upstream) - set(svc.input_schema["properties"]) - set(declared)):
        if upstream[name].required:
            found.append(
                Diagnostic(
                    Rules.UPSTREAM_REQUIRED,
                    f"'{name}' is required by {action} in the SDK {sdk_name} but missing "
                    f"from '{svc.id}'",
                    source.value(path + ("params",)),
                )
            )
    return found

"""Validate stage, the lint warnings on one service: a missing Chinese title, a
description that does not name its required parameters, an array without ``items``,
``allowPrivateHosts`` on a parameter that takes no URL, a description repeated across
services. Registered with :func:`s402gen.validate.rule`, like every rule."""

from __future__ import annotations

import re
from typing import Any, Iterator

from .diagnostics import Rules
from .validate import Context, Issue, rule


@rule(Rules.NO_CHINESE_TITLE)
def no_chinese_title(ctx: Context) -> Iterator[Issue]:
    """A service without ``titleZh``."""
    for svc, _, path in ctx.pairs():
        if not svc.title_zh:
            message = (
                f"service '{svc.id}' has no titleZh: Chinese searches will not find it by title"
            )
            yield Issue(message, path, service=svc.id)


@rule(Rules.DESCRIPTION_MISSES_REQUIRED)
def description_misses_required(ctx: Context) -> Iterator[Issue]:
    """A description that does not name a required parameter."""
    for svc, _, path in ctx.pairs():
        for name in svc.input_schema["required"]:
            if not re.search(rf"\b{re.escape(name)}\b", svc.description):
                yield Issue(
                    f"the description of service '{svc.id}' does not name its required "
                    f"parameter '{name}'",
                    path,
                    service=svc.id,
                )


@rule(Rules.ARRAY_WITHOUT_ITEMS)
def array_without_items(ctx: Context) -> Iterator[Issue]:
    """An array parameter without an ``items`` schema."""
    for svc, _, path in ctx.pairs():
        for name, prop in svc.input_schema["properties"].items():
            if prop["type"] == "array" and "items" not in prop:
                message = f"array parameter '{name}' of service '{svc.id}' has no 'items' schema"
                yield Issue(message, path + ("params", name), service=svc.id)


def _has_url(schema: dict[str, Any]) -> bool:
    """Whether a ``format: uri`` string is anywhere in ``schema`` (items, properties)."""
    items = schema.get("items")
    return (
        schema.get("format") == "uri"
        or (isinstance(items, dict) and _has_url(items))
        or any(_has_url(p) for p in (schema.get("properties") or {}).values())
    )


@rule(Rules.PRIVATE_HOSTS_WITHOUT_URL)
def private_hosts_without_url(ctx: Context) -> Iterator[Issue]:
    """``allowPrivateHosts`` on a parameter that holds no URL (``format: uri``): it says
    nothing there, and may have been meant for another parameter."""
    for svc, _, path in ctx.pairs():
        properties = svc.input_schema["properties"]
        for name in svc.route.private_hosts:
            if not _has_url(properties[name]):
                yield Issue(
                    f"parameter '{name}' of service '{svc.id}' allows private hosts but holds "
                    "no URL (format: uri)",
                    path + ("params", name),
                    "remove allowPrivateHosts, or give the parameter format: uri",
                    svc.id,
                )


@rule(Rules.REPEATED_DESCRIPTION)
def repeated_description(ctx: Context) -> Iterator[Issue]:
    """Parameters of one service sharing a description (A/B sides of a pair may)."""
    for svc, _, path in ctx.pairs():
        by_description: dict[str, list[str]] = {}
        for name, prop in svc.input_schema["properties"].items():
            by_description.setdefault(prop["description"], []).append(name)
        for description, names in by_description.items():
            stems = {re.sub(r"[A-Z]$", "", n) if len(n) > 1 else n for n in names}
            if len(stems) > 1:
                yield Issue(
                    f"parameters {', '.join(names)} of service '{svc.id}' share the description "
                    f"'{description}'",
                    path + ("params", names[1]),
                    "describe each one",
                    svc.id,
                )

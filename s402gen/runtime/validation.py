"""Request validation against exactly the input schema the catalog publishes.

One implementation for every front end (HTTP routes, MCP tools) and for the
compiler, which uses :data:`FORMAT_CHECKER` to check examples. Messages are
the catalog's own: ``ImageURL is required``, ``ImageURL must be a valid http
or https URL``, ``required parameters are missing``.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import re2

from . import hosts, jsonio
from .spec import RouteSpec

FORMAT_CHECKER = jsonschema.FormatChecker(formats=())


@FORMAT_CHECKER.checks("uri")
def is_http_url(value: object) -> bool:
    """``format: uri`` in this catalog means an http or https URL with a host, and no
    whitespace or control (or other invisible formatting) character anywhere in it.

    Which hosts it may name is :mod:`s402gen.runtime.hosts`'s decision.
    """
    if not isinstance(value, str):
        return True  # type errors are reported by the "type" keyword
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # an unclosed IPv6 bracket, a bad port
        return False
    return parts.scheme in ("http", "https") and bool(host)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a pattern RE2 refuses is reported, not logged to stderr


@functools.lru_cache(maxsize=4096)
def safe_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (google-re2), which matches in time linear in the text:
    no pattern can backtrack catastrophically. Raises ``re2.error`` for what RE2 cannot
    run (backreferences, lookaround, repeats over 1000)."""
    return re2.compile(pattern, _RE2_OPTIONS)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """The ``pattern`` keyword, matched by :func:`safe_pattern` (jsonschema's message)."""
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = safe_pattern(pattern).search(instance) is not None
    except re2.error:
        matched = False  # the compiler refuses such a catalog (S402-E097 unsafe-pattern)
    if not matched:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def schema_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A Draft 2020-12 validator for ``schema`` that checks ``format: uri`` and runs every
    ``pattern`` with RE2 (:func:`safe_pattern`)."""
    return _Validator(schema, format_checker=FORMAT_CHECKER)


class RequestError(Exception):
    """A request the route rejects with HTTP 400; ``str(error)`` is the catalog's text."""


@dataclass(frozen=True)
class RequestValidator:
    """Validates request arguments for one service (see :meth:`arguments`)."""

    spec: RouteSpec
    validator: Any

    @classmethod
    def for_spec(cls, spec: RouteSpec) -> "RequestValidator":
        """Build the validator once per service (jsonschema compiles lazily but keeps refs)."""
        return cls(spec, schema_validator(spec.input_schema))

    def arguments(self, body: dict[str, Any]) -> dict[str, Any]:
        """The upstream arguments of a JSON object body, or :class:`RequestError`.

        Checks, in order: each required URL parameter (missing, then not an
        http(s) URL), any other missing required parameter, then the whole
        schema. An array parameter may come as a JSON string holding an
        array; it is checked as the array and forwarded as the string. Keys
        the schema does not name are allowed, as the schema allows them, but
        are not forwarded.
        """
        spec = self.spec
        for name, message in spec.messages.required.items():
            value = body.get(name)
            if value is None or value == "":
                raise RequestError(message)
            if not is_http_url(value) or not isinstance(value, str):
                raise RequestError(spec.messages.invalid_url[name])
        required = spec.input_schema.get("required", ())
        if any(body.get(name) is None for name in required):
            raise RequestError(spec.messages.missing)
        properties = spec.input_schema.get("properties", {})
        arguments = {name: value for name, value in body.items() if name in properties}
        checked = self._decoded(arguments)
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(checked))
        if error is not None:
            raise RequestError(_message(error))
        for name, url in self._urls(checked):
            if hosts.literal_problem(url):
                raise RequestError(hosts.refused_message(name))
        return arguments

    def _decoded(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """``arguments`` with each array parameter sent as JSON text (``'["a"]'``) decoded;
        raises :class:`RequestError` (``NAME must be a JSON array``) when it is not JSON."""
        checked = dict(arguments)
        for name in self.spec.array_params:
            if isinstance(checked.get(name), str):
                try:
                    checked[name] = jsonio.loads(checked[name])
                except jsonio.JsonError:
                    raise RequestError(f"{name} must be a JSON array") from None
        return checked

    def _urls(self, checked: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """``(parameter, url)`` of every URL in the arguments whose parameter may not name
        a private host (all but the route spec's ``private_hosts``)."""
        properties = self.spec.input_schema.get("properties", {})
        for name, value in checked.items():
            if name not in self.spec.private_hosts:
                for url in hosts.urls_in(properties[name], value):
                    yield name, url

    def check_hosts(self, arguments: dict[str, Any]) -> None:
        """Refuse (``RequestError``) URL arguments whose host names resolve to an internal
        address: asked before a paid call is charged, after :meth:`arguments`."""
        names: dict[str, str] = {}
        for name, url in self._urls(self._decoded(arguments)):
            host = hosts.host_of(url)
            if host is not None:
                names.setdefault(host, name)
        problem = hosts.resolved_problem(names)
        if problem is not None:
            raise RequestError(problem)


def _message(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "format" and error.validator_value == "uri":
        return f"{path} must be a valid http or https URL"
    if error.validator == "type":
        return f"{path} must be of type {error.validator_value}"
    return f"{path}: {error.message}" if path else error.message

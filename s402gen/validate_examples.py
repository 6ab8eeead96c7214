"""Validate stage, the rules on a service's examples: its example request and response
against its schemas, an example naming an internal host, and its error examples against
what the route really answers (the route's own request validator,
:class:`s402gen.runtime.validation.RequestValidator`). Registered with
:func:`s402gen.validate.rule`, like every rule."""

from __future__ import annotations

from typing import Any, Iterator

from . import ir
from .derive import MadeOnce
from .diagnostics import Rules, did_you_mean
from .runtime import hosts
from .runtime.validation import RequestError, RequestValidator, schema_validator
from .schema_check import describe_error, schema_problem
from .validate import Context, Issue, output_path, output_problem, rule


@rule(Rules.INVALID_EXAMPLE_RESPONSE)
def invalid_example_response(ctx: Context) -> Iterator[Issue]:
    """An example response its output schema rejects (checked when the schema is valid)."""
    for svc, authored, path in ctx.pairs():
        if output_problem(svc.output_schema) is not None:
            continue
        for error in _validator(ctx, svc.output_schema).iter_errors(svc.example_response):
            yield Issue(
                f"example response of service '{svc.id}' does not match its output schema: "
                f"{describe_error(error)}",
                output_path(ctx, authored, path),
                _enum_hint(error),
                svc.id,
            )


def _enum_hint(error: Any) -> str | None:
    """A did-you-mean hint when a text value is not one of its schema's ``enum``."""
    if error.validator == "enum" and isinstance(error.instance, str):
        return did_you_mean(error.instance, [str(v) for v in error.validator_value])
    return None


def _input_ok(svc: ir.Service) -> bool:
    return all(schema_problem(prop) is None for prop in svc.input_schema["properties"].values())


def _validator(ctx: Context, schema: dict[str, Any]) -> Any:
    """The validator of ``schema``, made once for each schema (services may share one:
    :meth:`s402gen.derive._Deriver.input_schema`, an inherited output schema)."""
    validators = ctx.memo.setdefault("schema validators", MadeOnce())
    return validators.get(schema, lambda: schema_validator(schema))


def _route(ctx: Context, svc: ir.Service) -> RequestValidator:
    """The route's own request validator (built once per service for every rule)."""
    key = ("route", svc.index)
    if key not in ctx.memo:
        ctx.memo[key] = RequestValidator(ir.route_spec(svc), _validator(ctx, svc.input_schema))
    return ctx.memo[key]


@rule(Rules.INVALID_EXAMPLE_REQUEST)
def invalid_example_request(ctx: Context) -> Iterator[Issue]:
    """An example request its input schema rejects (checked when the schema is valid)."""
    for svc, authored, path in ctx.pairs():
        if svc.example_request is None or not _input_ok(svc):
            continue
        for error in _route(ctx, svc).validator.iter_errors(svc.example_request):
            where = (
                path + ("exampleRequest",)
                if authored.example_request is not None
                else path + ("params", str(error.absolute_path[0]) if error.absolute_path else "")
            )
            yield Issue(
                f"example request of service '{svc.id}' does not match its input schema: "
                f"{describe_error(error)}",
                where,
                _enum_hint(error),
                svc.id,
            )


@rule(Rules.EXAMPLE_PRIVATE_HOST)
def example_private_host(ctx: Context) -> Iterator[Issue]:
    """An example request whose URL names an internal host (private, loopback, link-local)
    for a parameter that does not allow one: the gateway would refuse the example."""
    for svc, authored, path in ctx.pairs():
        if svc.example_request is None or not _input_ok(svc):
            continue
        properties = svc.input_schema["properties"]
        for name, value in svc.example_request.items():
            if name not in properties or name in svc.route.private_hosts:
                continue
            url = next(
                (u for u in hosts.urls_in(properties[name], value) if hosts.literal_problem(u)),
                None,
            )
            if url is not None:
                where = (
                    path + ("exampleRequest",)
                    if authored.example_request
                    else path + ("params", name)
                )
                yield Issue(
                    f"example request of service '{svc.id}': {hosts.refused_message(name)} "
                    f"({url})",
                    where,
                    "use a public URL, or allowPrivateHosts: true on the parameter",
                    svc.id,
                )


def _error_answers(ctx: Context) -> Iterator[tuple]:
    """``(service, example, path, promise, the route's refusal or None)`` for each error
    example of a service whose input schema is valid."""
    for svc, authored, path in ctx.pairs():
        if not _input_ok(svc):
            continue
        for position, example in enumerate(svc.error_examples):
            where = (
                path + ("errorExamples", position)
                if authored.error_examples is not None
                else path + ("required",)
            )
            promise = (
                f"error example {example.input!r} of service '{svc.id}' promises "
                f"{example.status_code} '{example.error}'"
            )
            try:
                _route(ctx, svc).arguments(example.input)  # the route's own check
            except RequestError as refused:
                yield svc, example, where, promise, refused
            else:
                yield svc, example, where, promise, None


@rule(Rules.ERROR_EXAMPLE_ACCEPTED)
def error_example_accepted(ctx: Context) -> Iterator[Issue]:
    """An error example whose input the route accepts."""
    for svc, _, where, promise, refused in _error_answers(ctx):
        if refused is None:
            yield Issue(f"{promise}, but its input schema accepts it", where, service=svc.id)


@rule(Rules.ERROR_EXAMPLE_WRONG_ANSWER)
def error_example_wrong_answer(ctx: Context) -> Iterator[Issue]:
    """An error example the route refuses with another status or text (an error: the
    catalog would publish an answer the gateway never gives)."""
    for svc, example, where, promise, refused in _error_answers(ctx):
        if refused is not None and (str(refused), 400) != (example.error, example.status_code):
            yield Issue(f"{promise}, but the route answers 400 '{refused}'", where, service=svc.id)

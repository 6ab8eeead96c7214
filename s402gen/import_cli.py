"""``s402gen import``: a catalog JSON into catalog.yaml (:func:`s402gen.importer.import_catalog`),
what it cannot reproduce and why it fails reported as findings. Imported only when it runs
(:data:`s402gen.cli.LAZY_COMMANDS`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from .cli import CONTEXT_SETTINGS, emit, format_option
from .diagnostics import Finding, Location, Rule, Rules
from .exits import Exit, epilog
from .import_input import PROVIDER_EXAMPLE, ImportFailure, parse_provider, read_catalog_json
from .importer import import_catalog, read_related_source


def _findings(failure: ImportFailure, rule: Rule) -> list[Finding]:
    where = Location(failure.file, 1, 1)
    return [*failure.found, *(Finding(rule, message, where) for message in failure.messages)]


def _warning(file: str, service: str, field: str, message: str) -> Finding:
    what = f"service '{service}' {field}" if service else field
    services = (service,) if service else ()
    rule = Rules.IMPORT_NOT_REPRODUCED
    return Finding(rule, f"{what}: {message}", Location(file, 1, 1), services=services)


@click.command("import", epilog=epilog("import"), context_settings=CONTEXT_SETTINGS)
@click.argument("file", metavar="FILE.json")
@click.option("-o", "--output", metavar="PATH", help="Write catalog.yaml here (default: stdout).")
@click.option(
    "--related-from",
    metavar="SOURCE",
    help="Catalog JSON or catalog.yaml to take the services named by relatedServices from, "
    "when FILE lacks them (else those ids are left out, with a warning).",
)
@click.option(
    "--provider",
    "provider",
    metavar="PRODUCT:VERSION:ENDPOINT",
    help="The upstream of the imported services (the catalog JSON does not publish it; "
    f"import does not guess it), e.g. {PROVIDER_EXAMPLE}.",
)
@click.option("--force", is_flag=True, help="Overwrite PATH when it exists.")
@format_option
def import_command(
    file: str,
    output: str | None,
    related_from: str | None,
    provider: str | None,
    force: bool,
    fmt: str,
) -> None:
    """Turn a catalog JSON (server402.catalog.search.v1) into catalog.yaml.

    The YAML compiles back to the same catalog entries (every static field):
    shared values go to defaults, presets, providers, pricing policies and
    payment providers, and each service keeps what differs. What it cannot
    reproduce is reported as S402-W050 import-field-not-reproduced warnings.
    With --format json and no -o, the YAML is the document's "text".
    """
    document = {"file": file, "output": output}
    try:
        if output and Path(output).exists() and not force:
            raise ImportFailure(output, ["exists; use --force to overwrite it"])
    except ImportFailure as failure:
        _fail(_findings(failure, Rules.IMPORT_OUTPUT_FAILED), fmt, **document)
    try:
        upstream = parse_provider(provider, file)
        catalog_json = read_catalog_json(file)
        related = read_related_source(related_from) if related_from else None
    except ImportFailure as failure:
        _fail(_findings(failure, Rules.INVALID_IMPORT_INPUT), fmt, **document)
    source = Path(related_from).name if related_from else ""
    try:
        result = import_catalog(catalog_json, Path(file).name, related, source, upstream=upstream)
    except ImportFailure as failure:  # named as given, like every other message
        failure = ImportFailure(file, failure.messages)
        _fail(_findings(failure, Rules.IMPORT_NOT_COMPILABLE), fmt, **document)
    if output:
        try:
            Path(output).write_text(result.text, encoding="utf-8")
        except OSError as exc:
            failure = ImportFailure(output, [f"cannot write: {exc.strerror or exc}"])
            _fail(_findings(failure, Rules.IMPORT_OUTPUT_FAILED), fmt, **document)
    warnings = [_warning(file, *note) for note in result.warnings]
    if fmt == "json":
        text = {} if output else {"text": result.text}
        emit(warnings, fmt, **document, services=result.services, pulled=result.pulled, **text)
        return
    emit(warnings, fmt)
    if result.lint_warnings:  # the live data's known defects among them
        click.echo(
            f"{file}: note: {result.lint_warnings} lint warning(s); see s402gen validate", err=True
        )
    if output:
        pulled = f" (+{result.pulled} from {related_from})" if result.pulled else ""
        click.echo(f"wrote {output}: {result.services} services{pulled}")
    else:
        click.echo(result.text, nl=False)


def _fail(findings: list[Finding], fmt: str, **document: object) -> NoReturn:
    emit(findings, fmt, **document)
    sys.exit(Exit.INVALID)

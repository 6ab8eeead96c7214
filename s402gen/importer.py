"""Import: a catalog JSON (``server402.catalog.search.v1``) back into catalog.yaml.

``s402gen import FILE.json`` writes a catalog.yaml that compiles back to FILE's
``services``, every static field (all but quality, matchScore, matchTerms, why)
equal. A shared value is written once, its most common value in ``defaults:``
(or providers, pricingPolicies, paymentProviders; repeated parameter schemas in
``presets:``), and a service overrides it only where it differs. Templates are
recovered from the text (label and titleZh from the second keyword, summaryZh
from the task phrase, description templates, shared keywords); parameters come
in the order that reproduces ``inputTypes``. The result is compiled in memory
twice: to write exampleRequest/errorExamples only where the derived ones
differ, then to verify. Each static field still not reproduced is reported
(``FILE: warning: SERVICE: FIELD: ...`` on stderr, a comment above the service).

This module runs the import (:func:`import_catalog`: compile, refine, verify) and
writes the text; :mod:`s402gen.import_input` reads and checks FILE,
:mod:`s402gen.import_recover` recovers the values, :mod:`s402gen.import_cli` is
the command.

Choices:

- The catalog JSON does not publish the upstream product of its services, and
  import does not guess it: ``--provider PRODUCT:VERSION:ENDPOINT`` names it
  (e.g. ``facebody:2019-12-30:facebody.cn-shanghai.aliyuncs.com``), and the
  YAML header repeats it. Without it, import refuses (S402-E050).
- relatedServices naming services FILE lacks (seed 003 names
  face-database-add-face, face-database-create-entity): the compiler rejects
  unknown ones (S402-E017), and an import cannot invent their action and
  parameters. ``--related-from SOURCE`` (a catalog JSON, e.g. the full live
  catalog, or a catalog.yaml) pulls them in, transitively, after the imported
  services, so the lists round trip exactly. Ids found nowhere are left out
  and reported, the published list kept in the service's comment, to restore
  once those services exist. Either way the result compiles.
- An error example the route would not give (face-template-list promises 400
  for ``{}`` without required parameters: S402-E025; another answer: E094) is
  left out and reported; the service keeps an explicit ``errorExamples``.
- A service with its own task phrase does not publish its summaryZh: its
  Chinese title stands in, reported for review.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml

from . import ir, render
from .diagnostics import Diagnostic, has_errors
from .import_input import ImportEntry, ImportFailure, read_catalog_json, read_text
from .import_recover import Importer
from .pipeline import compile_catalog, compile_text
from .runtime import protocol

_SERVICE_KEYS = (  # noqa: SIM905 - the order of a service's keys in the YAML
    "id action provider name toolName legacyId titleZh summaryZh task category tags keywords "
    "limitations complexity typicalResponseTime cacheable idempotent outputFormat sla "
    "pricingPolicy paymentProvider params required requiredContext outputSchema exampleRequest "
    "errorExamples relatedServices"
).split()


class ImportResult(NamedTuple):
    """The catalog.yaml ``text``; ``warnings``, ``(SERVICE, FIELD, message)`` (SERVICE ``""``
    when catalog-wide); the ``services`` imported, those ``pulled`` from --related-from, and
    the compiler's ``lint_warnings`` about the text."""

    text: str
    warnings: list[tuple[str, str, str]]
    services: int
    pulled: int
    lint_warnings: int


def _catalog_yaml(importer: Importer) -> str:
    """The catalog.yaml text: header, shared sections, then one block per service."""
    imported, source, notes = importer.imported, importer.source, importer.notes
    count = f"{imported} service" + "s" * (imported != 1)
    up = importer.upstream
    upstream = f"{up['product']} {up['version']} at {up['endpoint']}"
    lines = [
        f"# Imported by `s402gen import` from {importer.file} ({protocol.SCHEMA_VERSION}, {count}).",
        f"# The catalog JSON does not publish the upstream: {upstream}, from --provider.",
    ]
    if imported < len(importer.entries):
        lines.append(f"# The last services come from {source}: relatedServices name them.")
    lines += [f"# {field}: {message}" for field, message in notes[""]]
    for key, value in importer.tree.items():
        lines += ["", _dump({key: value}).rstrip("\n")]
    lines += ["", "services:"]
    for position, sid in enumerate(importer.ids):
        lines += [f"  # --- from {source} ---"] if position == imported else []
        service = {"id": sid, **importer.fields[sid]}
        service = {key: service[key] for key in _SERVICE_KEYS if key in service}
        lines += [f"  # {field}: {message}" for field, message in notes[sid]]
        lines += ["  " + line for line in _dump([service]).rstrip("\n").split("\n")] + [""]
    return "\n".join(lines)


class _Dumper(yaml.SafeDumper):
    """Block style, short collections of scalars on one line, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _flow(items: list[Any]) -> bool:
    scalars = all(isinstance(item, (str, int, float, bool)) or item is None for item in items)
    return bool(items) and scalars and sum(len(str(item)) + 2 for item in items) <= 64


_TAGS = yaml.resolver.BaseResolver
_Dumper.add_representer(list, lambda d, v: d.represent_sequence(_TAGS.DEFAULT_SEQUENCE_TAG, v, _flow(v)))  # fmt: skip
_Dumper.add_representer(dict, lambda d, v: d.represent_mapping(_TAGS.DEFAULT_MAPPING_TAG, v.items(), _flow([*v, *v.values()])))  # fmt: skip


def _dump(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _compile(text: str, name: str, check: bool) -> tuple[ir.Catalog | None, list[Diagnostic]]:
    """Compile ``text`` in memory; with ``check``, the semantic checks too."""
    result = compile_text(text, name, environ={}, checks=check)
    return (result.catalog if result.ok else None), result.diagnostics


def read_related_source(path: str) -> list[dict[str, Any]]:
    """The catalog entries of ``path``, a catalog JSON or a catalog.yaml (compiled in memory,
    with the files its ``include:`` names).

    Raises :class:`ImportFailure` when it cannot be read or is invalid.
    """
    if not path.endswith((".yaml", ".yml")):
        return read_catalog_json(path)["services"]
    read_text(path)  # one that cannot be read is said so as any input (not as the catalog)
    result = compile_catalog(path, display_name=path, environ={})
    if result.catalog is None or not result.ok:
        errors = [d for d in result.diagnostics if has_errors([d])]
        raise ImportFailure(path, ["does not compile (its errors are reported)"], errors)
    return [render.catalog_entry(svc).to_json() for svc in result.catalog.services]


def import_catalog(
    document: dict[str, Any],
    file: str,
    related: list[dict] | None = None,
    source: str = "",
    *,
    upstream: dict[str, str],
) -> ImportResult:
    """Import a checked catalog JSON (see :func:`read_catalog_json`) into catalog.yaml text.

    ``upstream`` (``product``, ``version``, ``endpoint``; see
    :func:`s402gen.import_input.parse_provider`) is
    the provider of the imported services. ``file`` names FILE in the header and notes;
    ``related`` are the entries
    of ``--related-from`` (named ``source``), whose services relatedServices
    name are pulled in, transitively. Raises :class:`ImportFailure` when the
    result would not compile.
    """
    published = list(document["services"])
    entries = [ImportEntry.model_validate(entry) for entry in published]
    by_id = {
        e.id: (e, given) for given in related or [] for e in [ImportEntry.model_validate(given)]
    }
    for entry in entries:  # grows while it runs: transitive
        for name in entry.related_services:
            if name in by_id and name not in {e.id for e in entries}:
                entries.append(by_id[name][0])
                published.append(by_id[name][1])
    imported = len(document["services"])
    importer = Importer(entries, published, file, imported, source or None, upstream)
    importer.build(document.get("generatedAt"))
    final, problems = _compile(_catalog_yaml(importer), file, check=False)
    if final is not None:
        importer.refine(final)
        final, problems = _compile(_catalog_yaml(importer), file, check=True)
    if final is None or has_errors(problems):
        reasons = [
            f"{d.message} [{d.rule.code} {d.rule.name}]" for d in problems if has_errors([d])
        ]
        raise ImportFailure(file, [f"the imported catalog does not compile: {r}" for r in reasons])
    importer.verify(final)
    return ImportResult(
        _catalog_yaml(importer),
        importer.warnings(),
        imported,
        len(entries) - imported,
        len(problems),
    )

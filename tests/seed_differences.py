"""Every deliberate difference between the compiled catalog and the live seeds.

The live marketplace data (tests/seeds/, copied from shared/seeds/) has
known defects; catalog.yaml carries the fix instead of copying them. Each
:class:`Defect` names the fix, why it was made, where the compiled output
differs from the seeds (service id, JSON path inside the catalog entry, the
seed's value there), how to put the live data back into catalog.yaml, and
the diagnostic rule the compiler must then report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from s402gen.diagnostics import Rule, Rules

#: Marks a path that the seed does not have at all.
ABSENT = object()

GENERIC_IDENTIFIER = "Alibaba Cloud face database or template identifier."


@dataclass(frozen=True)
class Difference:
    """At ``path`` of service ``service``'s catalog entry the seed holds ``seed_value``."""

    service: str
    path: tuple[str | int, ...]
    seed_value: Any


@dataclass(frozen=True)
class Defect:
    """A defect of the live data that catalog.yaml fixes."""

    name: str
    reason: str
    rule: Rule
    differences: tuple[Difference, ...]
    put_back: Callable[[dict], None]


def _service(data: dict, service_id: str) -> dict:
    return next(s for s in data["services"] if s["id"] == service_id)


def _param(data: dict, service_id: str, name: str) -> dict:
    params = _service(data, service_id)["params"]
    value = params[name]
    if isinstance(value, str):
        value = params[name] = {"preset": value}
    return value


_IDENTIFIERS = (
    ("face-template-delete", "TemplateId"),
    ("face-database-delete-face", "DbName"),
    ("face-database-delete-face", "FaceId"),
    ("face-database-delete", "Name"),
    ("face-database-delete-entity", "DbName"),
    ("face-database-delete-entity", "EntityId"),
    ("face-swap-template-merge", "TemplateId"),
    ("face-database-batch-add", "DbName"),
    ("face-database-batch-add", "EntityId"),
    ("face-search", "DbName"),
    ("face-search", "DbNames"),
)

_ARRAYS = (
    ("face-swap-template-merge", "MergeInfos"),
    ("face-database-batch-add", "Faces"),
    ("infrared-face-liveness-detection", "Tasks"),
)


def _generic_descriptions(data: dict) -> None:
    for service_id, name in _IDENTIFIERS:
        _param(data, service_id, name)["description"] = GENERIC_IDENTIFIER


def _no_items(data: dict) -> None:
    for service_id, name in _ARRAYS:
        _param(data, service_id, name).pop("items")


def _faces_example(data: dict) -> None:
    _param(data, "face-database-batch-add", "Faces")["example"] = [
        {"ImageUrl": "https://example.com/face.jpg"}
    ]


def _list_error_example(data: dict) -> None:
    _service(data, "face-template-list")["errorExamples"] = [
        {"input": {}, "error": "required parameters are missing", "statusCode": 400}
    ]


DEFECTS: tuple[Defect, ...] = (
    Defect(
        name="generic identifier descriptions",
        reason="DbName, FaceId, EntityId, TemplateId, Name and DbNames all said "
        f"{GENERIC_IDENTIFIER!r}; each now says which database, entity, face or "
        "template it names (seeds/README.md, second defect).",
        rule=Rules.REPEATED_DESCRIPTION,
        differences=tuple(
            Difference(s, ("inputSchema", "properties", p, "description"), GENERIC_IDENTIFIER)
            for s, p in _IDENTIFIERS
        ),
        put_back=_generic_descriptions,
    ),
    Defect(
        name="array parameters without items",
        reason="MergeInfos, Faces and Tasks had no items schema although the upstream "
        "API (the SDK's *Request<Param> models) defines the item fields; they are now "
        "declared, so bad items are rejected before payment (seeds/README.md, third defect).",
        rule=Rules.ARRAY_WITHOUT_ITEMS,
        differences=tuple(
            Difference(s, ("inputSchema", "properties", p, "items"), ABSENT) for s, p in _ARRAYS
        ),
        put_back=_no_items,
    ),
    Defect(
        name="Faces example uses ImageUrl",
        reason="The live exampleRequest of face-database-batch-add sends Faces items with "
        "ImageUrl, but the upstream item field is ImageURL (BatchAddFacesRequestFaces); "
        "with the items schema declared, the live example fails its own schema.",
        rule=Rules.INVALID_EXAMPLE_REQUEST,
        differences=(
            Difference(
                "face-database-batch-add",
                ("exampleRequest", "Faces", 0),
                {"ImageUrl": "https://example.com/face.jpg"},
            ),
        ),
        put_back=_faces_example,
    ),
    Defect(
        name="face-template-list error example",
        reason="face-template-list has no required parameters, yet the live errorExamples "
        "promise a 400 'required parameters are missing' for {}: the route accepts {}. "
        "It has no error example now (seeds/README.md, first defect).",
        rule=Rules.ERROR_EXAMPLE_ACCEPTED,
        differences=(
            Difference(
                "face-template-list",
                ("errorExamples",),
                [{"input": {}, "error": "required parameters are missing", "statusCode": 400}],
            ),
        ),
        put_back=_list_error_example,
    ),
)


def differences_for(service_id: str) -> list[Difference]:
    """Every deliberate difference of one service."""
    return [d for defect in DEFECTS for d in defect.differences if d.service == service_id]

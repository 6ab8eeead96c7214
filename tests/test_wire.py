"""Wire fidelity: s402gen's aliyun-rpc client sends what each product's official SDK sends.

For every service of a catalog, the official SDK client of its provider
(``sdk:``) and s402gen's runtime call one loopback recorder with the same
arguments; the recorded requests must be the same but for the signature,
the nonce, the date and the user agent (:mod:`tests.wire_recorder`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from s402gen.load import load_catalog
from s402gen.pipeline import compile_catalog
from s402gen.runtime.spec import RouteSpec
from s402gen.runtime.upstream import wire_form
from s402gen.structure import parse_model

from .conftest import CATALOG, ROOT
from .wire_recorder import differences

IMAGEENHAN = ROOT / "tests" / "data" / "imageenhan" / "catalog.yaml"


def _services(catalog: Path) -> list[tuple[str, RouteSpec]]:
    """``(SDK distribution, route spec)`` of every service of ``catalog``: the SDK its
    provider names (``sdk:``)."""
    compiled = compile_catalog(catalog)
    assert compiled.catalog is not None, compiled.diagnostics
    authored, _ = parse_model(load_catalog(str(catalog), str(catalog)))
    assert authored is not None
    sdks = {p.product: p.sdk for p in authored.providers.values()}
    return [(sdks[svc.upstream.product], svc.route) for svc in compiled.catalog.services]


REAL = _services(CATALOG)
SECOND_PRODUCT = _services(IMAGEENHAN)
#: The multi-product marketplace fixture, once there is one (issue 9 point 8).
MARKETPLACE = ROOT / "examples" / "marketplace" / "catalog.yaml"
FIXTURE = _services(MARKETPLACE) if MARKETPLACE.exists() else []


def test_every_real_service_is_compared() -> None:
    assert len(REAL) == 44
    assert {sdk for sdk, _ in REAL} == {
        "alibabacloud-facebody20191230",
        "alibabacloud-openplatform20191219",
    }


COMPARED = REAL + SECOND_PRODUCT + FIXTURE


@pytest.mark.parametrize(
    ("sdk", "spec"), COMPARED, ids=[f"{s.upstream.product}-{s.service_id}" for _, s in COMPARED]
)
def test_the_request_is_the_one_the_official_sdk_sends(sdk: str, spec: RouteSpec) -> None:
    assert differences(sdk, spec) == {}


def _rewired(spec: RouteSpec, **wire: str) -> RouteSpec:
    return dataclasses.replace(spec, upstream=dataclasses.replace(spec.upstream, wire=wire))


def test_a_wrong_style_is_seen() -> None:
    """The comparison can fail: Faces sent flat, or Tasks sent as JSON, differs from the SDK."""
    by_id = {spec.service_id: (sdk, spec) for sdk, spec in REAL}
    sdk, batch_add = by_id["face-database-batch-add"]
    assert batch_add.upstream.wire == {"Faces": "json"}
    seen = differences(sdk, _rewired(batch_add))
    assert seen["form"][0] != seen["form"][1]
    sdk, liveness = by_id["infrared-face-liveness-detection"]
    assert "form" in differences(sdk, _rewired(liveness, Tasks="json"))
    sdk, anime = by_id["human-anime-stylization"]
    seen = differences(sdk, _rewired(anime))
    assert {"query", "form"} <= set(seen)


def test_each_style_as_the_sdk_writes_it() -> None:
    _, spec = next(s for s in REAL if s[1].service_id == "face-database-batch-add")
    faces = [{"ImageURL": "https://e.com/a.jpg"}, {"ImageURL": "https://e.com/b.jpg"}]
    cases = {
        "flat": ({"Faces": faces}, {}),
        "json": (
            {"Faces": '[{"ImageURL":"https://e.com/a.jpg"},{"ImageURL":"https://e.com/b.jpg"}]'},
            {},
        ),
        "query": (
            {},
            {"Faces.1.ImageURL": "https://e.com/a.jpg", "Faces.2.ImageURL": "https://e.com/b.jpg"},
        ),
    }
    for style, expected in cases.items():
        assert wire_form(_rewired(spec, Faces=style), {"Faces": faces}) == expected, style
    simple = _rewired(spec, Faces="simple")
    assert wire_form(simple, {"Faces": ["a", "b"]}) == ({"Faces": "a,b"}, {})
    repeat = _rewired(spec, Faces="repeatList")
    assert wire_form(repeat, {"Faces": ["a b", "c"]}) == ({"Faces": "Faces.1=a+b&&Faces.2=c"}, {})


def test_a_json_string_argument_goes_in_the_parameters_style() -> None:
    _, spec = next(s for s in REAL if s[1].service_id == "infrared-face-liveness-detection")
    text = '[{"ImageURL": "https://e.com/ir.jpg"}]'
    assert wire_form(spec, {"Tasks": text}) == (
        {"Tasks": [{"ImageURL": "https://e.com/ir.jpg"}]},
        {},
    )
    _, batch = next(s for s in REAL if s[1].service_id == "face-database-batch-add")
    assert wire_form(batch, {"Faces": text}) == ({"Faces": text}, {})


@pytest.mark.parametrize("style", ["json", "repeatList", "simple"])
def test_shrink_styles_are_those_of_the_sdks_own_util(style: str) -> None:
    """The util the SDKs' client.py calls (``alibabacloud_openapi_util``) gives the same string,
    for the styles no action of the real catalog uses too."""
    from alibabacloud_openapi_util.client import Client as OpenApiUtilClient

    _, spec = next(s for s in REAL if s[1].service_id == "face-database-batch-add")
    for value in (["a b", "c&d", "é"], [{"ImageURL": "https://e.com/a.jpg?x=1", "N": 2}]):
        sent, _ = wire_form(_rewired(spec, Faces=style), {"Faces": value})
        assert sent["Faces"] == OpenApiUtilClient.array_to_string_with_specified_style(
            value, "Faces", style
        )
    query = wire_form(_rewired(spec, Faces="query"), {"Faces": [{"A": 1}, {"B": "é"}]})[1]
    assert query == OpenApiUtilClient.query({"Faces": [{"A": 1}, {"B": "é"}]})

"""Upstream protocols as plug-ins: found through the entry point group, they judge answers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from s402gen.runtime import upstreams
from s402gen.runtime.payments import Ledger
from s402gen.runtime.service import ServiceRuntime, UpstreamFailed
from s402gen.runtime.upstream import AlibabaCloudUpstream, UpstreamAnswer

from .conftest import run_cli, write_catalog
from .test_wire import SECOND_PRODUCT

#: A vendor adapter as its own package: errors come as HTTP 200 {"status": "error"}.
ADAPTER = """
from dataclasses import dataclass
from s402gen.runtime.upstream import UpstreamError, UpstreamResult

@dataclass(frozen=True)
class JsonVendor:
    name: str = "json-vendor"
    credential_variables: tuple = ("JSON_VENDOR_TOKEN",)
    wire_styles: tuple = ("body",)
    default_wire: str = "body"

    def interpret(self, answer):
        if answer.status >= 400 or answer.body.get("status") != "ok":
            raise UpstreamError(answer.body.get("error", "failed"), "vendor error", answer.body.get("id", ""))
        return UpstreamResult(answer.body["id"], answer.body["output"])

    def client(self, environ, *, endpoint=None, scheme="https"):
        return ("client for", environ["JSON_VENDOR_TOKEN"])

    def sdk(self, distribution):
        return None

PROTOCOL = JsonVendor()
"""


@pytest.fixture
def json_vendor(tmp_path: Path, monkeypatch):
    """Install the adapter above as a distribution with an ``s402gen.protocols`` entry point."""
    site = tmp_path / "site"
    (site / "json_vendor_adapter-1.0.dist-info").mkdir(parents=True)
    (site / "json_vendor_adapter.py").write_text(textwrap.dedent(ADAPTER), encoding="utf-8")
    info = site / "json_vendor_adapter-1.0.dist-info"
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: json-vendor-adapter\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[s402gen.protocols]\njson-vendor = json_vendor_adapter:PROTOCOL\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(site))
    upstreams.load.cache_clear()
    yield upstreams.load("json-vendor")
    upstreams.load.cache_clear()


def test_the_built_in_protocol_is_found() -> None:
    assert upstreams.available()["aliyun-rpc"] == "s402gen.runtime.upstreams.aliyun_rpc:PROTOCOL"
    assert upstreams.load("aliyun-rpc").credential_variables == (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    )
    with pytest.raises(upstreams.ProtocolMissing, match="'aliyun-rcp' is not installed"):
        upstreams.load("aliyun-rcp")


def test_a_plug_in_is_found_through_the_entry_point_group(json_vendor, tmp_path) -> None:
    assert upstreams.available()["json-vendor"] == "json_vendor_adapter:PROTOCOL"
    assert json_vendor.name == "json-vendor"
    data = _catalog_with_protocol("json-vendor")
    write_catalog(tmp_path / "catalog.yaml", data)
    code, _, err = run_cli("validate", "catalog.yaml", cwd=tmp_path)
    assert code == 0, err
    # its own wire styles: an aliyun style is not one of them
    data["services"][0]["params"]["Width"] = {"type": "integer", "wire": "json"}
    write_catalog(tmp_path / "catalog.yaml", data)
    code, out, _ = run_cli("validate", "catalog.yaml", "--format", "json", cwd=tmp_path)
    assert code == 2
    assert [f["rule"] for f in json.loads(out)["findings"]] == ["S402-E061"]


def test_validate_upstream_says_a_plug_in_without_sdk_reader_could_not_compare(
    json_vendor, tmp_path
) -> None:
    write_catalog(tmp_path / "catalog.yaml", _catalog_with_protocol("json-vendor"))
    code, out, _ = run_cli("validate", "--upstream", "--format", "json", cwd=tmp_path)
    found = json.loads(out)["findings"]
    assert code == 0 and {f["rule"] for f in found} == {"S402-W033"}
    assert found[0]["message"] == (
        "'image-resize' was not compared with an SDK: protocol 'json-vendor' reads no SDK"
    )


def test_a_provider_whose_protocol_is_not_installed_is_an_error(tmp_path) -> None:
    write_catalog(tmp_path / "catalog.yaml", _catalog_with_protocol("json-vendor"))
    code, out, _ = run_cli("validate", "--format", "json", cwd=tmp_path)
    assert code == 2
    [finding] = json.loads(out)["findings"]
    assert finding["rule"] == "S402-E060" and "'json-vendor'" in finding["message"]


def _catalog_with_protocol(protocol: str) -> dict:
    import yaml

    from .test_upstream_check import IMAGEENHAN

    data = yaml.safe_load(IMAGEENHAN.read_text(encoding="utf-8"))
    data["providers"]["imageenhan"]["protocol"] = protocol
    return data


class _Answers:
    """An upstream client that gives a fixed answer."""

    def __init__(self, answer: UpstreamAnswer):
        self.answer = answer

    def call(self, spec, arguments) -> UpstreamAnswer:
        return self.answer


def _runtime_with(json_vendor, answer: UpstreamAnswer) -> tuple[ServiceRuntime, object]:
    import dataclasses

    _, spec = SECOND_PRODUCT[0]
    spec = dataclasses.replace(
        spec, upstream=dataclasses.replace(spec.upstream, protocol="json-vendor")
    )
    return ServiceRuntime([spec], ledger=Ledger(), upstream=_Answers(answer)), spec


def test_each_protocol_judges_its_answers_and_an_error_in_200_is_not_charged(json_vendor):
    ok = UpstreamAnswer(200, {"status": "ok", "id": "v-1", "output": {"width": 2}})
    runtime, spec = _runtime_with(json_vendor, ok)
    body = {"Url": "https://example.com/a.jpg", "Width": 2, "Height": 3}
    payment = runtime.create_payment(spec.service_id, None, "client")
    envelope = runtime.call(spec, body, payment.token, "client")
    assert (envelope.request_id, envelope.data.result) == ("v-1", {"width": 2})

    failed = UpstreamAnswer(200, {"status": "error", "error": "QuotaExceeded", "id": "v-2"})
    runtime, spec = _runtime_with(json_vendor, failed)
    payment = runtime.create_payment(spec.service_id, None, "client")
    with pytest.raises(UpstreamFailed) as raised:
        runtime.call(spec, body, payment.token, "client")
    assert (raised.value.code, raised.value.request_id) == ("QuotaExceeded", "v-2")
    record = runtime.verify_payment(payment.payment_id).record()
    assert record.used_calls == 0 and record.remaining_calls == 1


def test_clients_come_with_the_credentials_their_protocol_names(json_vendor) -> None:
    _, spec = SECOND_PRODUCT[0]
    aliyun = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
    clients = upstreams.clients_for([spec], aliyun)
    assert isinstance(clients.clients["aliyun-rpc"], AlibabaCloudUpstream)
    with pytest.raises(KeyError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        upstreams.clients_for([spec], {"ALIBABA_CLOUD_ACCESS_KEY_ID": "id"})
    import dataclasses

    vendor = dataclasses.replace(
        spec, upstream=dataclasses.replace(spec.upstream, protocol="json-vendor")
    )
    with pytest.raises(KeyError, match="JSON_VENDOR_TOKEN"):
        upstreams.clients_for([spec, vendor], aliyun)
    both = upstreams.clients_for([spec, vendor], {**aliyun, "JSON_VENDOR_TOKEN": "t"})
    assert both.clients["json-vendor"] == ("client for", "t")

"""URL arguments (issue 14): no whitespace or control characters, and no internal host
(private, loopback, link-local) unless the catalog allows it for that parameter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from s402gen.runtime import hosts
from s402gen.runtime.app import create_app
from s402gen.runtime.emulator import TEST_CREDENTIALS, start_emulator
from s402gen.runtime.generated import load_generated
from s402gen.runtime.payments import Ledger
from s402gen.runtime.upstream import AlibabaCloudUpstream

from .conftest import GENERATED, LOOPBACK_BASE, run_cli, write_catalog

SPECS = {spec.service_id: spec for spec in load_generated(GENERATED).specs}
FACE = SPECS["face-detection"]
INVALID = "ImageURL must be a valid http or https URL"
REFUSED = "ImageURL must not point at a private, loopback or link-local host"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(GENERATED, ledger=Ledger()), base_url=LOOPBACK_BASE) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "url",
    [
        "https://e.com/a b.jpg",
        " https://e.com/a.jpg",
        "https://e.com/a.jpg\n",
        "https://e.com/a\tb.jpg",
        "https://e.com/a\x00.jpg",
        "https://e.com/a\x7f.jpg",
        "https://e.com/\u202egpj.jpg",  # right-to-left override
        "https://e.com/a\u00a0b.jpg",  # no-break space
        "http://[::1/a.jpg",  # unclosed bracket
    ],
)
def test_urls_with_whitespace_or_control_characters_are_invalid(client, url) -> None:
    answer = client.post(FACE.endpoint, json={"ImageURL": url})
    assert (answer.status_code, answer.json()) == (400, {"error": INVALID})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.jpg",
        "http://127.1/a.jpg",
        "http://2130706433/a.jpg",
        "http://0x7f000001/a.jpg",
        "http://10.0.0.1/a.jpg",
        "http://192.168.1.2:8080/a.jpg",
        "http://172.16.0.1/a.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/a.jpg",
        "http://[::1]/a.jpg",
        "http://[fe80::1]/a.jpg",
        "http://[fd00::1]/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",
        "http://localhost/a.jpg",
        "http://LOCALHOST./a.jpg",
        "http://metadata.localhost/a.jpg",
        "http://user:pw@10.1.2.3/a.jpg",
    ],
)
def test_internal_hosts_are_refused_before_any_payment(client, url) -> None:
    answer = client.post(FACE.endpoint, json={"ImageURL": url})
    assert (answer.status_code, answer.json()) == (400, {"error": REFUSED})


def test_internal_hosts_inside_arrays_are_refused_too(client) -> None:
    spec = SPECS["action-recognition"]
    urls = [{"URL": "https://e.com/a.jpg"}, {"URL": "http://169.254.169.254/x"}]
    refused = "URLList must not point at a private, loopback or link-local host"
    for value in (urls, json.dumps(urls)):
        answer = client.post(spec.endpoint, json={"Type": 1, "URLList": value})
        assert (answer.status_code, answer.json()) == (400, {"error": refused}), value


def test_public_urls_still_pass(client) -> None:
    for url in ("https://e.com/a.jpg", "http://8.8.8.8/a.jpg", "https://[2001:4860::8888]/a"):
        assert client.post(FACE.endpoint, json={"ImageURL": url}).status_code == 402


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch):
    """Stands for the system resolver: ``resolver(answers)`` makes ``answers(host)`` the
    addresses of ``host``, with no answer reused from before."""

    def use(answers) -> None:
        hosts._resolved.clear()
        monkeypatch.setattr(hosts, "_getaddrinfo", answers)

    yield use
    hosts._resolved.clear()


def test_a_name_resolving_to_an_internal_address_is_refused_and_not_charged(
    resolver,
) -> None:
    """The resolver is asked for paid calls, before charging; a name it cannot resolve
    is forwarded (the upstream resolves it on its own)."""
    resolver(lambda host: ["10.9.8.7"] if host == "intranet.example" else [])
    emulator = start_emulator(SPECS.values())
    try:
        upstream = AlibabaCloudUpstream(
            TEST_CREDENTIALS, endpoint=emulator.endpoints, protocol="http"
        )
        with TestClient(
            create_app(GENERATED, ledger=Ledger(), upstream=upstream), base_url=LOOPBACK_BASE
        ) as client:
            payment = client.post("/api/payments", json={"serviceId": FACE.service_id}).json()
            headers = {"X-Payment-Token": payment["token"]}
            body = {"ImageURL": "https://intranet.example/a.jpg"}
            answer = client.post(FACE.endpoint, json=body, headers=headers)
            assert (answer.status_code, answer.json()) == (400, {"error": REFUSED})
            assert emulator.calls == []
            body = {"ImageURL": "https://unresolvable.example/a.jpg"}
            assert client.post(FACE.endpoint, json=body, headers=headers).status_code == 200
    finally:
        emulator.stop()


def test_too_many_distinct_hosts_are_refused_unasked() -> None:
    names = {f"h{i}.example": "URLList" for i in range(hosts.MAX_RESOLVED_HOSTS + 1)}
    asked: list[str] = []
    problem = hosts.resolved_problem(names, resolve=lambda h: asked.append(h) or [])
    assert problem == f"a call may name at most {hosts.MAX_RESOLVED_HOSTS} distinct URL hosts"
    assert asked == []


def test_allow_private_hosts_is_per_parameter(small_project: Path) -> None:
    """``allowPrivateHosts: true`` on one parameter (here through a preset) lets it name an
    internal host; the route spec says which parameters may."""
    data = yaml.safe_load((small_project / "catalog.yaml").read_text(encoding="utf-8"))
    data["presets"]["intranet-url"] = dict(data["presets"]["image-url"], allowPrivateHosts=True)
    data["services"][0]["params"]["ImageURL"] = "intranet-url"
    write_catalog(small_project / "catalog.yaml", data)
    code, out, err = run_cli("build", cwd=small_project)
    assert code == 0, out + err
    generated = small_project / "generated"
    specs = {spec.service_id: spec for spec in load_generated(generated).specs}
    assert specs["face-detection"].private_hosts == ("ImageURL",)
    assert specs["face-database-batch-add"].private_hosts == ()
    with TestClient(create_app(generated, ledger=Ledger()), base_url=LOOPBACK_BASE) as client:
        allowed = client.post(
            specs["face-detection"].endpoint, json={"ImageURL": "http://127.0.0.1:8080/a.jpg"}
        )
        assert allowed.status_code == 402
        faces = [{"ImageURL": "http://127.0.0.1:8080/a.jpg"}]
        refused = client.post(
            specs["face-database-batch-add"].endpoint, json={"DbName": "d", "Faces": faces}
        )
        assert refused.status_code == 400
        assert "must not point at a private" in refused.json()["error"]


def test_a_names_answer_is_reused_for_a_while(resolver, monkeypatch) -> None:
    """The resolver is asked once for a name that calls keep naming, and again once the
    answer is older than RESOLVED_TTL_SECONDS; an internal answer is refused each time."""
    asked: list[str] = []

    def answer(host: str) -> list[str]:
        asked.append(host)
        return ["10.1.2.3"]

    clock = [1000.0]
    resolver(answer)
    monkeypatch.setattr(hosts, "_now", lambda: clock[0])
    names = {"reused-answer.example": "ImageURL"}
    for _ in range(3):
        assert hosts.resolved_problem(names) == hosts.refused_message("ImageURL")
    assert asked == ["reused-answer.example"]
    clock[0] += hosts.RESOLVED_TTL_SECONDS + 1
    assert hosts.resolved_problem(names) == hosts.refused_message("ImageURL")
    assert asked == ["reused-answer.example"] * 2

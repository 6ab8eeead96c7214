"""What a compile keeps in memory: shared where it can be, made only when asked for.

(The figures are in ``bench/load_bench.py``; these tests hold the behaviour.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from s402gen import derive
from s402gen.load import load_text
from s402gen.pipeline import compile_text
from s402gen.structure import parse_model

from .conftest import run_cli

SMALL = Path(__file__).parent / "cases" / "valid-small" / "catalog.yaml"
REAL = Path(__file__).parents[1] / "catalog.yaml"


def test_a_shorthand_parameter_is_one_model_for_every_use() -> None:
    text = REAL.read_text(encoding="utf-8")
    authored, findings = parse_model(load_text(text, "catalog.yaml"))
    assert authored is not None and not findings
    uses: dict[tuple, list] = {}
    for service in authored.services:
        for parameter in service.params.values():
            if parameter.model_fields_set in ({"preset"}, {"type"}):  # written as a string
                uses.setdefault((parameter.preset, parameter.type), []).append(parameter)
    assert max(len(same) for same in uses.values()) > 1
    assert all(p is same[0] for same in uses.values() for p in same)


def test_an_inherited_output_schema_is_one_dict_for_every_service() -> None:
    """Services that inherit ``defaults.outputSchema`` share its sorted copy; one with its
    own schema gets its own, and each one's IR is what it says."""
    text = REAL.read_text(encoding="utf-8")
    text = text.replace(
        "    action: ListFaceDbs\n",
        "    action: ListFaceDbs\n    outputSchema: {type: object, required: [requestId]}\n",
        1,
    )
    compiled = compile_text(text, "catalog.yaml")
    assert compiled.ok and compiled.catalog is not None, compiled.diagnostics
    services = compiled.catalog.services
    own = [s for s in services if s.upstream.action == "ListFaceDbs"]
    inheriting = [s for s in services if s.upstream.action != "ListFaceDbs"]
    assert len(own) == 1 and len(inheriting) == len(services) - 1
    assert own[0].output_schema == {"required": ["requestId"], "type": "object"}
    shared = inheriting[0].output_schema
    assert shared["required"] == ["requestId", "data"] and list(shared) == sorted(shared)
    assert all(s.output_schema is shared for s in inheriting)


def test_a_shorthand_parameter_resolves_once_for_each_default_description() -> None:
    """The services using one shorthand parameter share its resolved schema while their
    default parameter description is the same; a category describing parameters
    otherwise gets its own."""
    text = REAL.read_text(encoding="utf-8").replace(
        "categories:\n",
        "categories:\n  other:\n    label: Other\n"
        "    defaults: {parameterDescription: 'Other parameter {name}.'}\n",
        1,
    )
    text = text.replace(
        "    action: ListFaceDbs\n", "    action: ListFaceDbs\n    category: other\n"
    )
    compiled = compile_text(text, "catalog.yaml")
    assert compiled.ok and compiled.catalog is not None, compiled.diagnostics
    limits = {
        svc.upstream.action: svc.input_schema["properties"]["Limit"]
        for svc in compiled.catalog.services
        if "Limit" in svc.input_schema["properties"]
    }
    assert limits["ListFaceDbs"]["description"] == "Other parameter Limit."
    assert limits["ListFaceEntities"]["description"] == "Alibaba Cloud RPC parameter Limit."
    images = [  # written `ImageURL: image-url` (one service adds `wire: query` to it)
        svc.input_schema["properties"]["ImageURL"]
        for svc in compiled.catalog.services
        if "ImageURL" in svc.input_schema["properties"] and not svc.upstream.wire
    ]
    assert len(images) > 10 and all(image is images[0] for image in images)


def test_services_alike_share_their_messages_error_examples_and_sla() -> None:
    """The 400 texts, the made error examples and the SLA depend on a few names alone:
    services with the same ones share one object, and each has its own names' texts."""
    made = derive.error_examples(("ImageURL",), ("ImageURL", "Mode"))
    assert made is derive.error_examples(("ImageURL",), ("ImageURL", "Mode"))
    assert [(e.input, e.error, e.status_code) for e in made] == [
        ({}, "ImageURL is required", 400),
        ({"ImageURL": "not-a-url"}, "ImageURL must be a valid http or https URL", 400),
    ]
    compiled = compile_text(REAL.read_text(encoding="utf-8"), "catalog.yaml")
    assert compiled.catalog is not None
    groups: dict[tuple, list] = {}
    for svc in compiled.catalog.services:
        groups.setdefault(tuple(svc.messages.required), []).append(svc)
    assert len(groups) > 1 and max(len(alike) for alike in groups.values()) > 10
    for names, alike in groups.items():
        assert all(svc.messages is alike[0].messages for svc in alike)
        assert [m.split()[0] for m in alike[0].messages.required.values()] == list(names)
    services = compiled.catalog.services
    assert all(svc.sla is services[0].sla for svc in services)
    assert services[0].sla == {"uptime": "99.5%", "maxLatency": "5000ms"}


def test_services_with_the_same_shorthand_parameters_share_one_input_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Their input schema is one dict, and the checks make one validator for each schema
    object; a service with a parameter written out has its own."""
    from s402gen import validate_examples

    made: list[int] = []
    real_validator = validate_examples.schema_validator

    def counting(schema: dict) -> object:
        made.append(id(schema))
        return real_validator(schema)

    monkeypatch.setattr(validate_examples, "schema_validator", counting)
    compiled = compile_text(REAL.read_text(encoding="utf-8"), "catalog.yaml")
    assert compiled.ok and compiled.catalog is not None
    services = compiled.catalog.services
    by_schema: dict[int, list] = {}
    for svc in services:
        by_schema.setdefault(id(svc.input_schema), []).append(svc)
    shared = max(by_schema.values(), key=len)
    assert len(shared) > 5 and len({tuple(s.input_schema["properties"]) for s in shared}) == 1
    written_out = [s for s in services if s.upstream.wire]  # `{preset: image-url, wire: ...}`
    assert written_out and all(len(by_schema[id(s.input_schema)]) == 1 for s in written_out)
    schemas = {id(s.input_schema) for s in services} | {id(s.output_schema) for s in services}
    assert len(set(made)) == len(made) < len(services) and set(made) <= schemas


def test_a_shorthand_parameter_that_is_wrong_is_still_located() -> None:
    text = SMALL.read_text(encoding="utf-8").replace(
        "      MaxFaceNumber: {type: integer, minimum: 1}", "      MaxFaceNumber: no-such-preset"
    )
    compiled = compile_text(text, "catalog.yaml")
    assert not compiled.ok
    assert any(
        "no-such-preset" in d.message and d.location.line == 79 for d in compiled.diagnostics
    ), [d.format() for d in compiled.diagnostics]


def test_a_valid_catalog_makes_no_location_tables() -> None:
    compiled_source = load_text(SMALL.read_text(encoding="utf-8"), "catalog.yaml").source
    assert compiled_source._tables is None
    assert compiled_source.value(("services", 0)).line > 1  # made when first asked for
    assert compiled_source._tables is not None


@pytest.mark.parametrize("command", ["build", "check"])
def test_the_ir_is_let_go_before_the_stat_index_is_made(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat index is the last thing a build or a clean check makes, and with the IR of
    every service still held it was the run's peak: no service's IR may be alive then."""
    import weakref

    from s402gen import pipeline, statcache

    (tmp_path / "catalog.yaml").write_bytes(SMALL.read_bytes())
    assert run_cli("build", "catalog.yaml", "--out", "out", cwd=tmp_path)[0] == 0
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("S402GEN_CACHE_DIR", str(tmp_path / "cache"))  # a cold cache: no hit
    services: list[weakref.ref] = []
    compiled, record = pipeline.compile_catalog, statcache.record

    def compiling(*args, **kwargs):
        result = compiled(*args, **kwargs)
        services.extend(weakref.ref(svc) for svc in result.catalog.services)
        return result

    alive: list[int] = []

    def recording(*args, **kwargs):
        alive.append(sum(ref() is not None for ref in services))
        return record(*args, **kwargs)

    monkeypatch.setattr(pipeline, "compile_catalog", compiling)
    monkeypatch.setattr(statcache, "record", recording)
    code = run_cli(command, "catalog.yaml", "--out", "out", cwd=tmp_path)[0]
    assert code == 0
    assert services and alive == [0]


_FREED = """
import sys
from s402gen.allocator import map_large_blocks

def resident():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

if sys.argv[1] == "fixed" and not map_large_blocks():
    sys.exit(3)
big = bytearray(8 << 20)
del big  # a large block freed: glibc raises its mmap threshold to 8 MiB
blocks = [bytearray(1 << 20) for _ in range(64)]  # 64 MiB of blocks under that size
pin = bytearray(64 << 10)  # a heap block above them
before = resident()
del blocks
print((before - resident()) // 1024)
"""


@pytest.mark.slow
def test_large_blocks_freed_are_given_back_once_the_threshold_is_fixed() -> None:
    """What :func:`s402gen.allocator.map_large_blocks` is for: after a large block is
    freed, glibc serves blocks up to its size from the heap, under a block that stays, and
    keeps their 64 MiB resident once freed; with the threshold fixed, it gives them back."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's allocator")
    freed = {}
    for mode in ("default", "fixed"):
        done = subprocess.run(
            [sys.executable, "-c", _FREED, mode], capture_output=True, text=True, timeout=60
        )
        if done.returncode == 3:
            pytest.skip("no glibc mallopt")
        assert done.returncode == 0, done.stderr
        freed[mode] = int(done.stdout)
    assert freed["default"] < 16 and freed["fixed"] >= 56, freed

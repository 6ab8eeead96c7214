"""The runtime stands apart: a generated route module imports none of the compiler."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import GENERATED, ROOT

#: What a route module must not load: the compiler's libraries and its own modules.
COMPILER_LIBRARIES = ("jinja2", "yaml", "black")
COMPILER_MODULES = (
    "s402gen.pipeline",
    "s402gen.model",
    "s402gen.model_base",
    "s402gen.model_defaults",
    "s402gen.model_parameters",
    "s402gen.derive",
    "s402gen.render",
    "s402gen.validate",
    "s402gen.load",
    "s402gen.write",
    "s402gen.cli",
    "s402gen.ir",
    "s402gen.diagnostics",
    "s402gen.config",
    "s402gen.cache",
    "s402gen.importer",
    "s402gen.import_cli",
    "s402gen.import_recover",
    "s402gen.breaking",
    "s402gen.upstream_check",
)

#: Prints, as JSON, the modules loaded after importing the files named in argv.
PROBE = """
import importlib.util, json, sys
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"probe_{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__name__
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_after(*paths: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout))


def _compiler(loaded: set[str]) -> list[str]:
    return sorted(
        name
        for name in loaded
        if name.split(".")[0] in COMPILER_LIBRARIES
        or any(name == m or name.startswith(m + ".") for m in COMPILER_MODULES)
    )


@pytest.mark.slow
def test_a_generated_route_module_imports_none_of_the_compiler() -> None:
    routes = sorted(str(p) for p in (GENERATED / "routes").glob("*.py"))
    loaded = _loaded_after(routes[0], str(GENERATED / "routes" / "face_detection.py"))
    assert "s402gen.runtime.spec" in loaded  # the probe really imported a route module
    assert _compiler(loaded) == []
    assert "fastapi" not in loaded and "mcp" not in loaded  # nor the web framework


@pytest.mark.slow
def test_the_probe_sees_the_compiler_when_it_is_imported(tmp_path) -> None:
    """The check above can fail: a module that imports the compiler is caught."""
    module = tmp_path / "uses_compiler.py"
    # the pipeline imports the render (Jinja) only when rendering: both named
    module.write_text("import s402gen.pipeline\nimport s402gen.render\n", encoding="utf-8")
    found = _compiler(_loaded_after(str(module)))
    assert {"jinja2", "yaml", "s402gen.pipeline", "s402gen.render"} <= set(found)

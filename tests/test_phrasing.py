"""Each phrase of the catalog, forward (derive) and back (import), on the real catalog."""

from __future__ import annotations

import pytest
import yaml

from s402gen import compile_catalog, phrasing

from .conftest import CATALOG

RAW = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
DEFAULTS = RAW["defaults"]
AUTHORED = {service["id"]: service for service in RAW["services"]}
SERVICES = compile_catalog(CATALOG).catalog.services


@pytest.mark.parametrize("svc", SERVICES, ids=lambda svc: svc.id)
def test_every_phrase_of_the_real_catalog_parses_back(svc) -> None:
    authored = AUTHORED[svc.id]
    action = authored["action"]
    if "name" not in authored:
        assert phrasing.name_suffix(svc.texts.name, action) == DEFAULTS["nameSuffix"]
    if "task" not in authored:
        assert (
            phrasing.task_summary(svc.texts.task, DEFAULTS["taskTemplate"]) == svc.texts.summary_zh
        )
    template = phrasing.description_template(
        svc.texts.description,
        svc.texts.task,
        svc.input_schema["properties"],
        svc.input_schema["required"],
    )
    if svc.input_schema["properties"]:  # without parameters, {parameters} cannot be found
        assert template == DEFAULTS["descriptionTemplate"]
    else:
        assert template is None
    if "legacyId" not in authored:
        provider = RAW["providers"][authored.get("provider", DEFAULTS["provider"])]
        assert phrasing.legacy_prefix(svc.legacy_id, action) == provider["legacyIdPrefix"]
    assert svc.module == phrasing.tool_name(svc.id)


def test_inverses_refuse_what_the_forward_function_cannot_give() -> None:
    assert phrasing.name_suffix("Something Else", "DetectFace") is None
    assert phrasing.task_summary("an own task", "the task of {summary}") is None
    assert phrasing.legacy_prefix("vendor-other-thing", "DetectFace") is None
    # an unknown placeholder is left as written (the model rejects such a template)
    assert phrasing.describe("Needs {task}; {oops}.", "x", ["A"], []) == "Needs x; {oops}."
    assert phrasing.description_template("no parts here", "x", ["A"], ["A"]) is None
    text = phrasing.parameter_description(DEFAULTS["parameterDescription"], "ImageURL")
    assert phrasing.parameter_template(text, "ImageURL") == DEFAULTS["parameterDescription"]
    assert phrasing.required_clause(["B", "A", "B"]) == "required parameters: A, B"
    assert phrasing.required_clause([]) == "no required parameters"

"""The catalog's phrases: each one made from a few authored values, next to its inverse.

``derive`` phrases a service (its name, task, description, legacy id, tool
name, parameter descriptions, keywords) with the forward functions here;
``s402gen import`` recovers the authored values from a published catalog
with the inverse written right under each one, so the two cannot drift.
The marketplace's templates are the authoring model's documented examples
(:func:`example`), never copied.

Pure functions over strings; no diagnostics (the authoring model has
checked every template's placeholders, ``model_defaults.TEMPLATE_PLACEHOLDERS``).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from . import model_defaults
from .model_defaults import PLACEHOLDER

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+")


def example(key: str) -> Any:
    """The authoring model's documented example of ``defaults.<key>`` (snake_case field
    name): the marketplace's own phrase, for an import whose input shows none."""
    return model_defaults.Defaults.model_fields[key].examples[0]


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """Items in first-seen order without repeats."""
    return tuple(dict.fromkeys(items))


def split_words(action: str) -> list[str]:
    """``DeleteFaceDb`` -> ``["Delete", "Face", "Db"]``."""
    return _WORD.findall(action)


def kebab(action: str) -> str:
    """``DeleteFaceDb`` -> ``delete-face-db``."""
    return "-".join(word.lower() for word in split_words(action))


def fill(template: str, **values: str) -> str:
    """``template`` with its ``{name}`` placeholders filled from ``values``.

    Plain names only (no ``str.format`` fields); a placeholder ``values`` has
    no value for is left as written (the model rejects such templates).
    """
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), template)


# --- name: the action's words and a shared suffix


def service_name(action: str, suffix: str) -> str:
    """``DetectFace`` + ``Face And Body Analysis`` -> ``Detect Face Face And Body Analysis``."""
    return " ".join(split_words(action) + [suffix])


def name_suffix(name: str, action: str) -> str | None:
    """Inverse of :func:`service_name`: the suffix, or ``None`` if ``name`` is not so made."""
    words = " ".join(split_words(action))
    return name[len(words) + 1 :] if name.startswith(words + " ") else None


# --- task: a template around the Chinese summary


def task_phrase(template: str, summary: str) -> str:
    """The task phrase: ``template`` with ``{summary}`` filled (see :func:`fill`)."""
    return fill(template, summary=summary)


def task_summary(task: str, template: str) -> str | None:
    """Inverse of :func:`task_phrase` for a template ending in ``{summary}``; ``None`` if
    ``task`` does not start with the template's text."""
    prefix = template.removesuffix("{summary}")
    return task[len(prefix) :] if task.startswith(prefix) and len(task) > len(prefix) else None


# --- description: a template around the task, the parameters and the required clause


def required_clause(required: Iterable[str]) -> str:
    """``required parameters: A, B`` (sorted, no repeats), or ``no required parameters``."""
    names = sorted(set(required))
    return f"required parameters: {', '.join(names)}" if names else "no required parameters"


def describe(template: str, task: str, parameters: Iterable[str], required: Iterable[str]) -> str:
    """The description: ``template`` with ``{task}``, ``{parameters}`` (sorted names) and
    ``{required}`` (:func:`required_clause`) filled (see :func:`fill`)."""
    return fill(
        template,
        task=task,
        parameters=", ".join(sorted(parameters)),
        required=required_clause(required),
    )


def description_template(
    description: str, task: str, parameters: Iterable[str], required: Iterable[str]
) -> str | None:
    """Inverse of :func:`describe`: the template, if ``description`` shows all three parts
    in order and has no other placeholder; else ``None`` (also without any parameter:
    an empty ``{parameters}`` cannot be located)."""
    params, clause = ", ".join(sorted(parameters)), required_clause(required)
    start = description.find(task)
    middle = description.find(params, start + len(task)) if start >= 0 and params else -1
    end = description.find(clause, middle + len(params)) if middle >= 0 else -1
    template = (
        f"{description[:start]}{{task}}{description[start + len(task) : middle]}{{parameters}}"
        f"{description[middle + len(params) : end]}{{required}}{description[end + len(clause) :]}"
    )
    placeholders = set(PLACEHOLDER.findall(template))
    return template if end >= 0 and placeholders <= {"task", "parameters", "required"} else None


# --- legacy id: the provider's prefix and the action in kebab case


def legacy_id(prefix: str, action: str) -> str:
    """``aliyun-facebody-`` + ``DetectFace`` -> ``aliyun-facebody-detect-face``."""
    return prefix + kebab(action)


def legacy_prefix(legacy: str, action: str) -> str | None:
    """Inverse of :func:`legacy_id`: the prefix, or ``None`` if ``legacy`` is not so made."""
    tail = kebab(action)
    return legacy[: -len(tail)] if tail and legacy.endswith(tail) else None


# --- tool name (and route module name): the id with ``-`` turned into ``_``


def tool_name(service_id: str) -> str:
    """``face-detection`` -> ``face_detection`` (the default tool and module name)."""
    return service_id.replace("-", "_")


# --- parameter description: a template around the parameter's name


def parameter_description(template: str, name: str) -> str:
    """``Alibaba Cloud RPC parameter {name}.`` for ``ImageURL``."""
    return template.replace("{name}", name)


def parameter_template(description: str, name: str) -> str:
    """Inverse of :func:`parameter_description` (the name put back as ``{name}``)."""
    return description.replace(name, "{name}")


# --- keywords: the action, the title, shared ones, the action's words, the service's own


def title_keyword(label: str, title_zh: str) -> str:
    """The provider's label and the Chinese title: ``阿里云人脸人体 人脸检测``."""
    return f"{label} {title_zh}"


def keywords(
    action: str, label: str, title_zh: str, shared: Iterable[str], own: Iterable[str]
) -> tuple[str, ...]:
    """The action, :func:`title_keyword` (when titled), ``shared``, the action's words in
    lower case, then ``own``; without repeats. The importer's inverse is in
    ``import_recover.Importer._keywords_and_providers`` (it needs every service at once)."""
    title = [title_keyword(label, title_zh)] if title_zh else []
    return unique([action, *title, *shared, *action_words(action), *own])


def action_words(action: str) -> list[str]:
    """The action's words in lower case: ``DetectFace`` -> ``["detect", "face"]``."""
    return [word.lower() for word in split_words(action)]

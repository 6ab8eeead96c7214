"""What ``s402gen import`` recovers from catalog entries: the catalog.yaml that compiles back.

:class:`Importer` reads the entries (each an :data:`s402gen.import_input.ImportEntry`) and
writes what catalog.yaml keeps once (``defaults:``, providers, pricing policies, payment
providers, presets; the most common value wins) and what each service keeps of its own
(where it differs); once the result compiles, the explicit exampleRequest/errorExamples
where the derived ones differ; after the last compile, every static field still not
reproduced, as a note. :mod:`s402gen.importer` drives it and writes the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import ir, model_base, model_defaults, phrasing, render
from .derive import example_value
from .import_input import GENERATED_AT_PATTERN
from .phrasing import kebab, unique
from .runtime import contract
from .runtime.validation import RequestError, RequestValidator

_SCHEMA_KEYS = ("type", "format", "enum", "minimum", "maximum", "items")
_DEFAULT = "\x00default"  # a parameter described by defaults.parameterDescription
#: The keys a service overrides where it differs from ``defaults:``, each read off an entry.
_OVERRIDABLE = {
    "category": lambda e: e.category,
    "tags": lambda e: e.tags,
    "limitations": lambda e: e.limitations,
    "complexity": lambda e: e.complexity,
    "typicalResponseTime": lambda e: e.typical_response_time,
    "cacheable": lambda e: e.cacheable,
    "idempotent": lambda e: e.idempotent,
    "outputFormat": lambda e: e.output_format,
    "sla": lambda e: e.sla.to_json(),
}


def most_common(values: list[Any], default: Any = None) -> Any:
    """The value seen most often (the first seen on a tie); ``default`` when none."""
    counts: dict[str, list[Any]] = {}
    for value in values:
        counts.setdefault(json.dumps(value, sort_keys=True), [0, value])[0] += 1
    return max(counts.values(), key=lambda count: count[0])[1] if counts else default


def _common_prefix(lists: list[list[Any]]) -> list[Any]:
    prefix = list(lists[0]) if lists else []
    for items in lists[1:]:
        end = next((i for i, (a, b) in enumerate(zip(prefix, items)) if a != b), None)
        prefix = prefix[: min(len(prefix), len(items)) if end is None else end]
    return prefix


def order_properties(props: dict[str, Any], types: list[str], root: str) -> list[str] | None:
    """Names of ``props`` in an order whose types give ``types`` (see derive.schema_types).

    Alphabetical where that works: a property moves up only when its type must
    show earlier. ``None`` when no order gives ``types``.
    """
    remaining, seen, order = sorted(props), [root], []
    while remaining:
        for name in remaining:
            prop = props[name] if isinstance(props[name], dict) else {}
            kinds = prop.get("type", [])
            tokens = [kinds] if isinstance(kinds, str) else [str(k) for k in kinds]
            tokens += [str(prop["format"])] if "format" in prop else []
            new = [t for t in unique(tokens) if t not in seen]
            if new == types[len(seen) : len(seen) + len(new)]:
                order, seen = order + [name], seen + new
                remaining.remove(name)
                break
        else:
            return None
    return order if seen == list(types) else None


def _readable(schema: Any, types: list[str] | None = None) -> Any:
    """``schema`` with type, format and description first at every level; with ``types``, its
    properties in :func:`order_properties` order (derive sorts the rest again)."""
    if not isinstance(schema, (dict, list)):
        return schema
    if isinstance(schema, list):
        return [_readable(item) for item in schema]
    tidy = {}
    for key in unique([*(k for k in ("type", "format", "description") if k in schema), *schema]):
        value = schema[key]
        if key == "properties" and isinstance(value, dict):  # names, not keywords: keep order
            order = order_properties(value, types, schema.get("type", "object")) if types else None
            tidy[key] = {name: _readable(value[name]) for name in order or value}
        else:
            tidy[key] = _readable(value)
    return tidy


def _output_types(entry: Any) -> list[str]:
    return entry.output_types or []


def _schema_description(entry: Any) -> str:
    return entry.input_schema.get("description", "")


def _plain(spec: dict) -> bool:
    return set(spec) == {"type", "description"} and spec["description"] == _DEFAULT


class Importer:
    """What the catalog.yaml of ``entries`` (each an :data:`ImportEntry`) holds: :attr:`tree`
    (its sections but the services), :attr:`fields` (each service's keys) and :attr:`notes`
    (what it cannot carry). ``published`` are the same entries as given (JSON); the first
    ``imported`` come from FILE (``file``), the rest from ``source``; ``upstream`` is the
    provider of the imported ones."""

    def __init__(
        self,
        entries: list[Any],
        published: list[dict],
        file: str,
        imported: int,
        source: str | None,
        upstream: dict[str, str],
    ):
        self.entries, self.published = entries, published  # verify compares the published ones
        self.file, self.imported, self.source = file, imported, source
        self.upstream = upstream
        self.ids = [entry.id for entry in self.entries]
        self.notes: dict[str, list[tuple[str, str]]] = {sid: [] for sid in ["", *self.ids]}
        self.fields = {e.id: {"action": e.example_response.data.action} for e in self.entries}
        self.defaults: dict[str, Any] = {}
        self.tree: dict[str, Any] = {}

    def note(self, sid: str, field: str, message: str) -> None:
        """Record what catalog.yaml cannot carry as published (``sid`` "" if catalog-wide)."""
        self.notes[sid].append((field, message))

    def values(self, get: Any) -> dict[str, Any]:
        """``{service id: get(entry)}``."""
        return {entry.id: get(entry) for entry in self.entries}

    def build(self, generated_at: Any) -> None:
        """Fill :attr:`tree` (all but the services) and :attr:`fields` (each service's keys)."""
        catalog = {"generatedAt": generated_at}
        if not (isinstance(generated_at, str) and GENERATED_AT_PATTERN.match(generated_at)):
            catalog = {}
            if generated_at is not None:
                self.note("", "generatedAt", f"{generated_at!r} is not a UTC time; left out")
        providers = self._keywords_and_providers()
        self._texts()
        for key, get in _OVERRIDABLE.items():
            self._factor(key, self.values(get))
        self._factor("useCases", self.values(lambda e: e.use_cases[1:]), override=False)
        self._factor("pricingPolicy", self.values(lambda e: e.pricing.policy_id))
        self._factor("paymentProvider", self.values(lambda e: e.payment.provider_id))
        self._related()
        presets = self._params()
        schemas, types = self.values(lambda e: e.output_schema), self.values(_output_types)
        self._factor("outputSchema", schemas)
        first = next(sid for sid in self.ids if schemas[sid] == self.defaults["outputSchema"])
        self.defaults["outputSchema"] = _readable(schemas[first], types[first])
        for sid in self.ids:
            if "outputSchema" in self.fields[sid]:
                self.fields[sid]["outputSchema"] = _readable(schemas[sid], types[sid])
        order = [field.alias for field in model_defaults.Defaults.model_fields.values()]
        rank = {key: order.index(key) if key in order else len(order) for key in self.defaults}
        defaults = {key: self.defaults[key] for key in sorted(rank, key=rank.__getitem__)}
        first_wins = list(reversed(self.entries))
        self.tree = {
            **({"catalog": catalog} if catalog else {}),
            "providers": providers,
            "pricingPolicies": {  # a policy: the pricing without its id
                e.pricing.policy_id: e.pricing.model_dump(by_alias=True, exclude={"policy_id"})
                for e in first_wins
            },
            "paymentProviders": {
                e.payment.provider_id: {"provider": e.payment.provider} for e in first_wins
            },
            "presets": presets,
            "defaults": defaults,
        }

    def _factor(self, key: str, values: dict[str, Any], override: bool = True) -> None:
        self.defaults[key] = most_common(list(values.values()))
        for sid, value in values.items():
            if override and value != self.defaults[key]:
                self.fields[sid][key] = value

    def _keywords_and_providers(self) -> dict[str, Any]:
        """Shared keywords; titleZh, extra keywords, legacyId; one provider per title label."""
        keywords = self.values(lambda e: e.keywords)
        heads = {sid: kw[1] if len(kw) > 1 else "" for sid, kw in keywords.items()}
        main = most_common([h.split(" ", 1)[0] for h in heads.values() if " " in h], "")
        label = {s: main if main and h.startswith(main + " ") else None for s, h in heads.items()}
        rest = {sid: keywords[sid][2 if label[sid] else 1 :] for sid in self.ids}
        common = _common_prefix([rest[s] for s in self.ids if label[s]] or list(rest.values()))
        for sid in self.ids:  # a title keyword under another label: another provider
            if label[sid] is None and " " in heads[sid] and heads[sid] not in common:
                label[sid], rest[sid] = heads[sid].split(" ", 1)[0], keywords[sid][2:]

        def words(sid: str, cut: int) -> list[str]:  # the action's words, as derive adds them
            seen = set(keywords[sid][: 2 if label[sid] else 1] + common[:cut])
            action = unique(phrasing.action_words(self.fields[sid]["action"]))
            return [word for word in action if word not in seen]

        def fits(sid: str, cut: int) -> bool:
            return rest[sid][: cut + len(words(sid, cut))] == common[:cut] + words(sid, cut)

        cut = next((j for j in range(len(common)) if all(fits(s, j) for s in self.ids)), None)
        self.defaults["keywords"] = common = common[: len(common) if cut is None else cut]
        names = {main: self.upstream["product"]}
        for sid in self.ids:
            expected = words(sid, len(common))
            extra = (
                rest[sid][len(common) + len(expected) :] if fits(sid, len(common)) else rest[sid]
            )
            extra = [k for k in extra if k not in common + expected]
            self.fields[sid].update({"keywords": extra} if extra else {})
            if label[sid] is not None:
                self.fields[sid]["titleZh"] = heads[sid][len(label[sid]) + 1 :]
            if (label[sid] or main) not in names:
                names[label[sid]] = f"{self.upstream['product']}-{len(names) + 1}"
                self.note("", f"providers.{names[label[sid]]}", f"{label[sid]}: upstream assumed")
            self.fields[sid]["provider"] = names[label[sid] or main]
        providers = {}
        for lab, name in names.items():
            legacy = {  # id: (legacy id, action)
                e.id: (e.internal_service_id, self.fields[e.id]["action"])
                for e in self.entries
                if self.fields[e.id]["provider"] == name
            }
            prefixes = [phrasing.legacy_prefix(i, action) for i, action in legacy.values()]
            prefix = most_common([p for p in prefixes if p is not None], "")
            providers[name] = {**self.upstream, "labelZh": lab, "legacyIdPrefix": prefix}
            for sid, (legacy_id, action) in legacy.items():
                derived = phrasing.legacy_id(prefix, action)
                self.fields[sid].update({} if legacy_id == derived else {"legacyId": legacy_id})
        self.defaults["provider"] = self.upstream["product"]
        for sid in self.ids:
            if self.fields[sid]["provider"] == self.upstream["product"]:
                del self.fields[sid]["provider"]
        return providers

    def _texts(self) -> None:
        """Name suffix, task and description templates; each summaryZh (or task), name, tool."""
        actions = {sid: self.fields[sid]["action"] for sid in self.ids}
        names = self.values(lambda e: e.name)
        suffixes = [phrasing.name_suffix(n, actions[s]) for s, n in names.items()]
        self.defaults["nameSuffix"] = suffix = most_common(
            [s for s in suffixes if s is not None], ""
        )
        tasks = self.values(lambda e: e.use_cases[0])
        heads = [m.group(1) for t in tasks.values() if (m := re.match(r"([ -~]*\s)[^ -~]", t))]
        prefix = most_common([h for h in heads if not phrasing.PLACEHOLDER.search(h)])
        template = prefix + "{summary}" if prefix else phrasing.example("task_template")
        self.defaults["taskTemplate"] = template
        for e in self.entries:
            sid, fields, task = e.id, self.fields[e.id], tasks[e.id]
            summary = phrasing.task_summary(task, template)
            if summary is not None:
                fields["summaryZh"] = summary
            else:
                fields["task"], fields["summaryZh"] = task, fields.get("titleZh") or task
                self.note(sid, "summaryZh", "not published (own task): the title, review it")
            derived = phrasing.service_name(actions[sid], suffix)
            fields.update({"name": names[sid]} if names[sid] != derived else {})
            tool = e.discovery.tool_name if e.discovery else None
            tool = phrasing.tool_name(sid) if tool is None else tool
            fields.update({"toolName": tool} if tool != phrasing.tool_name(sid) else {})
        templates = [
            phrasing.description_template(
                e.description,
                tasks[e.id],
                e.input_schema["properties"],
                e.input_schema.get("required", []),
            )
            for e in self.entries
        ]
        self.defaults["descriptionTemplate"] = most_common(
            [t for t in templates if t], phrasing.example("description_template")
        )

    def _related(self) -> None:
        """relatedServices: a shared candidate list and limit; explicit lists where needed."""
        wanted = {}
        for e in self.entries:
            sid, published = e.id, e.related_services
            wanted[sid] = list(unique(r for r in published if r in self.ids and r != sid))
            if wanted[sid] != published:
                gone = ", ".join(r for r in unique(published) if r not in wanted[sid])
                self.note(sid, "relatedServices", f"left out {gone} (S402-E017); was {published}")
        limit = most_common([len(w) for w in wanted.values()], 0)
        shared = most_common(list(wanted.values()), [])

        def matches(names: list[str]) -> set[str]:
            return {s for s in self.ids if [n for n in names if n != s][:limit] == wanted[s]}

        for sid in self.ids:  # extend the shared list where that serves more services
            current = [n for n in shared if n != sid][:limit]
            longer = shared + [n for n in wanted[sid][len(current) :] if n not in shared]
            if wanted[sid][: len(current)] == current and matches(shared) < matches(longer):
                shared = longer
        self.defaults["relatedServices"], self.defaults["relatedServicesLimit"] = shared, limit
        for sid in self.ids:
            if sid not in matches(shared):
                self.fields[sid]["relatedServices"] = wanted[sid]

    def _params(self) -> dict[str, Any]:
        """Parameters (presets for the repeated ones), required and requiredContext."""
        props_of = self.values(lambda e: e.input_schema["properties"])
        described = [
            phrasing.parameter_template(text, name)
            for props in props_of.values()
            for name, prop in props.items()
            if name in (text := str(prop.get("description", "")))
        ]
        template = self.defaults["parameterDescription"] = most_common(
            described, phrasing.example("parameter_description")
        )
        self._factor("inputSchemaDescription", self.values(_schema_description), False)
        self._factor(
            "exampleResult",
            self.values(lambda e: e.example_response.data.result),
            False,
        )
        specs: dict[tuple[str, str], dict] = {}
        known: dict[tuple[str, str], Any] = {}  # the examples exampleRequest shows
        groups: dict[str, list[tuple[str, str]]] = {}
        for e in self.entries:
            sid, request, schema = e.id, e.example_request, e.input_schema
            derivable = isinstance(request, dict) and set(request) == set(
                schema.get("required", [])
            )
            for name, prop in props_of[sid].items():
                for extra in sorted(set(prop) - {*_SCHEMA_KEYS, "description"}):
                    self.note(sid, f"inputSchema.properties.{name}.{extra}", "not expressible")
                spec = {k: prop[k] for k in _SCHEMA_KEYS if k in prop}
                if spec.get("type") not in model_base.JSON_TYPES:
                    self.note(sid, f"inputSchema.properties.{name}.type", "not a JSON type name")
                    spec["type"] = "string"
                description = prop.get("description", _DEFAULT)
                default = description == template.replace("{name}", name)
                specs[(sid, name)] = {**spec, "description": _DEFAULT if default else description}
                group = groups.setdefault(json.dumps(specs[(sid, name)], sort_keys=True), [])
                group.append((sid, name))
                if derivable and request.get(name) is not None:
                    known[(sid, name)] = request[name]
        presets, preset_of = self._presets(groups, specs, known)
        for e in self.entries:
            sid, fields = e.id, self.fields[e.id]
            order = order_properties(props_of[sid], e.input_types or [], "object")
            params = {}
            for name in order or sorted(props_of[sid]):
                spec, example = specs[(sid, name)], known.get((sid, name))
                preset = preset_of.get((sid, name))
                default = (presets[preset] if preset else {}).get("example")
                default = example_value(name, spec) if default is None else default
                own = {"example": example} if example is not None and example != default else {}
                if preset or _plain(spec):
                    key, short = ("preset", preset) if preset else ("type", spec["type"])
                    params[name] = {key: short, **own} if own else short
                else:
                    params[name] = _readable({k: v for k, v in spec.items() if v != _DEFAULT})
                    params[name].update(own)
            fields.update({"params": params} if params else {})
            if e.input_schema.get("required"):
                fields["required"] = list(e.input_schema["required"])
            self._context(e, list(params), preset_of, presets)
        return presets

    def _presets(self, groups: dict, specs: dict, known: dict) -> tuple[dict, dict]:
        """A preset per repeated parameter schema, with the example sparing most overrides."""
        presets: dict[str, Any] = {}
        preset_of: dict[tuple[str, str], str] = {}
        for members in groups.values():
            spec = specs[members[0]]
            if len(members) < 2 or _plain(spec):
                continue
            kebabs = [kebab(name) for _, name in members]
            base = most_common(kebabs)
            if 2 * kebabs.count(base) <= len(kebabs):  # no majority name: from the description
                text = "" if spec["description"] == _DEFAULT else spec["description"]
                words = re.findall(r"[a-z0-9]+", text.lower())[:4]
                base = "-".join(words or [spec["type"], spec.get("format", "param")])
            name, number = base, 1
            while name in presets or name in model_base.JSON_TYPES:
                number, name = number + 1, f"{base}-{number + 1}"
            presets[name] = _readable({k: v for k, v in spec.items() if v != _DEFAULT})
            best, score = None, -1
            for candidate in [None, *(known[m] for m in members if m in known)]:
                hits = sum(
                    known[m] == (example_value(m[1], spec) if candidate is None else candidate)
                    for m in members
                    if m in known
                )
                if hits > score and (candidate is None or hits >= 2):
                    best, score = candidate, hits
            presets[name].update({"example": best} if best is not None else {})
            preset_of.update((member, name) for member in members)
        lists = self.values(lambda e: e.required_context)
        base_context = _common_prefix([list(reversed(v)) for v in lists.values()])[::-1]
        self.defaults["requiredContext"] = base_context
        own = {sid: v[: len(v) - len(base_context)] for sid, v in lists.items()}
        for preset, spec in presets.items():  # a context that every service using it has
            users = unique(sid for (sid, _), p in preset_of.items() if p == preset)
            shared = set.intersection(*(set(own[s]) for s in users))
            first = [c for c in own[users[0]] if c in shared]
            spec.update({"requiredContext": first[0]} if first else {})
        return presets, preset_of

    def _context(self, entry: Any, order: list[str], preset_of: dict, presets: dict) -> None:
        sid, wanted, fields = entry.id, entry.required_context, self.fields[entry.id]
        contexts = {
            n: presets.get(preset_of.get((sid, n)), {}).get("requiredContext") for n in order
        }
        given = list(unique(c for c in contexts.values() if c))
        if list(unique(given + self.defaults["requiredContext"])) == wanted:
            return
        if wanted[: len(given)] == given and wanted[len(given) :]:
            fields["requiredContext"] = wanted[len(given) :]
            return
        for name in (n for n, c in contexts.items() if c):  # in the way: spell it all out
            param = fields["params"][name]
            param = {"preset": param} if isinstance(param, str) else param
            fields["params"][name] = {**param, "requiredContext": ""}
        fields.update({"requiredContext": wanted} if wanted else {})

    def refine(self, compiled: ir.Catalog) -> None:
        """Write explicit exampleRequest/errorExamples where the derived ones differ."""
        for svc, entry in zip(compiled.services, self.entries):
            fields, ours = self.fields[svc.id], render.catalog_entry(svc)
            request = entry.example_request
            if request is not None and ours.example_request != request:
                fields["exampleRequest"] = request
            if [e.to_json() for e in ours.error_examples] == [
                e.to_json() for e in entry.error_examples
            ]:
                continue
            route, fields["errorExamples"] = RequestValidator.for_spec(svc.route), []
            for position, example in enumerate(entry.error_examples):
                status = 400 if example.status_code is None else example.status_code
                try:
                    route.arguments(example.input)
                    why = "its input schema accepts it (S402-E025)"
                except RequestError as refused:
                    if (str(refused), 400) == (example.error, status):
                        kept = {"input": example.input, "error": example.error}
                        fields["errorExamples"].append({**kept, "statusCode": status})
                        continue
                    why = f"the route answers 400 {str(refused)!r} (S402-E094)"
                promise = f"{_short(example.input)} promises {status} {example.error!r}"
                self.note(svc.id, f"errorExamples[{position}]", f"{promise}, but {why}; left out")

    def verify(self, compiled: ir.Catalog) -> None:
        """Note every static field the compiled catalog does not reproduce."""
        for svc, entry in zip(compiled.services, self.published):
            noted = [field for field, _ in self.notes[svc.id]]
            for path, message in _differences(entry, render.catalog_entry(svc).to_json(), ""):
                if not any(path.startswith(n) or n.startswith(path) for n in noted):
                    self.note(svc.id, path, message)

    def warnings(self) -> list[tuple[str, str, str]]:
        """Every note: ``(SERVICE, FIELD, message)`` (catalog-wide ones first, SERVICE ``""``)."""
        return [(sid, field, message) for sid, n in self.notes.items() for field, message in n]


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _differences(theirs: Any, ours: Any, path: str) -> list[tuple[str, str]]:
    """``(dotted path, message)`` where ``ours`` differs from ``theirs`` (runtime fields skipped)."""
    if theirs == ours:
        return []
    if isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        pairs = zip(theirs, ours)
        return [d for i, (a, b) in enumerate(pairs) for d in _differences(a, b, f"{path}[{i}]")]
    if not (isinstance(theirs, dict) and isinstance(ours, dict)):
        return [(path, f"the compiled catalog gives {_short(ours)} instead of {_short(theirs)}")]
    found = []
    for key in unique([*theirs, *ours]):
        where = f"{path}.{key}" if path else key
        if path == "" and key in contract.RUNTIME_FIELDS:
            continue
        if key not in ours:
            found.append((where, "not expressible in catalog.yaml; the compiled catalog lacks it"))
        elif key not in theirs:
            found.append((where, f"not in the input; the compiled one adds {_short(ours[key])}"))
        else:
            found += _differences(theirs[key], ours[key], where)
    return found

"""Catalog search: rank the compiled catalog's services for a query, English or Chinese.

Answers in the ``server402.catalog.search.v1`` format: the query, the terms
it expanded to, and per service a ``matchScore``, the ``matchTerms`` that
scored and a ``why`` sentence. Ranking is plain term matching over each
entry's id, aliases, keywords and searchText; Chinese text is matched as
substrings, since it has no spaces to split on. Query expansions come from
the catalog: each category's ``synonyms`` (:class:`Categories`), applied to
that category's services only; ``category`` filters the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .contract import CatalogDocument, CatalogEntry, Quality
from .spec import price_label

#: Where a build writes the declared categories (:class:`Categories`), under ``generated/``.
CATEGORIES_FILE = "catalog/categories.json"


class CategoryInfo(BaseModel):
    """One declared category as published in :data:`CATEGORIES_FILE`: its labels, its
    services (ids, catalog order) and its search ``synonyms``: a query word (English, a
    whole word) or Chinese text (anywhere in the query) adds the terms it maps to."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    id: str
    label: str
    label_zh: str
    description: str
    synonyms: dict[str, list[str]]
    services: list[str]


class Categories(BaseModel):
    """The content of :data:`CATEGORIES_FILE` (absent when the catalog declares none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: list[CategoryInfo]

    def to_json(self) -> dict:
        """The JSON value, keys camelCase."""
        return self.model_dump(by_alias=True, mode="json")


_WORD = re.compile(r"[a-z0-9]+|[^\x00-\x7f]+")

SCORE_ID = 200  # the query is the service id (or its tool name)
SCORE_PHRASE = 50  # the whole query appears in the name, keywords or searchText
SCORE_ALIAS = 20  # a query word is one of the aliases' words
SCORE_TEXT = 5  # a query word appears in the searchText
SCORE_EXPANDED = 3  # an expanded term appears in the searchText
DEFAULT_LIMIT = 10
MAX_LIMIT = 50


@dataclass(frozen=True)
class _Indexed:
    position: int
    entry: CatalogEntry
    ids: frozenset[str]
    alias_words: frozenset[str]
    text: str


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class CatalogSearch:
    """An index over a compiled catalog document (catalog.json) and its categories."""

    def __init__(self, catalog: CatalogDocument, categories: Categories | None = None):
        self.catalog = catalog
        self.synonyms = {c.id: c.synonyms for c in (categories.categories if categories else [])}
        self._index = [
            _Indexed(
                position,
                entry,
                frozenset({entry.id, entry.discovery.tool_name, entry.internal_service_id}),
                frozenset(w for alias in entry.discovery.aliases for w in _words(alias)),
                entry.discovery.search_text.lower(),
            )
            for position, entry in enumerate(catalog.services)
        ]

    def expand(self, query: str) -> dict[str, list[str]]:
        """Per category, the terms its synonyms add for ``query`` (sorted, as the live
        catalog lists them); categories that add none are left out."""
        lowered = query.lower()
        words = _words(lowered)
        found: dict[str, list[str]] = {}
        for category, synonyms in self.synonyms.items():
            terms: set[str] = set()
            for trigger, more in synonyms.items():
                key = trigger.lower()
                if (key in words) if key.isascii() else (key in lowered):
                    terms.update(more)
            if terms:
                found[category] = sorted(terms)
        return found

    def _score(
        self, item: _Indexed, query: str, words: list[str], expanded: list[str]
    ) -> tuple[int, list[str]]:
        score = 0
        terms: list[str] = []
        phrase = " ".join(words)
        if query in item.ids:
            score += SCORE_ID
        if phrase and phrase in item.text:
            score += SCORE_PHRASE
            terms.append(phrase)
        for word in dict.fromkeys(words):
            if word in item.alias_words:
                score += SCORE_ALIAS
            elif word in item.text:
                score += SCORE_TEXT
            else:
                continue
            if word != phrase:
                terms.append(word)
        for term in expanded:
            if term.lower() in item.text:
                score += SCORE_EXPANDED
                terms.append(term)
        return score, terms

    def search(
        self,
        query: str,
        limit: int = DEFAULT_LIMIT,
        quality: Callable[[str], Quality] | None = None,
        category: str | None = None,
    ) -> CatalogDocument:
        """The search answer for ``query``; ``limit`` is clamped to 1..:data:`MAX_LIMIT`;
        ``category`` (an id) keeps only that category's services (none when unknown).

        ``quality(service_id)`` adds each result's runtime ``quality``.
        """
        limit = max(1, min(limit, MAX_LIMIT))
        query = query.strip()
        words = _words(query)
        expansions = self.expand(query)
        scored = []
        for item in self._index:
            if category and item.entry.category != category:
                continue
            expanded = expansions.get(item.entry.category, [])
            score, terms = self._score(item, query.lower(), words, expanded)
            if score > 0 or not query:
                scored.append((-score, item.position, item, terms, score))
        scored.sort(key=lambda row: (row[0], row[1]))
        services = [
            self._result(item.entry, score, terms, quality)
            for _, _, item, terms, score in scored[:limit]
        ]
        filters: dict[str, object] = {"limit": limit}
        if category:
            filters["category"] = category
        return self.catalog.model_copy(
            update={
                "query": query,
                "expanded_terms": sorted({t for terms in expansions.values() for t in terms}),
                "filters": filters,
                "total": len(scored),
                "services": services,
            }
        )

    @staticmethod
    def _result(
        entry: CatalogEntry,
        score: int,
        terms: Iterable[str],
        quality: Callable[[str], Quality] | None,
    ) -> CatalogEntry:
        terms = list(terms)
        price = price_label(entry.pricing.amount_cents, entry.pricing.currency)
        matched = f"Matched {', '.join(terms)} for" if terms else "Listed"
        return entry.model_copy(
            update={
                "quality": quality(entry.id) if quality is not None else None,
                "match_score": score,
                "match_terms": terms,
                "why": f'{matched} "{entry.name}". Price is {price} per policy '
                f"{entry.pricing.policy_id}.",
            }
        )

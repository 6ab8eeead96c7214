"""Catalog search: rank the compiled catalog's services for a query, English or Chinese.

Answers in the ``server402.catalog.search.v1`` format: the query, the terms
it expanded to, and per service a ``matchScore``, the ``matchTerms`` that
scored and a ``why`` sentence. Ranking is plain term matching over each
entry's id, aliases, keywords and searchText; Chinese text is matched as
substrings, since it has no spaces to split on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from .contract import CatalogDocument, CatalogEntry, Quality
from .spec import price_label

#: Query words that expand to related terms, English and Chinese (one group a line).
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("face", "face detection", "face recognition", "facial recognition",
     "人脸", "人脸检测", "人脸识别", "脸部识别"),
    ("body", "body detection", "pose estimation", "human analysis", "人体", "人体检测", "姿态"),
    ("liveness", "liveness detection", "anti-spoofing", "活体", "活体检测"),
    ("pedestrian", "pedestrian detection", "行人", "行人检测"),
)  # fmt: skip
_TRIGGERS = {
    trigger: group
    for group in SYNONYMS
    for trigger in (group[0], *(term for term in group[1:] if not term.isascii()))
}
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
    """An index over a compiled catalog document (catalog.json)."""

    def __init__(self, catalog: CatalogDocument):
        self.catalog = catalog
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

    @staticmethod
    def expand(query: str) -> list[str]:
        """Related terms of the query's words (sorted, as the live catalog lists them)."""
        lowered = query.lower()
        terms: set[str] = set()
        for trigger, group in _TRIGGERS.items():
            if (trigger in _words(lowered)) if trigger.isascii() else (trigger in lowered):
                terms.update(group[1:])
        return sorted(terms)

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
    ) -> CatalogDocument:
        """The search answer for ``query``; ``limit`` is clamped to 1..:data:`MAX_LIMIT`.

        ``quality(service_id)`` adds each result's runtime ``quality``.
        """
        limit = max(1, min(limit, MAX_LIMIT))
        query = query.strip()
        words = _words(query)
        expanded = self.expand(query)
        scored = []
        for item in self._index:
            score, terms = self._score(item, query.lower(), words, expanded)
            if score > 0 or not query:
                scored.append((-score, item.position, item, terms, score))
        scored.sort(key=lambda row: (row[0], row[1]))
        services = [
            self._result(item.entry, score, terms, quality)
            for _, _, item, terms, score in scored[:limit]
        ]
        return self.catalog.model_copy(
            update={
                "query": query,
                "expanded_terms": expanded,
                "filters": {"limit": limit},
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

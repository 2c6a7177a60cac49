"""The comment mart computed from plain values: theme counts per scope and the quotes shown.

``tally`` classifies each comment once (``matcher.themes``) and counts it in its school, keeping
each unit's quote candidates in small bounded pools, so memory does not grow with the number
of comments. Tallies of different units can be made apart (in different processes);
``summarise`` adds them up into units and the province and chooses the quotes.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from flows.comments.codebook import Codebook, bare
from flows.comments.matcher import Matcher, themes
from flows.privacy import mask_personal
from schemas.comments import Quote, ThemeCount
from warehouse.comments import Comment, Respondents

#: No quote from a scope, or a school, with fewer respondents: a comment from a small school
#: can be told apart by its wording.
MIN_QUOTE_RESPONDENTS = 10
#: Quotes shown per scope, questionnaire and theme.
QUOTES_PER_THEME = 3
#: A quote is cut at a word before this many characters.
QUOTE_CHARS = 300
#: The length of the most telling quotes: long enough to say something, short enough to read.
IDEAL_CHARS = 160
#: Candidates kept per scope, questionnaire and theme (the best by length).
POOL = 40
#: Two quotes sharing this share of their words (Jaccard, bare text) are one said twice.
NEAR_DUPLICATE = 0.6


@dataclass
class Tally:
    """What one pass over comments found: comments per school, questionnaire and theme, and the
    best quote candidates per unit, questionnaire and theme (at most POOL, a min-heap)."""

    hits: dict[tuple[str, str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    pools: dict[tuple[str, str, str], list[tuple[int, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def tally(
    respondents: Iterable[Respondents], comments: Iterable[Comment], matcher: Matcher
) -> Tally:
    """Classify ``comments`` and count them per school (key: school, unit, questionnaire,
    theme); a comment is a quote candidate when its school has ``MIN_QUOTE_RESPONDENTS``
    respondents to the questionnaire or more (``respondents``)."""
    quotable = {
        (r.school_code, r.questionnaire) for r in respondents if r.n >= MIN_QUOTE_RESPONDENTS
    }
    found = Tally()
    for c in comments:
        matched = themes(c.text, matcher)
        if not matched:
            continue
        for theme in matched:
            found.hits[(c.school_code, c.unit_code, c.questionnaire, theme)] += 1
        if (c.school_code, c.questionnaire) in quotable:
            scored = (-_distance(c.text), c.text)
            for theme in matched:
                _keep(found.pools[(c.unit_code, c.questionnaire, theme)], scored)
    return found


def summarise(
    campaign_id: str,
    province_code: str,
    respondents: Iterable[Respondents],
    tallies: Iterable[Tally],
    codebook: Codebook,
) -> tuple[list[ThemeCount], list[Quote]]:
    """Theme counts for every school, unit and the province that has comments, and up to
    ``QUOTES_PER_THEME`` quotes per unit and province, questionnaire and theme, from the
    ``tallies`` of all the campaign's comments."""
    n_scope: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in respondents:
        for scope, code in _scopes(r.school_code, r.unit_code, province_code):
            n_scope[(scope, code, r.questionnaire)] += r.n
    hits: dict[tuple[str, str, str, str], int] = defaultdict(int)
    pools: dict[tuple[str, str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for found in tallies:
        for (school, unit, questionnaire, theme), n in found.hits.items():
            for scope, code in _scopes(school, unit, province_code):
                hits[(scope, code, questionnaire, theme)] += n
        # The province's best POOL are among its units' best POOL.
        for (unit, questionnaire, theme), pool in found.pools.items():
            for scored in pool:
                _keep(pools[("unit", unit, questionnaire, theme)], scored)
                _keep(pools[("province", province_code, questionnaire, theme)], scored)
    counts = [
        ThemeCount(
            campaign_id,
            scope,
            code,
            questionnaire,
            theme,
            codebook.label(theme),
            codebook.dimension(theme),
            n,
            n_scope.get((scope, code, questionnaire), 0),
        )
        for (scope, code, questionnaire, theme), n in sorted(hits.items())
    ]
    quotes = [
        Quote(campaign_id, scope, code, questionnaire, theme, rank, text)
        for (scope, code, questionnaire, theme), pool in sorted(pools.items())
        if n_scope.get((scope, code, questionnaire), 0) >= MIN_QUOTE_RESPONDENTS
        for rank, text in enumerate(choose_quotes([text for _, text in pool]), start=1)
    ]
    return counts, quotes


def _scopes(school: str, unit: str, province: str) -> tuple[tuple[str, str], ...]:
    return (("school", school), ("unit", unit), ("province", province))


def _keep(pool: list[tuple[int, str]], scored: tuple[int, str]) -> None:
    """Keep the POOL best candidates (a min-heap: the worst on top)."""
    if len(pool) < POOL:
        heapq.heappush(pool, scored)
    elif scored > pool[0]:
        heapq.heapreplace(pool, scored)


def choose_quotes(candidates: Iterable[str], k: int = QUOTES_PER_THEME) -> list[str]:
    """Up to ``k`` of ``candidates``: those closest to IDEAL_CHARS long first, skipping any
    near-duplicate of one already chosen; masked (``mask_personal``) and cut at a word before
    QUOTE_CHARS characters."""
    ordered = sorted(set(candidates), key=lambda s: (_distance(s), s))
    chosen: list[str] = []
    seen: list[frozenset[str]] = []
    for text in ordered:
        plain = frozenset(bare(text).split())
        if any(_similar(plain, other) for other in seen):
            continue
        seen.append(plain)
        chosen.append(trim(mask_personal(" ".join(text.split()))))
        if len(chosen) == k:
            break
    return chosen


def _distance(text: str) -> int:
    """How far ``text`` is from the ideal length; a long text counts as the quote it is cut to."""
    return abs(min(len(text), QUOTE_CHARS) - IDEAL_CHARS)


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    """Near-duplicates: most of their words in common, whatever the order and punctuation."""
    return len(a & b) >= NEAR_DUPLICATE * len(a | b)


def trim(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` cut at the last space before ``limit`` characters, with "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:.-") + "…"

"""The comment mart computed from plain values: theme counts per scope and the quotes shown.

One pass over the comments: each is classified once (``matcher.themes``) and counted in its
school, unit and province; the quote candidates of each unit and of the province are kept in
small bounded pools, so memory does not grow with the number of comments.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable

from flows.comments.codebook import bare
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


def summarise(
    campaign_id: str,
    province_code: str,
    respondents: Iterable[Respondents],
    comments: Iterable[Comment],
    matcher: Matcher,
) -> tuple[list[ThemeCount], list[Quote]]:
    """Theme counts for every school, unit and the province that has comments, and up to
    ``QUOTES_PER_THEME`` quotes per unit and province, questionnaire and theme."""
    n_scope: dict[tuple[str, str, str], int] = defaultdict(int)
    n_school: dict[tuple[str, str], int] = {}
    for r in respondents:
        n_school[(r.school_code, r.questionnaire)] = r.n
        for scope, code in _scopes(r.school_code, r.unit_code, province_code):
            n_scope[(scope, code, r.questionnaire)] += r.n
    # Counted per school, then summed into units and the province; quotes kept per unit, and
    # the province's chosen from the units' (its best POOL are among its units' best POOL).
    school_hits: dict[tuple[str, str, str, str], int] = defaultdict(int)
    unit_pools: dict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for c in comments:
        found = themes(c.text, matcher)
        if not found:
            continue
        for theme in found:
            school_hits[(c.school_code, c.unit_code, c.questionnaire, theme)] += 1
        if n_school.get((c.school_code, c.questionnaire), 0) >= MIN_QUOTE_RESPONDENTS:
            scored = (-_distance(c.text), c.text)
            for theme in found:
                _keep(unit_pools[(c.unit_code, c.questionnaire, theme)], scored)
    hits: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for (school, unit, questionnaire, theme), n in school_hits.items():
        for scope, code in _scopes(school, unit, province_code):
            hits[(scope, code, questionnaire, theme)] += n
    pools: dict[tuple[str, str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for (unit, questionnaire, theme), pool in unit_pools.items():
        pools[("unit", unit, questionnaire, theme)] = pool
        for scored in pool:
            _keep(pools[("province", province_code, questionnaire, theme)], scored)
    counts = [
        ThemeCount(
            campaign_id,
            scope,
            code,
            questionnaire,
            theme,
            matcher.codebook.label(theme),
            matcher.codebook.dimension(theme),
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

"""Comment themes: what parents and students wrote in "Ý kiến, đề xuất khác", by theme.

The codebook (``codebook.py``: the built-in ``schemas/codebook/`` and an officer's
``codebook_dir``) lists each theme's phrases; ``matcher.py`` finds them in a comment, accented
or not; ``mart.py`` counts comments per scope and theme and chooses the quotes, all pure.
``build_comment_mart`` is the step: stored comments in, the comment mart out
(``warehouse.comments``), run by each publish after the other marts. Its two halves,
``tally_comments`` (of some units) and ``write_comment_mart``, let the pipeline tally the units
in several processes at once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.engine import Engine

from flows.comments.codebook import Codebook, CodebookError, load_codebook
from flows.comments.mart import Tally, summarise, tally
from flows.comments.matcher import compile_codebook
from warehouse import comments as store
from warehouse.comments import Respondents

__all__ = [
    "Codebook",
    "CodebookError",
    "Tally",
    "build_comment_mart",
    "codebook_stamp",
    "load_codebook",
    "split_units",
    "tally_comments",
    "write_comment_mart",
]


def codebook_stamp(codebook: Codebook) -> dict[str, str]:
    """What the comment mart records of the codebook it was built with."""
    return {"version": codebook.version, "fingerprint": codebook.fingerprint}


def build_comment_mart(engine: Engine, campaign_id: str, codebook: Codebook) -> int:
    """Rebuild the campaign's comment mart from its stored comments with ``codebook``, in one
    pass over the comments; returns the number of theme rows written."""
    respondents = store.respondent_counts(engine, campaign_id)
    found = tally_comments(engine, campaign_id, codebook, respondents)
    return write_comment_mart(engine, campaign_id, codebook, respondents, [found])


def tally_comments(
    engine: Engine,
    campaign_id: str,
    codebook: Codebook,
    respondents: Sequence[Respondents],
    units: Collection[str] | None = None,
) -> Tally:
    """The tally of the stored comments of ``units`` (every unit when None); ``respondents``
    are ``warehouse.comments.respondent_counts``' (those of these units at least)."""
    comments = store.iter_comments(engine, campaign_id, units)
    return tally(respondents, comments, compile_codebook(codebook))


def write_comment_mart(
    engine: Engine,
    campaign_id: str,
    codebook: Codebook,
    respondents: Sequence[Respondents],
    tallies: Sequence[Tally],
) -> int:
    """Replace the campaign's comment mart with what ``tallies`` (of every unit, once each)
    add up to; returns the number of theme rows written."""
    counts, quotes = summarise(
        campaign_id, store.province_code(engine, campaign_id), respondents, tallies, codebook
    )
    store.write_comment_mart(engine, campaign_id, counts, quotes, codebook_stamp(codebook))
    return len(counts)


def split_units(respondents: Sequence[Respondents], parts: int) -> list[list[str]]:
    """The units of ``respondents`` in ``parts`` groups of about as many respondents each
    (the largest unit first, each to the smallest group so far); no group is empty."""
    size: dict[str, int] = {}
    for r in respondents:
        size[r.unit_code] = size.get(r.unit_code, 0) + r.n
    totals = [0] * max(1, parts)
    groups: list[list[str]] = [[] for _ in totals]
    for unit in sorted(size, key=lambda u: (-size[u], u)):
        i = totals.index(min(totals))
        totals[i] += size[unit]
        groups[i].append(unit)
    return [sorted(group) for group in groups if group]

"""Comment themes: what parents and students wrote in "Ý kiến, đề xuất khác", by theme.

The codebook (``codebook.py``: the built-in ``schemas/codebook/`` and an officer's
``codebook_dir``) lists each theme's phrases; ``matcher.py`` finds them in a comment, accented
or not; ``mart.py`` counts comments per scope and theme and chooses the quotes, all pure.
``build_comment_mart`` is the step: stored comments in, the comment mart out
(``warehouse.comments``), run by each publish after the other marts.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from flows.comments.codebook import Codebook, CodebookError, load_codebook
from flows.comments.mart import summarise
from flows.comments.matcher import compile_codebook
from warehouse import comments as store

__all__ = ["Codebook", "CodebookError", "build_comment_mart", "codebook_stamp", "load_codebook"]


def codebook_stamp(codebook: Codebook) -> dict[str, str]:
    """What the comment mart records of the codebook it was built with."""
    return {"version": codebook.version, "fingerprint": codebook.fingerprint}


def build_comment_mart(engine: Engine, campaign_id: str, codebook: Codebook) -> int:
    """Rebuild the campaign's comment mart from its stored comments with ``codebook``, in one
    pass over the comments; returns the number of theme rows written."""
    counts, quotes = summarise(
        campaign_id,
        store.province_code(engine, campaign_id),
        store.respondent_counts(engine, campaign_id),
        store.iter_comments(engine, campaign_id),
        compile_codebook(codebook),
    )
    store.write_comment_mart(engine, campaign_id, counts, quotes, codebook_stamp(codebook))
    return len(counts)

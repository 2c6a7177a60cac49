"""Which themes a comment is about: the codebook's phrases compiled into two regular
expressions, one on the comment as typed and one on it without accents.

A phrase matches whole words only ("ban" never inside "bàn ghế", "wc" never inside a word).
Multi-word phrases are also matched on the unaccented text, so "nha ve sinh ban" hits like
"nhà vệ sinh bẩn"; a one-word phrase is matched unaccented only in a comment typed without any
accent, since "bẩn", "bạn" and "bàn" are all "ban" without them. Where phrases overlap the
longest wins ("vệ sinh an toàn thực phẩm" is about meals, not safety).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from flows.comments.codebook import Codebook, bare, folded, unaccented
from schemas.comments import OTHER_THEME


@dataclass(frozen=True)
class Matcher:
    """A codebook compiled for matching (``compile_codebook``)."""

    codebook: Codebook
    accented: re.Pattern[str]
    unaccented_multi: re.Pattern[str]
    unaccented_all: re.Pattern[str]
    themes_of: dict[str, frozenset[str]]  # phrase (as matched) -> theme codes


def _alternation(phrases: set[str]) -> re.Pattern[str]:
    if not phrases:
        return re.compile(r"(?!x)x")  # matches nothing
    ordered = sorted(phrases, key=lambda p: (-len(p), p))
    body = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def compile_codebook(codebook: Codebook) -> Matcher:
    """The codebook's phrases compiled: accented, and unaccented (multi-word, or all)."""
    themes_of: dict[str, set[str]] = defaultdict(set)
    accented: set[str] = set()
    multi: set[str] = set()
    every: set[str] = set()
    for theme in codebook.themes:
        for phrase in theme.phrases:
            plain = unaccented(phrase)
            themes_of[phrase].add(theme.code)
            themes_of[plain].add(theme.code)
            accented.add(phrase)
            every.add(plain)
            if " " in phrase:
                multi.add(plain)
    return Matcher(
        codebook,
        _alternation(accented),
        _alternation(multi),
        _alternation(every),
        {p: frozenset(codes) for p, codes in themes_of.items()},
    )


def is_no_comment(text: str | None, codebook: Codebook) -> bool:
    """True for a blank answer, one without a letter, or one of the codebook's "no comment"
    answers ("Không có ý kiến.", "ko", "ok", "đồng ý")."""
    if text is None:
        return True
    plain = bare(text)
    return not any(c.isalpha() for c in plain) or plain in codebook.no_comment


def themes(text: str | None, matcher: Matcher) -> frozenset[str]:
    """The theme codes ``text`` is about; ``{OTHER_THEME}`` for a comment no phrase matches;
    empty for no comment at all (``is_no_comment``)."""
    if is_no_comment(text, matcher.codebook):
        return frozenset()
    assert text is not None  # noqa: S101 - is_no_comment(None) is True
    lowered = folded(text)
    plain = unaccented(lowered)
    found: set[str] = set()
    for m in matcher.accented.finditer(lowered):
        found |= matcher.themes_of[_spaced(m.group())]
    pattern = matcher.unaccented_all if plain == lowered else matcher.unaccented_multi
    for m in pattern.finditer(plain):
        found |= matcher.themes_of[_spaced(m.group())]
    return frozenset(found) if found else frozenset({OTHER_THEME})


def _spaced(found: str) -> str:
    return " ".join(found.split())

"""Which themes a comment is about: the codebook's phrases compiled into tables of word
sequences, looked up in one pass over the comment's words (a word-level Aho–Corasick: at each
word the longest phrase starting there wins, and matching goes on after it).

Phrases match whole words only ("ban" is never inside "bàn ghế", "wc" never inside a word).
Multi-word phrases are also matched on the comment's words without accents, so
"nha ve sinh ban" hits like "nhà vệ sinh bẩn"; a one-word phrase is matched unaccented only in
a comment typed without any accent, since "bẩn", "bạn" and "bàn" are all "ban" without them.
Where phrases overlap the longest wins ("vệ sinh an toàn thực phẩm" is about meals, not safety).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from flows.comments.codebook import Codebook, bare, bare_plain, folded, unaccented
from schemas.comments import OTHER_THEME

_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")
#: "No comment" answers are short: a longer text is only checked for having a letter.
_NO_COMMENT_CHARS = 60

Words = tuple[str, ...]


@dataclass(frozen=True)
class Matcher:
    """A codebook compiled for matching (``compile_codebook``): phrase words -> theme codes."""

    codebook: Codebook
    accented: dict[Words, frozenset[str]]
    unaccented_multi: dict[Words, frozenset[str]]
    unaccented_all: dict[Words, frozenset[str]]
    #: per table, each first word -> the lengths of the phrases it starts, longest first
    starts: dict[str, dict[str, tuple[int, ...]]]


def words(text: str) -> Words:
    """The words of ``text`` (letters and digits; punctuation and spaces between them)."""
    return tuple(_WORD.findall(text))


def compile_codebook(codebook: Codebook) -> Matcher:
    """The codebook's phrases as word sequences: accented, and unaccented (multi-word, or all)."""
    tables: dict[str, dict[Words, set[str]]] = {
        "accented": defaultdict(set),
        "multi": defaultdict(set),
        "all": defaultdict(set),
    }
    for theme in codebook.themes:
        for phrase in theme.phrases:
            said, plain = words(phrase), words(unaccented(phrase))
            if not said:
                continue
            tables["accented"][said].add(theme.code)
            tables["all"][plain].add(theme.code)
            if len(plain) > 1:
                tables["multi"][plain].add(theme.code)
    frozen = {name: {k: frozenset(v) for k, v in table.items()} for name, table in tables.items()}
    starts: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, table in frozen.items():
        lengths: dict[str, set[int]] = defaultdict(set)
        for key in table:
            lengths[key[0]].add(len(key))
        starts[name] = {w: tuple(sorted(ks, reverse=True)) for w, ks in lengths.items()}
    return Matcher(codebook, frozen["accented"], frozen["multi"], frozen["all"], starts)


def is_no_comment(text: str | None, codebook: Codebook) -> bool:
    """True for a blank answer, one without a letter, or one of the codebook's "no comment"
    answers ("Không có ý kiến.", "ko", "ok", "đồng ý")."""
    if text is None or not _LETTER.search(text):
        return True
    return len(text) <= _NO_COMMENT_CHARS and bare(text) in codebook.no_comment


def themes(text: str | None, matcher: Matcher) -> frozenset[str]:
    """The theme codes ``text`` is about; ``{OTHER_THEME}`` for a comment no phrase matches;
    empty for no comment at all (``is_no_comment``)."""
    if text is None or not _LETTER.search(text):
        return frozenset()
    lowered = folded(text)
    plain = unaccented(lowered)
    # is_no_comment, on the folded and unaccented text already at hand
    if len(text) <= _NO_COMMENT_CHARS and bare_plain(plain) in matcher.codebook.no_comment:
        return frozenset()
    found = _find(words(lowered), matcher.accented, matcher.starts["accented"])
    name = "all" if plain == lowered else "multi"
    table = matcher.unaccented_all if name == "all" else matcher.unaccented_multi
    found |= _find(words(plain), table, matcher.starts[name])
    return frozenset(found) if found else frozenset({OTHER_THEME})


def _find(
    said: Words, table: dict[Words, frozenset[str]], starts: dict[str, tuple[int, ...]]
) -> set[str]:
    """The themes of the phrases found in ``said``, the longest at each word, not overlapping."""
    found: set[str] = set()
    i, n = 0, len(said)
    while i < n:
        step = 1
        for k in starts.get(said[i], ()):
            hit = table.get(said[i : i + k]) if i + k <= n else None
            if hit is not None:
                found |= hit
                step = k
                break
        i += step
    return found

"""The codebook of comment themes: the built-in one (``schemas/codebook/``) merged with an
officer's own files (``codebook_dir`` in khaosat.yaml), and the text forms it is matched on.

Pure functions of plain values and files; nothing here touches the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from schemas.comments import OTHER_THEME
from schemas.questionnaire import SCHEMAS_DIR

#: The built-in codebook's folder.
CODEBOOK_DIR = SCHEMAS_DIR / "codebook"
#: The label of OTHER_THEME, for comments no theme matches.
OTHER_LABEL = "Ý kiến khác"
#: Dimension codes a theme may belong to (DOMAIN.md, the five tiêu chí).
DIMENSIONS = ("TIEP_CAN", "CSVC", "MOI_TRUONG", "HOAT_DONG", "PHAT_TRIEN")

_CODE = re.compile(r"[a-z][a-z0-9_]*")
_NOT_WORD = re.compile(r"[\W_]+")


class CodebookError(ValueError):
    """A codebook file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Theme:
    """One theme of the codebook."""

    code: str
    label: str  # Vietnamese, as the workbooks and the report show it
    dimension: str | None  # one of DIMENSIONS, or None for a cross-cutting theme
    phrases: tuple[str, ...]  # lower-cased NFC, as written in the codebook


@dataclass(frozen=True)
class Codebook:
    """The themes in the order they are listed, and the answers that mean "no comment"."""

    version: str
    themes: tuple[Theme, ...]
    no_comment: frozenset[str]  # in ``bare`` form

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the codebook's content: equal fingerprints classify every comment alike."""
        content = {
            "version": self.version,
            "themes": [[t.code, t.label, t.dimension, list(t.phrases)] for t in self.themes],
            "no_comment": sorted(self.no_comment),
        }
        text = json.dumps(content, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def label(self, code: str) -> str:
        """The Vietnamese label of theme ``code`` (OTHER_LABEL for OTHER_THEME)."""
        for theme in self.themes:
            if theme.code == code:
                return theme.label
        return OTHER_LABEL if code == OTHER_THEME else code

    def dimension(self, code: str) -> str | None:
        """The dimension of theme ``code``; None for a cross-cutting one and OTHER_THEME."""
        return next((t.dimension for t in self.themes if t.code == code), None)


def folded(text: str) -> str:
    """``text`` in NFC, lower-cased, its whitespace runs made single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def _base_letter(c: str) -> str:
    return "".join(d for d in unicodedata.normalize("NFD", c) if not unicodedata.combining(d))


#: Each precomposed Latin letter with diacritics -> its base letter; đ -> d.
_STRIP = {
    ord(c): _base_letter(c)
    for c in map(chr, range(0xC0, 0x1F00))
    if c.isalpha() and _base_letter(c) != c and _base_letter(c).isascii()
} | {ord("đ"): "d", ord("Đ"): "D"}


def unaccented(text: str) -> str:
    """``text`` without its diacritics (đ → d), for comments typed without accents."""
    text = unicodedata.normalize("NFC", text)
    return text if text.isascii() else text.translate(_STRIP)


def bare(text: str) -> str:
    """``text`` folded, unaccented, without punctuation: how "no comment" answers compare."""
    return bare_plain(unaccented(folded(text)))


def bare_plain(plain: str) -> str:
    """``bare`` of a text already folded and unaccented: its words, single-spaced."""
    return " ".join(_NOT_WORD.sub(" ", plain).split())


def load_codebook(folder: Path | None = None, builtin: Path = CODEBOOK_DIR) -> Codebook:
    """The built-in codebook, then each ``*.yaml`` of ``folder`` (an officer's) in name order.

    An officer's file may add themes, and for a theme already defined (same ``code``) replace
    its ``label`` or ``dimension``, add ``phrases`` (all of them replaced with ``replace: true``)
    or drop the theme (``drop: true``); its ``no_comment`` answers are added. The version is the
    built-in one followed by each file's own (``2026.1+so-hn-3``). Raises CodebookError, naming
    the file and the field, for a file that cannot be used.
    """
    files = sorted(builtin.glob("*.yaml"))
    if folder is not None:
        if not folder.is_dir():
            raise CodebookError(f"{folder}: codebook_dir is not a folder")
        files += sorted(folder.glob("*.yaml"))
    themes: dict[str, Theme] = {}
    no_comment: set[str] = set()
    versions: list[str] = []
    for path in files:
        raw = _read(path)
        if raw.get("version") is not None:
            versions.append(str(raw["version"]))
        no_comment.update(bare(str(p)) for p in _list(path, raw, "no_comment"))
        for i, entry in enumerate(_list(path, raw, "themes")):
            _merge(themes, _theme_entry(path, i, entry), path, i)
    if not versions:
        raise CodebookError(f"{files[0] if files else builtin}: `version` is missing")
    return Codebook("+".join(versions), tuple(themes.values()), frozenset(no_comment))


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CodebookError(f"{path}: cannot read the codebook: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CodebookError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CodebookError(f"{path}: expected a mapping with `version` and `themes`")
    return raw


def _list(path: Path, raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise CodebookError(f"{path}: `{key}` must be a list")
    return value


def _theme_entry(path: Path, i: int, entry: Any) -> dict[str, Any]:
    where = f"{path}: themes[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("code"), str):
        raise CodebookError(f"{where}: each theme needs a `code`")
    code = entry["code"]
    if not _CODE.fullmatch(code) or code == OTHER_THEME:
        raise CodebookError(
            f"{where}: code {code!r} must be lower-case letters, digits and _ "
            f"(and not {OTHER_THEME!r}, the theme of what matches nothing)"
        )
    dimension = entry.get("dimension")
    if dimension is not None and dimension not in DIMENSIONS:
        raise CodebookError(
            f"{where}: dimension {dimension!r} of {code!r} is not one of {', '.join(DIMENSIONS)}"
        )
    phrases = entry.get("phrases", [])
    if not isinstance(phrases, list) or not all(isinstance(p, str | int) for p in phrases):
        raise CodebookError(f"{where}: `phrases` of {code!r} must be a list of texts")
    return {**entry, "phrases": [folded(str(p)) for p in phrases if folded(str(p))]}


def _merge(themes: dict[str, Theme], entry: dict[str, Any], path: Path, i: int) -> None:
    code = entry["code"]
    known = themes.get(code)
    if entry.get("drop"):
        themes.pop(code, None)
        return
    if known is None:
        if not entry.get("label"):
            raise CodebookError(f"{path}: themes[{i}]: the new theme {code!r} needs a `label`")
        known = Theme(code, str(entry["label"]), None, ())
        entry.setdefault("dimension", None)
    phrases = entry["phrases"] if entry.get("replace") else [*known.phrases, *entry["phrases"]]
    themes[code] = Theme(
        code,
        str(entry.get("label") or known.label),
        entry["dimension"] if "dimension" in entry else known.dimension,
        tuple(dict.fromkeys(phrases)),
    )


def theme_codes(codebook: Codebook) -> Iterable[str]:
    """Every theme code a comment can get: the codebook's, then OTHER_THEME."""
    return [*(t.code for t in codebook.themes), OTHER_THEME]

"""Personal data and secrets that free text might carry into what the project writes.

The warehouse never stores a form's name, e-mail or phone columns, but a respondent or an
officer can type either into any cell, a header, a service name or an alert note; messages,
the ledger, workbooks and feedback files are read and forwarded, so such text is not repeated.
``mask_personal`` is the one masking of it: each kind is replaced by a placeholder that says
what was there, so a school knows what to remove. Text quoted from a school's file (a failure
message's first cells, an unknown header) is masked where it is quoted, before it is stored.

``mask_secrets`` hides passwords in the forms they travel in: plain, URL-encoded (in a
warehouse URL) and base64 (in an SMTP AUTH exchange a server may echo back).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import overload
from urllib.parse import quote, quote_plus

EMAIL_MASK = "[email]"
#: What a secret, in any of its forms, is replaced by.
REDACTED = "***"
PHONE_MASK = "[số điện thoại]"
NAME_MASK = "[tên]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Vietnamese mobile and landline numbers: 0 or +84/84, then 8–10 more digits, with optional
# spaces, dots or dashes; not part of a longer run of digits, but caught when glued to a word
# ("ĐT0912345678"), which is how they are often typed.
_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(?:[\s.-]?\d){8,10}(?!\d)")

# Names, as comments mention them. A name is hard to tell from other capitalised words, so two
# patterns that rarely misfire: a Capitalised Name after how a Vietnamese speaker addresses or
# refers to a person ("cô Lan", "thầy Nguyễn Văn Hùng", "cháu Minh Anh", "con Bảo"), and a full
# name starting with one of the common family names ("Trần Thị Hoa"), unless it names a school
# or a street ("Trường THCS Lê Quý Đôn", "đường Trần Phú").
_UPPER = "".join(c for c in map(chr, range(0x41, 0x1F00)) if c.isupper() and c.isalpha())
_WORD = rf"[{_UPPER}][^\W\d_]*"
_TITLED = re.compile(
    rf"(?i:\b(?:cô|thầy|cháu|con|bé|em)(?:\s+giáo)?(?:\s+chủ\s+nhiệm)?)\s+"
    rf"({_WORD}(?:\s+{_WORD}){{0,3}})"
)
_FAMILY_NAMES = (
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Đoàn Trịnh "
    "Lương Mai Lâm Tô Hà Cao Tạ Chu Quách Kiều Lưu Thái Vương Nông Triệu Lò"
)
_FULL_NAME = re.compile(rf"\b(?:{'|'.join(_FAMILY_NAMES.split())})(?:\s+{_WORD}){{1,3}}")
_NAMED_PLACE = re.compile(
    r"(?i:trường|học|non|thcs|thpt|th|gdtx|đường|phố|phường|xã|quận|huyện|tỉnh|ấp|thôn|tổ)\s*$"
)


def _mask_names(text: str) -> str:
    text = _TITLED.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + NAME_MASK, text)

    def full(m: re.Match[str]) -> str:
        return m.group(0) if _NAMED_PLACE.search(text[: m.start()]) else NAME_MASK

    return _FULL_NAME.sub(full, text)


@overload
def mask_personal(text: str) -> str: ...
@overload
def mask_personal(text: None) -> None: ...
def mask_personal(text: str | None) -> str | None:
    """``text`` with e-mail addresses, phone numbers and names replaced by placeholders."""
    if text is None:
        return None
    return _mask_names(_PHONE.sub(PHONE_MASK, _EMAIL.sub(EMAIL_MASK, text)))


def secret_forms(secret: str) -> set[str]:
    """The forms ``secret`` may be written in: itself, URL-encoded (a password in a URL, with
    and without ``/`` escaped, spaces as ``%20`` or ``+``) and base64 (padded or not)."""
    if not secret:
        return set()
    encoded = base64.b64encode(secret.encode()).decode("ascii")
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        encoded,
        encoded.rstrip("="),
    }


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret (``secret_forms``) replaced by ``***``.

    Pass SMTP AUTH PLAIN's ``"\\0user\\0password"`` as a secret of its own: its base64 is the
    token a server may echo, which does not contain the password's own base64.
    """
    forms = {form for secret in secrets for form in secret_forms(secret)}
    for form in sorted(forms, key=len, reverse=True):  # longest first: no partial leftovers
        text = text.replace(form, REDACTED)
    return text

"""Personal data that free text might carry into a file the project writes.

The warehouse never stores a form's name, e-mail or phone columns, but a respondent or an
officer can type either into any cell, a service name or an alert note; workbooks and feedback
files are forwarded, so such text is not repeated. Each kind is replaced by a placeholder that
says what was there, so a school knows what to remove.
"""

from __future__ import annotations

import re
from typing import overload

EMAIL_MASK = "[email]"
PHONE_MASK = "[số điện thoại]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Vietnamese mobile and landline numbers: 0 or +84/84, then 8–10 more digits, with optional
# spaces, dots or dashes; not part of a longer run of digits, but caught when glued to a word
# ("ĐT0912345678"), which is how they are often typed.
_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(?:[\s.-]?\d){8,10}(?!\d)")


@overload
def mask_personal(text: str) -> str: ...
@overload
def mask_personal(text: None) -> None: ...
def mask_personal(text: str | None) -> str | None:
    """``text`` with e-mail addresses and phone numbers replaced by placeholders."""
    if text is None:
        return None
    return _PHONE.sub(PHONE_MASK, _EMAIL.sub(EMAIL_MASK, text))

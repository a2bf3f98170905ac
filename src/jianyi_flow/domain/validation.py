"""Input limits, checked before anything is written.  Each failure names the field and the rule.

Text is stored byte-exact (SQL fragments and markup are data, never executed), but
characters that only serve to confuse a reader or break storage are refused: control
characters (C0 other than tab and newlines, DEL, and C1 U+0080–U+009F), lone surrogates, and bidirectional overrides
(U+202A–U+202E, U+2066–U+2069), which can make a text read differently from what it says.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Collection
from typing import TypeVar

from ..errors import ValidationError
from .clock import require_aware

_E = TypeVar("_E", bound=enum.Enum)

TITLE_MAX = 100
SUBJECT_MAX = 200
BODY_MAX = 10_000
"""``problem`` and ``measures``: about five pages of Chinese text."""
REASON_MAX = 2_000
NAME_MAX = 50
ADDRESS_MAX = 200
CODE_MAX = 32
REPLY_MAX = 10_000

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?")
_ANY_PHONE = re.compile(r"[0-9][0-9-]{6,}[0-9]")
_CODE = re.compile(r"[A-Za-z0-9_.\-]+")


def text(field: str, value: object, *, max_len: int, required: bool = True) -> str | None:
    """A text field: a ``str`` of at most ``max_len`` characters with no forbidden characters."""
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, not {type(value).__name__}")
    if required and not value.strip():
        raise ValidationError(field, "must not be blank")
    if len(value) > max_len:
        raise ValidationError(field, f"must be at most {max_len} characters (got {len(value)})")
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        raise ValidationError(
            field, f"contains a forbidden character U+{ord(bad.group()):04X} (control, lone surrogate or bidi override)"
        )
    return value


def required_text(field: str, value: object, *, max_len: int) -> str:
    result = text(field, value, max_len=max_len)
    assert result is not None
    return result


def phone(field: str, value: object) -> str | None:
    """A mainland mobile (11 digits, 1[3-9]…) or landline with area code (023-49299053)."""
    if value is None:
        return None
    if not isinstance(value, str) or not (_MOBILE.fullmatch(value) or _LANDLINE.fullmatch(value)):
        raise ValidationError(field, "must be a mainland mobile (1[3-9] + 9 digits) or a landline like 023-49299053")
    return value


def shown(value: str) -> str:
    """``value`` as an error message may quote it: anything shaped like a phone number is masked.

    Error messages end up in logs; a phone typed into the wrong field must not go with them.
    """
    found = _ANY_PHONE.search(value)
    if found is None:
        return value
    digits = found.group()
    return value.replace(digits, digits[:3] + "*" * (len(digits) - 5) + digits[-2:])


def code(field: str, value: object, known: Collection[str] | None = None, *, required: bool = True) -> str | None:
    """A code (area, topic, unit...): short ASCII, and one of ``known`` when a list is given."""
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str) or not value or len(value) > CODE_MAX or not _CODE.fullmatch(value):
        raise ValidationError(field, f"must be a code of 1-{CODE_MAX} letters, digits, '_', '.' or '-'")
    if known is not None and value not in known:
        raise ValidationError(field, f"unknown code {shown(value)!r}")
    return value


def aware(field: str, value: object) -> dt.datetime:
    """An aware datetime (naive ones are ambiguous and refused)."""
    return require_aware(value, field)


def flag(field: str, value: object) -> bool:
    """A true/false flag: a real ``bool`` (``"no"`` is text, and text is truthy)."""
    if not isinstance(value, bool):
        raise ValidationError(field, "must be True or False")
    return value


def member(field: str, kind: type[_E], value: object) -> _E:
    """``value`` as a member of the enum ``kind`` (members and their values are accepted)."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except (ValueError, TypeError):
        raise ValidationError(field, f"must be one of {[m.value for m in kind]}") from None


def codes(field: str, value: object, known: Collection[str] | None = None) -> tuple[str, ...]:
    """A sequence of distinct codes (a list or tuple, not a string: "AB" is not two codes)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ValidationError(field, "must be a list of codes, not a single string")
    out = tuple(value)
    for item in out:
        code(field, item, known)
    if len(set(out)) != len(out):
        raise ValidationError(field, "must not repeat a code")
    return out

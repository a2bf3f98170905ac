"""Input limits, checked before anything is written.  Each failure names the field and the rule.

Every check raises :class:`~jianyi_flow.errors.ValidationError` with the rule's code (see
:data:`jianyi_flow.errors.RULES`), structured details (limits as numbers) and a Chinese
message.  :func:`check_draft` runs every check of a :class:`SuggestionDraft` and returns all
the problems at once, so a form can show them together.

Text is stored byte-exact (SQL fragments and markup are data, never executed), but
characters that only serve to confuse a reader or break storage are refused: control
characters (C0 other than tab and newlines, DEL, and C1 U+0080–U+009F), lone surrogates, and bidirectional overrides
(U+202A–U+202E, U+2066–U+2069), which can make a text read differently from what it says.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from ..errors import Problem, ValidationError
from .clock import require_aware
from .masking import mask_personal_data
from .model import Channel, Proposer, ProposerKind, SuggestionDraft

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
    """A text field: a ``str`` of at most ``max_len`` characters with no forbidden characters.

    Codes: ``required`` (missing), ``not_text``, ``blank`` (only white space, when
    required), ``too_long`` (details ``max_length``, ``length``), ``forbidden_character``
    (details ``character``, e.g. ``"U+202E"``).
    """
    if value is None:
        if required:
            raise ValidationError(field, "is required", code="required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, not {type(value).__name__}", code="not_text",
                              details={"type": type(value).__name__})
    if required and not value.strip():
        raise ValidationError(field, "must not be blank", code="blank")
    if len(value) > max_len:
        raise ValidationError(field, f"must be at most {max_len} characters (got {len(value)})", code="too_long",
                              details={"max_length": max_len, "length": len(value)})
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        character = f"U+{ord(bad.group()):04X}"
        raise ValidationError(
            field, f"contains a forbidden character {character} (control, lone surrogate or bidi override)",
            code="forbidden_character", details={"character": character},
        )
    return value


def required_text(field: str, value: object, *, max_len: int) -> str:
    result = text(field, value, max_len=max_len)
    assert result is not None
    return result


def phone(field: str, value: object) -> str | None:
    """A mainland mobile (11 digits, 1[3-9]…) or landline with area code (023-49299053).  Code ``not_a_phone``."""
    if value is None:
        return None
    if not isinstance(value, str) or not (_MOBILE.fullmatch(value) or _LANDLINE.fullmatch(value)):
        raise ValidationError(field, "must be a mainland mobile (1[3-9] + 9 digits) or a landline like 023-49299053",
                              code="not_a_phone")
    return value


def shown(value: str) -> str:
    """``value`` as an error message may quote it: personal data in it is masked.

    Error messages end up in logs; a phone or an ID number typed into the wrong field must
    not go with them (:func:`~jianyi_flow.domain.masking.mask_personal_data`).
    """
    return mask_personal_data(value)


def code(field: str, value: object, known: Collection[str] | None = None, *, required: bool = True) -> str | None:
    """A code (area, topic, unit...): short ASCII, and one of ``known`` when a list is given.

    Codes: ``required``, ``not_a_code`` (details ``max_length``), ``unknown_code`` (details
    ``value``, masked by :func:`shown`).
    """
    if value is None:
        if required:
            raise ValidationError(field, "is required", code="required")
        return None
    if not isinstance(value, str) or not value or len(value) > CODE_MAX or not _CODE.fullmatch(value):
        raise ValidationError(field, f"must be a code of 1-{CODE_MAX} letters, digits, '_', '.' or '-'",
                              code="not_a_code", details={"max_length": CODE_MAX})
    if known is not None and value not in known:
        raise ValidationError(field, f"unknown code {shown(value)!r}", code="unknown_code",
                              details={"value": shown(value)})
    return value


def aware(field: str, value: object) -> dt.datetime:
    """An aware datetime (naive ones are ambiguous and refused): codes ``not_a_datetime``, ``not_aware``."""
    return require_aware(value, field)


def flag(field: str, value: object) -> bool:
    """A true/false flag: a real ``bool`` (``"no"`` is text, and text is truthy).  Code ``not_a_bool``."""
    if not isinstance(value, bool):
        raise ValidationError(field, "must be True or False", code="not_a_bool")
    return value


def member(field: str, kind: type[_E], value: object) -> _E:
    """``value`` as a member of the enum ``kind`` (members and their values are accepted).

    Code ``not_one_of``, details ``allowed`` (the values).
    """
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except (ValueError, TypeError):
        allowed = [m.value for m in kind]
        raise ValidationError(field, f"must be one of {allowed}", code="not_one_of",
                              details={"allowed": allowed}) from None


def codes(field: str, value: object, known: Collection[str] | None = None) -> tuple[str, ...]:
    """A sequence of distinct codes (a list or tuple, not a string: "AB" is not two codes).

    Codes: ``not_a_list``, those of :func:`code` for each item, ``duplicate`` (details ``value``).
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ValidationError(field, "must be a list of codes, not a single string", code="not_a_list")
    out = tuple(value)
    for item in out:
        code(field, item, known)
    if len(set(out)) != len(out):
        repeated = next(item for i, item in enumerate(out) if item in out[:i])
        raise ValidationError(field, "must not repeat a code", code="duplicate", details={"value": shown(repeated)})
    return out


def whole_number(field: str, value: object, *, low: int, high: int | None = None) -> int:
    """A whole number (not a ``bool``) from ``low`` to ``high`` (no upper end for ``None``).

    Codes: ``out_of_range`` (details ``min``, ``max``) or, without an upper end,
    ``too_small`` (details ``min``).
    """
    if isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
        return value
    if high is None:
        raise ValidationError(field, f"must be a whole number, at least {low}", code="too_small",
                              details={"min": low})
    raise ValidationError(field, f"must be a whole number from {low} to {high}", code="out_of_range",
                          details={"min": low, "max": high})


# --- a whole draft ------------------------------------------------------------------------


def _collect(problems: list[Problem], check: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Run one check; add its problems to ``problems`` instead of raising them."""
    try:
        check(*args, **kwargs)
    except ValidationError as e:
        problems.extend(e.problems)


def check_draft(
    draft: object,
    *,
    known_areas: Collection[str] | None = None,
    known_topics: Collection[str] | None = None,
    known_units: Collection[str] | None = None,
) -> list[Problem]:
    """Every problem of a :class:`SuggestionDraft`, in field order; ``[]`` when it is valid.

    The rules are those :meth:`jianyi_flow.Flow.receive` applies, one problem per field at
    most (the first rule that field breaks), in the order Flow checks them: title,
    subject, problem, measures, area, topic, recommending unit, accused units, channel,
    then the proposer's kind, confidential flag, name, phone, address and account.  Codes
    are checked against ``known_*`` when given.  Something that is not a draft is one
    problem (``draft``); a proposer that is not a :class:`Proposer` is one problem
    (``proposer``) instead of one per proposer field.
    """
    if not isinstance(draft, SuggestionDraft):
        return [Problem.of("draft", "wrong_type", "must be a SuggestionDraft")]
    problems: list[Problem] = []
    _collect(problems, required_text, "title", draft.title, max_len=TITLE_MAX)
    _collect(problems, required_text, "subject", draft.subject, max_len=SUBJECT_MAX)
    _collect(problems, required_text, "problem", draft.problem, max_len=BODY_MAX)
    _collect(problems, required_text, "measures", draft.measures, max_len=BODY_MAX)
    _collect(problems, code, "area", draft.area, known_areas)
    _collect(problems, code, "topic", draft.topic, known_topics, required=False)
    _collect(problems, code, "recommending_unit", draft.recommending_unit, known_units, required=False)
    _collect(problems, codes, "accused_units", draft.accused_units, known_units)
    if isinstance(draft.recommending_unit, str) and isinstance(draft.accused_units, tuple) \
            and draft.recommending_unit in draft.accused_units \
            and not any(p.field == "recommending_unit" for p in problems):
        problems.append(Problem.of("recommending_unit", "accused_unit",
                                   "a unit the suggestion accuses cannot recommend it (信访工作条例 Art. 30)",
                                   details={"value": draft.recommending_unit}))
    _collect(problems, member, "channel", Channel, draft.channel)
    _collect(problems, code, "institution", draft.institution, required=False)
    p = draft.proposer
    if not isinstance(p, Proposer):
        problems.append(Problem.of("proposer", "wrong_type", "must be a Proposer"))
        return problems
    _collect(problems, member, "proposer.kind", ProposerKind, p.kind)
    _collect(problems, flag, "proposer.confidential", p.confidential)
    _collect(problems, required_text, "proposer.name", p.name, max_len=NAME_MAX)
    _collect(problems, phone, "proposer.phone", p.phone)
    _collect(problems, text, "proposer.address", p.address, max_len=ADDRESS_MAX, required=False)
    _collect(problems, text, "proposer.account", p.account, max_len=NAME_MAX, required=False)
    return problems

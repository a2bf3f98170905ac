"""Personal data written inside free text, found by its shape and masked: :func:`mask_personal_data`.

A proposer writes more than their own details into a suggestion: a neighbour's phone
number, an ID-card number, an e-mail address.  Hiding the proposer's phone field (and
scrubbing their own number from the text) hides none of these, so every free text that
leaves the library for someone not entitled to personal data goes through this function
(:func:`jianyi_flow.service.visibility.scrub`, the masked campaign report).

What is masked, wherever it stands in the text (Chinese characters around it or not):

* **Resident identity numbers** (居民身份证号码, GB 11643-1999): 18 characters — a
  6-digit address code whose first two digits are a province-level code of GB/T 2260
  (11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71) or 81–83 (the residence permits of Hong
  Kong, Macao and Taiwan residents), a birth date ``YYYYMMDD`` that exists (from 1800), a 3-digit
  sequence number and a check character (ISO 7064 MOD 11-2; ``X`` or ``x`` for 10) that
  matches.  Written plain or grouped 6-8-4 with one space or hyphen.  The 15-digit
  numbers issued before 1999 (address code, ``YYMMDD`` in the 1900s, sequence; no check
  character) are masked when their province code and birth date are valid.  An 18-digit
  number with a wrong check character is not taken for an ID number (it is still masked
  if it passes the card check below).
* **Bank-card-like numbers**: a run of 16–19 digits not starting with 0 (plain, or in
  groups of four separated by one space or hyphen) that passes the Luhn check
  (ISO/IEC 7812-1), as every UnionPay, Visa and Mastercard number does.  About one in ten
  arbitrary long numbers passes it too and is masked as well: an accepted cost.  Long
  numbers failing the check are left alone.
* **Mainland mobile numbers**: ``1[3-9]`` and 9 more digits, plain or grouped 3-4-4 with
  spaces or hyphens (``135-1234-5678``, ``135 1234 5678``, ``1351234 5678``), with an
  optional ``+86``, ``86``, ``0086`` or ``(+86)`` prefix.
* **Landlines with an area code**: ``0`` and 2–3 digits (in parentheses or not), then a
  7- or 8-digit subscriber number not starting with 0 or 1, plain or split once by a space
  or hyphen (``023-49299053``, ``023 4929 9053``, ``(023)49299053``, ``0234929 9053``),
  with an optional extension (``-801``, ``转801``, ``分机801``, ``ext. 801``, ``x801``).
  A number without its area code (``49299053``) cannot be told from other numbers and is
  left alone.
* **E-mail addresses** (``local@domain.tld``).

Fullwidth forms (``１３５``, ``＠``, ``（０２３）``), which Chinese input methods produce,
count as their ASCII twins.

**Left alone**, because none of the shapes above fits them: dates (``2024-09-02``),
registration numbers (``YC2024-20240902-abc123``), years, article numbers, 6-digit
postcodes, short numbers, 400/800 service numbers.  A number that is part of an amount
— followed by ``元``, ``万``, ``亿`` or ``%``, preceded by ``¥``, ``￥`` or ``$``, or
continued by a decimal point or a thousands separator and more digits — is not taken for
a phone, ID or card number.

**How masked text looks**: each masked character becomes one ``*``, so the text keeps its
length and layout.  In a number (phone, ID, card) the first three and the last two of its
digits (and ``X``) stay, and separators, parentheses and a ``+86`` prefix are kept — the
same shape :func:`~jianyi_flow.domain.model.mask_phone` gives the phone field:
``135-1234-5678`` → ``135-****-**78``, ``11010519491231002X`` → ``110*************2X``.
In an e-mail address the first character of the local part, the ``@``, the dots and the
top-level domain stay: ``zhang.san@example.com`` → ``z********@*******.com``.  Masking
is idempotent: masked text contains nothing left to mask.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["id_check_character", "is_resident_id", "luhn_valid", "mask_personal_data"]

_NARROW = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "})
"""Fullwidth ASCII (U+FF01–U+FF5E) and the ideographic space to their ASCII twins, one character for one."""

_CANDIDATE = re.compile(r"[0-9@\uff10-\uff19\uff20]")
"""Text without a digit or an ``@`` has nothing to mask: most titles are skipped at this test."""

_DIGITS = frozenset("0123456789")
_BEFORE = r"(?<![0-9])(?<![0-9][.,])(?<![¥￥$])"
_AFTER = r"(?![0-9])(?![.,][0-9])(?!\s?[元万亿%])"

_PATTERN = re.compile(
    rf"""
    (?P<email>(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{{2,}})
    | {_BEFORE}(?P<mobile_prefix>(?:\(\+?86\)|(?:\+|00)?86)[ \-]?)?
      (?P<mobile>1[3-9][0-9][ \-]?[0-9]{{4}}[ \-]?[0-9]{{4}}){_AFTER}
    | {_BEFORE}(?P<landline>(?:\(0[1-9][0-9]{{1,2}}\)|0[1-9][0-9]{{1,2}})[ \-]?[2-9][0-9]{{2,3}}[ \-]?[0-9]{{4}}
      (?:[ ]?(?:-|转|分机|(?i:ext)\.?|[xX])[ ]?[0-9]{{1,6}})?){_AFTER}
    | {_BEFORE}(?P<long>[1-9][0-9]{{16}}[0-9Xx]
      | [1-9][0-9]{{5}}(?P<id_sep>[ \-])[0-9]{{8}}(?P=id_sep)[0-9]{{3}}[0-9Xx]
      | [1-9][0-9]{{14,18}}
      | [1-9][0-9]{{3}}(?P<card_sep>[ \-])[0-9]{{4}}(?P=card_sep)[0-9]{{4}}(?P=card_sep)[0-9]{{4}}
        (?:(?P=card_sep)[0-9]{{1,3}})?){_AFTER}
    """,
    re.VERBOSE,
)
"""One pass finds every candidate; alternatives are tried in this order at each position, so a
``0086`` or ``86`` prefix is read as part of a mobile number before the digits are taken for a
long number, and the digits of an e-mail address's local part belong to the address."""

_PROVINCES = frozenset(
    {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
     "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
     "71", "81", "82", "83"}
)
"""Province-level codes of GB/T 2260, plus 81–83 for the Hong Kong, Macao and Taiwan residence permits."""

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
"""2^(17-i) mod 11 for positions 1..17: the ISO 7064 MOD 11-2 weights GB 11643-1999 lists."""
_CHECK = "10X98765432"
"""The check character for a weighted sum mod 11 of 0, 1, 2, ... (GB 11643-1999, 8.2)."""


def id_check_character(first17: str) -> str:
    """The check character (``0``–``9`` or ``X``) of an 18-character ID number, from its first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("an ID number's check character is computed from 17 ASCII digits")
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _date_exists(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def is_resident_id(text: str) -> bool:
    """Whether ``text`` (ASCII digits, last character maybe ``X``) is a plausible resident ID number.

    18 characters: province code, existing birth date from 1800 on and matching check
    character; 15 digits: province code and an existing birth date in the 1900s.
    """
    if not text.isascii() or text[:2] not in _PROVINCES:
        return False
    if len(text) == 18:
        body = text[:17]
        return (body.isdigit() and text[17].upper() == id_check_character(body)
                and 1800 <= int(text[6:10]) and _date_exists(int(text[6:10]), int(text[10:12]), int(text[12:14])))
    if len(text) == 15 and text.isdigit():
        return _date_exists(1900 + int(text[6:8]), int(text[8:10]), int(text[10:12]))
    return False


def luhn_valid(digits: str) -> bool:
    """Whether the ASCII digits ``digits`` pass the Luhn check (ISO/IEC 7812-1), as payment card numbers do."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_personal_number(narrow: str) -> bool:
    digits = narrow.replace(" ", "").replace("-", "")
    if is_resident_id(digits):
        return True
    return 16 <= len(digits) <= 19 and luhn_valid(digits)


def _mask_number(original: str, narrow: str) -> str:
    """Every digit (and a final ``X``) but the first three and the last two becomes ``*``; the rest stays."""
    last = len(narrow) - 1
    positions = [i for i, ch in enumerate(narrow) if ch in _DIGITS or (i == last and ch in "Xx")]
    hidden = set(positions[3:-2])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(original))


def _mask_email(original: str, narrow: str) -> str:
    """Keep the local part's first character, the ``@``, the dots and the top-level domain."""
    at = narrow.index("@")
    tld = narrow.rindex(".")
    out = [original[0]]
    for i in range(1, len(original)):
        keep = i == at or i >= tld or (i > at and narrow[i] == ".")
        out.append(original[i] if keep else "*")
    return "".join(out)


def mask_personal_data(text: str) -> str:
    """``text`` with every ID, bank-card, mobile and landline number and e-mail address in it masked.

    See the module docstring for what is found and how it is shown.  Text without any of
    them is returned as it is (the same object).
    """
    if _CANDIDATE.search(text) is None:
        return text
    narrow = text.translate(_NARROW)
    parts: list[str] = []
    last = 0
    for m in _PATTERN.finditer(narrow):
        if m.group("email") is not None:
            start, end = m.span("email")
            masked = _mask_email(text[start:end], narrow[start:end])
        elif m.group("mobile") is not None:
            start, end = m.span("mobile")  # a +86 prefix stays as written
            masked = _mask_number(text[start:end], narrow[start:end])
        elif m.group("landline") is not None:
            start, end = m.span("landline")
            masked = _mask_number(text[start:end], narrow[start:end])
        else:
            start, end = m.span("long")
            if not _is_personal_number(narrow[start:end]):
                continue
            masked = _mask_number(text[start:end], narrow[start:end])
        parts.append(text[last:start])
        parts.append(masked)
        last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)

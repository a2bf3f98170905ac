"""Spreadsheet formula injection: text cells that a spreadsheet would run are made plain text.

Titles and other texts in the report are written by the public.  A CSV or XLSX cell whose
text begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one) is
read by Excel, LibreOffice and Google Sheets as a formula — ``=HYPERLINK(...)`` sends data
away when clicked, ``=cmd|...`` once started programs.  OWASP's guidance ("CSV Injection",
owasp.org/www-community/attacks/CSV_Injection; ASVS 5.0 requirement 1.2.10, which adds the
NUL character) is to prefix such a cell with a single quote so that it is read as text:
that is :func:`neutral_text`.  Only text cells are touched; numbers, dates and rates are
written as the values they are.
"""

from __future__ import annotations

__all__ = ["FORMULA_TRIGGERS", "neutral_text"]

FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "\0")
"""Characters that, at the start of a cell, make a spreadsheet read it as a formula (OWASP, ASVS 1.2.10)."""


def neutral_text(text: str) -> str:
    """``text`` with a ``'`` in front when it begins with one of :data:`FORMULA_TRIGGERS`, else unchanged."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text

"""JSON text written by orjson where it is, byte for byte, what the standard ``json`` writes.

Every command writes JSON twice: the canonical text its event's hash covers
(:mod:`jianyi_flow.history`) and, on SQL stores, the event's ``changes`` and ``payload``
columns (:func:`jianyi_flow.sql.types.dumps`).  Both texts are defined as what ``json``
writes (stored hashes and rows depend on it), and ``json``'s C encoder is the slow part:
orjson writes a typical event in about a tenth of the time.

The two libraries agree exactly on :func:`plain` values — exact ``str``, ``int``,
``bool``, ``None``, ``list``, ``tuple``, and ``dict`` with exact ``str`` keys — with
``ensure_ascii=False``, compact separators, and either insertion order or sorted keys
(code point order in both).  ``tests/test_history_encoding.py`` checks every code point,
the integer bounds and random nested values.  They differ elsewhere: orjson writes
``1e-05`` as ``0.00001`` and NaN as ``null``, writes enums, UUIDs and datetimes that json
refuses, and may read a ``dict`` subclass differently from its ``items()``.  So callers
ask :func:`plain` first and leave anything else to ``json``, which also raises the usual
error for what it cannot write.  orjson refuses some plain values (integers beyond 64 bits,
lone surrogates): its ``TypeError`` sends those to ``json`` too.
"""

from __future__ import annotations

from typing import Any

ORJSON_DEPTH = 254
"""orjson writes 254 levels of nesting and refuses more; :func:`plain` draws the same line (a cycle ends there too)."""

_NONE = type(None)


def plain(value: Any, depth: int = ORJSON_DEPTH) -> bool:
    """Whether ``value`` holds only types on which orjson and json write the same text (see the module docstring)."""
    if not depth:
        return False
    t = type(value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                return False
            t = type(v)
            if t is str or t is int or v is None or t is bool:
                continue
            if not plain(v, depth - 1):
                return False
        return True
    if t is list or t is tuple:
        for v in value:
            t = type(v)
            if t is str or t is int or v is None or t is bool:
                continue
            if not plain(v, depth - 1):
                return False
        return True
    return t is str or t is int or t is _NONE or t is bool

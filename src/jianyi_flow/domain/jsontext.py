"""JSON text written by orjson where it is, byte for byte, what the standard ``json`` writes.

Every command hashes the canonical text of its event (:mod:`jianyi_flow.domain.history`).  That
text is defined as what ``json`` writes (stored hashes depend on it), and ``json``'s C
encoder was most of the hash's cost: through this module the simulation's events take
3.88 µs each instead of 4.99 (``python -m benchmarks.json_text``).  The SQL store's JSON
columns do not use it: for their small documents the check and the fragments below cost
about what orjson saves (2.76 µs an event against 2.51 with ``json``).

The two libraries agree exactly on exact ``int``, ``bool``, ``None``, ``list``, ``tuple``,
``dict`` with ``str`` keys, and ASCII ``str``, with ``ensure_ascii=False``, compact
separators, and either insertion order or sorted keys (code point order in both).
``tests/test_history_encoding.py`` checks every ASCII character (as values and keys), every
other code point (see below), the integer bounds and random nested values.  They differ
elsewhere: orjson writes ``1e-05`` as ``0.00001`` and NaN as ``null``, writes plain enums,
UUIDs and datetimes that json refuses, and may read a ``dict``
subclass differently from its ``items()``.  So callers ask :func:`prepare` first and leave
anything else to ``json``, which also raises the usual error for what it cannot write.
orjson refuses some values :func:`prepare` lets through (integers beyond 64 bits, lone
surrogates): its ``TypeError`` sends those to ``json`` too.

One difference from ``json`` alone remains, for callers that break the rules: the value is
checked, then written, so a dict another thread changes in between may be written with
what the check never saw (``json`` writes a plain dict in one C call).  The engine hands
these functions dicts it has just built and shares with no one.

A non-ASCII ``str`` is never handed to orjson as it is: orjson reads a string through
CPython's UTF-8 cache, which then stays attached to the string for its lifetime — three
bytes a Chinese character, more than the string's own two.  The texts of a suggestion live
as long as its row in a :class:`~jianyi_flow.storage.memory.MemoryStore` or an SQL batch's cache;
handing them over as they are raised the 100,000-suggestion simulation's peak memory from
389 to 419 MiB, and real suggestions carry far longer texts than the simulated ones.  Such
a string goes in as an ``orjson.Fragment`` of json's own escaping of it
(``encode_basestring``): the text is json's by construction, and the caller's string is
left as it was.  That keeps about half of orjson's gain (instructions of the 3,000-suggestion
simulation: 11.28 G with json alone, 11.06 G this way, 10.82 G handing strings over).
"""

from __future__ import annotations

import json.encoder
from typing import Any

from orjson import Fragment

ORJSON_DEPTH = 254
"""orjson writes 254 levels and refuses more; :func:`prepare` draws the same line (a cycle ends there too)."""

NOT_PLAIN: Any = object()
"""What :func:`prepare` returns for a value orjson could write otherwise than json."""

_ESCAPE = json.encoder.encode_basestring  # what json's encoder runs on a str when ensure_ascii=False


def prepare(value: Any, depth: int = ORJSON_DEPTH) -> Any:
    """``value`` as orjson should be given it to write json's text, or :data:`NOT_PLAIN`.

    The same object when it holds no non-ASCII string, else a copy (lists for tuples) in
    which each non-ASCII string is a ``Fragment``; the caller's containers are never
    changed.  See the module docstring for what is plain.

    The dict and the list branches repeat one loop body on purpose: one loop over
    ``items()`` or ``enumerate()`` with the key check in a pass of its own cost 0.5 % more
    instructions of the whole simulation (11.108 against 11.059 × 10⁹ at 3,000 suggestions).
    """
    if not depth:
        return NOT_PLAIN
    t = type(value)
    if t is dict:
        copy: Any = None
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                return NOT_PLAIN
            t = type(v)
            if t is str:
                if v.isascii():
                    continue
                w = Fragment(_ESCAPE(v))
            elif t is int or v is None or t is bool:
                continue
            else:
                w = prepare(v, depth - 1)
                if w is v:
                    continue
                if w is NOT_PLAIN:
                    return NOT_PLAIN
            if copy is None:
                copy = dict(value)
            copy[k] = w
        return value if copy is None else copy
    if t is list or t is tuple:
        copy = None
        for i, v in enumerate(value):
            t = type(v)
            if t is str:
                if v.isascii():
                    continue
                w = Fragment(_ESCAPE(v))
            elif t is int or v is None or t is bool:
                continue
            else:
                w = prepare(v, depth - 1)
                if w is v:
                    continue
                if w is NOT_PLAIN:
                    return NOT_PLAIN
            if copy is None:
                copy = list(value)
            copy[i] = w
        return value if copy is None else copy
    if t is str:
        return value if value.isascii() else Fragment(_ESCAPE(value))
    if t is int or t is bool or value is None:
        return value
    return NOT_PLAIN

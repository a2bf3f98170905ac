"""``MemoryStore``: the in-process store, for tests, simulations and small tools.

It keeps everything in dicts behind one lock and is the reference implementation of the
:class:`~jianyi_flow.storage.base.Store` contract.  Due times are kept in a sorted index so the
supervision queries (overdue, due soon) do not scan every suggestion; the ids due at one
time are a set, sorted when a query first reads them.

Compact history
---------------
A simulated campaign holds millions of events, so they are not kept as
:class:`~jianyi_flow.domain.model.Event` objects.  Each suggestion has one list
``[row, blob, *refs]``: the current row as it is (``load`` is on every command's path),
``blob`` (``bytes``, one record per event in version order) and ``refs``, the objects the
records point to — the actor, and values the row holds too, so they are not kept twice.
A record is::

    shape (u16) | at (10 bytes: the datetime's pickle state) | tail length (u16) | tail | hash (32 bytes)

The *shape* — kind, from and to state, the time zone of ``at``, the changed fields and how
each value is kept, whether there is a reason, a payload, messages — is shared by every
event alike and kept once, in ``_shapes``.  The *tail* is ``marshal`` data, exact for the
builtin types (a value comes back with its type), holding the small change values, the
reason, the payload and the recipients of the event's outbox messages.  A change value is
kept, by its code in the shape, as

* ``j``: in the tail;
* ``s``: a reference to a text that *is* the row's field (title, problem, reply...);
* ``t``: a reference to the row's datetime of which the value is the UTC ISO text;
* ``a``: nothing: the value is the UTC ISO text of the event's own ``at``;
* ``e``: a reference to the row's field of which the value is the encoding (proposer,
  evaluation).

``hash`` is the raw SHA-256.  ``prev_hash`` is not kept: it is the hash ending the record
before (``""`` for the first).  An event for which any of this does not hold exactly — a
hash that is not 64 lowercase hex digits, a ``prev_hash`` that breaks the chain, a value
``marshal`` refuses, an ``Event`` subclass, a naive ``at``... — is kept whole: its record
has shape 0 and one reference, the event itself.  :meth:`MemoryStore.history` rebuilds
events equal to the ones committed, field by field and type by type.

Commits do not encode their event at once: they queue it (``_pending``) and every
:data:`_BATCH`-th commit encodes the queue in one loop, where the work runs faster than
spread between commands.  Whatever reads histories or the outbox first encodes the queue.

The outbox is kept the same way.  A message that says only what its event says (topic =
kind, same suggestion, version and time, payload ``{"state": <to_state>}``: what Flow
sends) is just its recipient, in the event's tail; the queue of unsent messages
(:class:`_Outbox`) holds, per commit, the suggestion id, the version and the first message
id in flat arrays.  Any other message is kept whole.  A message marked sent is dropped
and never comes back.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import marshal
import struct
import threading
import typing
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ..domain import model
from ..domain.clock import require_aware
from ..domain.model import Actor, Event, Suggestion, encode_datetime, encode_value
from ..errors import ConcurrencyConflict, DuplicateSuggestion, IdempotencyKeyReused, NotFound, ValidationError
from .base import Change, IdempotencyRecord, OutboxMessage, Query, matches

_HDR = struct.Struct("<H10sH")  # shape, at (datetime pickle state: wall time and fold), tail length
_HDR_SIZE = _HDR.size
_HASH = 32
_U16 = 0xFFFF
_SHARED_TEXT = 7
"""A text at least this long that *is* the row's field is kept by reference (8 bytes), not copied."""
_ACTOR_CACHE = 512
"""At most this many actors are remembered to share one object among equal actors."""
_STAMP_CACHE = 512
"""At most this many due times' timestamps are remembered (:meth:`MemoryStore._stamp`)."""
_NO_AT = bytes(10)
_BATCH = 64
"""Commits encode their events this many at a time (see :meth:`MemoryStore._flush`)."""
_UTC = dt.UTC

# ``datetime(state, tzinfo)`` is the constructor pickle uses: it rebuilds a datetime from the
# 10-byte state ``__reduce_ex__(4)`` gives (wall time and fold), exactly and fast.
_DATETIME: Any = dt.datetime
_TIMEZONE = dt.timezone


_MEMO: dict[Any, str] = model.DATETIME_TEXTS.table
"""``encode_datetime``'s memo ``(datetime, fold) -> text``, read directly on the hot path.

Whatever it holds is right (a miss calls the function), so it only has to be fast.
"""
_HINTS = typing.get_type_hints(Suggestion)
_TIME_FIELDS = frozenset(k for k, t in _HINTS.items() if t in (dt.datetime, dt.datetime | None))
_TEXT_FIELDS = frozenset(k for k, t in _HINTS.items() if t in (str, str | None))
_ENCODED_FIELDS = frozenset({"proposer", "evaluation"})  # encoded as dicts: kept as the row's object


_Split = Callable[[Suggestion, dict[Any, Any], dt.datetime, list[Any], list[Any]], str]
_SPLITTERS: dict[tuple[Any, ...], _Split] = {}
"""The splitter of each tuple of changed fields seen (at most 4096: beyond, they are not kept)."""


def _splitter(keys: tuple[Any, ...]) -> _Split:
    """The function that splits changes with these keys into references and inline values.

    ``split(s, changes, at, refs, inline)`` appends each value kept by reference to
    ``refs`` and each other value to ``inline`` (both in key order) and returns the codes
    (see the module docstring).  It is generated once per key tuple — straight-line code,
    a test per field only where keeping by reference can apply — because it runs on every
    commit.  A value kept by reference is exactly what the rebuild gives back; anything
    else is inline, which ``marshal`` keeps exactly.
    """
    lines = ["def split(s, c, at, refs, inline):"]
    parts = []
    for i, k in enumerate(keys):
        if type(k) is not str or not k.isidentifier():
            kind = "j"
        else:
            kind = "t" if k in _TIME_FIELDS else "s" if k in _TEXT_FIELDS else "e" if k in _ENCODED_FIELDS else "j"
        if kind == "j":
            lines.append(f"    inline.append(c[K[{i}]])")
            parts.append('"j"')
            continue
        lines.append(f"    v = c[{k!r}]")
        lines.append(f"    o = s.{k}")
        if kind == "t":  # the row's datetime, of which the value is the UTC ISO text
            lines += [
                "    if type(v) is str and type(o) is datetime and o.tzinfo is not None"
                " and (MEMO.get((o, o.fold)) or encode_datetime(o)) == v:",
                "        if o is at:",
                f"            k{i} = 'a'",
                "        else:",
                "            refs.append(o)",
                f"            k{i} = 't'",
            ]
        elif kind == "s":  # a long text that is the row's own
            lines += [
                f"    if v is o and o is not None and len(o) >= {_SHARED_TEXT}:",
                "        refs.append(o)",
                f"        k{i} = 's'",
            ]
        else:  # the row's object, of which the value is the encoding
            lines += [
                f"    if type(v) is dict and o is not None and same(encode_value({k!r}, o), v):",
                "        refs.append(o)",
                f"        k{i} = 'e'",
            ]
        lines += ["    else:", "        inline.append(v)", f"        k{i} = 'j'"]
        parts.append(f"k{i}")
    lines.append(f"    return {' + '.join(parts) or repr('')}")
    namespace: dict[str, Any] = {"K": keys, "datetime": dt.datetime, "encode_datetime": encode_datetime, "MEMO": _MEMO,
                                 "encode_value": encode_value, "same": _same}
    exec("\n".join(lines), namespace)  # generated from field names only: see above
    split: _Split = namespace["split"]
    if len(_SPLITTERS) < 4096:
        _SPLITTERS[keys] = split
    return split


class _KeepWhole(Exception):
    """An event the compact form cannot keep exactly: it is kept as it is."""


class _Shape:
    """What every event of one shape shares (see the module docstring)."""

    __slots__ = ("codes", "from_state", "inline", "keys", "kind", "messages", "payload", "plan", "reason", "refs",
                 "to_state", "tz")

    def __init__(
        self, kind: str, from_state: Any, to_state: Any, tz: dt.tzinfo, keys: tuple[Any, ...], codes: str, flags: int
    ) -> None:
        self.kind = kind
        self.from_state = from_state
        self.to_state = to_state
        self.tz = tz
        self.keys = keys
        self.codes = codes
        self.reason = bool(flags & 1)
        self.payload = bool(flags & 2)
        self.messages = bool(flags & 4)
        self.refs = 1 + sum(code in "tse" for code in codes)  # the actor, then one per value kept by reference
        self.inline = codes.count("j")
        # how to rebuild the changes: None when every value is inline, else (key, code) in order
        self.plan = None if self.inline == len(codes) else tuple(zip(keys, codes, strict=True))


def _raw_hash(h: Any) -> bytes | None:
    """The 32 bytes of a hash written as 64 lowercase hex digits, else ``None``."""
    if type(h) is not str or len(h) != 64:
        return None
    try:
        raw = bytes.fromhex(h)
    except ValueError:
        return None
    return raw if raw.hex() == h else None


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types throughout (``1 == True`` but they encode differently)."""
    if type(a) is not type(b) or a != b:
        return False
    if type(a) is dict:
        for k, x in a.items():
            y = b[k]
            if type(x) is not type(y) or (type(x) in _CONTAINERS and not _same(x, y)):
                return False
    elif type(a) in _CONTAINERS:
        for x, y in zip(a, b, strict=True):
            if type(x) is not type(y) or (type(x) in _CONTAINERS and not _same(x, y)):
                return False
    return True


_CONTAINERS = frozenset({dict, list, tuple})


def _derivable(event: Event, m: OutboxMessage) -> bool:
    """Whether ``m`` says only what its event says, so it can be rebuilt from it and its recipient.

    Such a message has the event's kind as topic, its suggestion, version and time, and the
    payload ``{"state": <to_state's value>}``: all of the same types as the event's.
    """
    at = event.at
    created = m.created_at
    p = m.payload
    state = getattr(event.to_state, "_value_", None)
    return (
        type(m) is OutboxMessage
        and type(m.recipient) is str
        and (created is at or (type(created) is dt.datetime and created.tzinfo is at.tzinfo
                               and created.fold == at.fold and created == at))
        and type(m.topic) is str and m.topic == event.kind
        and type(m.suggestion_id) is str and m.suggestion_id == event.suggestion_id
        and type(m.version) is int and m.version == event.version
        and type(p) is dict and len(p) == 1 and type(state) is str
        and type(p.get("state")) is str and p.get("state") == state
    )


class _Outbox:
    """The unsent messages, one entry per commit that wrote any, oldest first.

    Message ids are given out consecutively, so entry ``i`` holds the ids from
    ``firsts[i]`` up to the next entry's first id (or ``next``).  ``sids[i]`` is ``None``
    once every message of entry ``i`` is sent; entries before ``head`` are all sent and are
    cut off now and then.  ``versions[i]`` is 0 when its messages are all kept whole.
    """

    __slots__ = ("firsts", "head", "leases", "next", "odd", "sent", "sids", "versions")

    def __init__(self) -> None:
        self.next = 1
        self.firsts = array("q")
        self.sids: list[str | None] = []
        self.versions = array("I")
        self.head = 0
        self.sent: set[int] = set()  # sent ids of entries not yet all sent
        self.leases: dict[int, tuple[int, dt.datetime]] = {}  # claimed, unsent: (attempts, leased until)
        self.odd: dict[int, OutboxMessage] = {}  # messages kept whole (not derivable from their event)

    def keep_whole(self, first: int, messages: Sequence[OutboxMessage],
                   recipients: Sequence[str | None] | None) -> None:
        """Keep whole the messages of an entry that cannot be rebuilt from their event (ids from ``first``)."""
        for i, m in enumerate(messages):
            if recipients is None or recipients[i] is None:
                self.odd[first + i] = m

    def ids(self, b: int) -> range:
        """The message ids of entry ``b``."""
        return range(self.firsts[b], self.firsts[b + 1] if b + 1 < len(self.firsts) else self.next)

    def mark_sent(self, mid: int) -> None:
        b = bisect.bisect_right(self.firsts, mid, self.head) - 1
        if b < self.head or self.sids[b] is None:
            return
        ids = self.ids(b)
        if mid not in ids or mid in self.sent:
            return
        self.sent.add(mid)
        self.leases.pop(mid, None)
        self.odd.pop(mid, None)
        if all(m in self.sent for m in ids):
            self.sids[b] = None
            self.sent.difference_update(ids)

    def trim(self) -> None:
        head, sids = self.head, self.sids
        while head < len(sids) and sids[head] is None:
            head += 1
        if head > 1024 and 2 * head > len(sids):
            del self.firsts[:head], self.sids[:head], self.versions[:head]
            head = 0
        self.head = head


class MemoryStore:
    """A thread-safe in-memory :class:`~jianyi_flow.storage.base.Store`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: dict[str, list[Any]] = {}  # id -> [row, blob, *refs]: see the module docstring
        self._pending: list[tuple[Suggestion, Event, tuple[OutboxMessage, ...]]] = []  # committed, not yet encoded
        self._ids: list[str] = []  # sorted: keyset paging and bulk export without sorting per page
        self._due: dict[float, set[str]] = {}  # UTC timestamp -> the ids then due
        self._due_sorted: dict[float, list[str]] = {}  # the same ids sorted, made by a query, dropped on change
        self._due_times: list[float] = []  # the keys of _due, sorted: floats compare fast
        self._outbox = _Outbox()
        self._keys: dict[str, IdempotencyRecord] = {}
        self._shapes: list[_Shape | None] = [None]  # shape 0: the event is kept whole
        self._shape_ids: dict[tuple[Any, ...], int] = {}
        self._actors: dict[str, Actor] = {}  # by id: equal actors share one object (bounded)
        self._zones: dict[tuple[Any, ...], dt.tzinfo] = {}  # equal fixed-offset zones share one object
        self._stamps: dict[int, tuple[dt.datetime, float]] = {}  # id(due time) -> (it, its timestamp): see commit

    # --- writing -------------------------------------------------------------------------
    def commit(self, change: Change) -> None:
        s = change.suggestion
        event = change.event
        if event.suggestion_id != s.id or event.version != s.version or s.version != change.expected_version + 1:
            raise ValidationError("change", "row, event and expected version must agree")
        with self._lock:
            entry = self._rows.get(s.id)
            current: Suggestion | None = None if entry is None else entry[0]
            if change.expected_version == 0:
                if current is not None:
                    raise DuplicateSuggestion(s.id)
            elif current is None:
                raise NotFound("suggestion", s.id)
            elif current.version != change.expected_version:
                raise ConcurrencyConflict(s.id, change.expected_version, current.version)
            key = change.idempotency_key
            if key is not None and key in self._keys:
                raise IdempotencyKeyReused(key, f"suggestion {self._keys[key].suggestion_id}")
            old_due = None if current is None else current.due_at
            new_due = s.due_at
            moved = old_due is not new_due
            if moved:  # the due index, by UTC timestamp (computed before anything changes)
                old_ts = None if old_due is None else self._stamp(old_due)
                new_ts = None if new_due is None else self._stamp(new_due)
            # nothing below can fail: every check is done
            sid = s.id
            if entry is None:
                bisect.insort(self._ids, sid)
                self._rows[sid] = [s, b""]
            else:
                entry[0] = s
            if moved:
                # Each due time holds a set: every suggestion due on one day shares that day's
                # end as its due time, so at 100,000 suggestions a due time held up to 7,000
                # ids, and keeping them in a sorted list (bisect and insort on each move) took
                # 2.7 % of a py-spy profile of the memory simulation.  A query sorts a set
                # when it reads it and keeps the sorted list until the set changes.
                due = self._due
                if old_ts is not None:
                    ids = due.get(old_ts)
                    if ids is not None and sid in ids:
                        if len(ids) == 1:
                            del due[old_ts]
                            del self._due_times[bisect.bisect_left(self._due_times, old_ts)]
                        else:
                            ids.remove(sid)
                        self._due_sorted.pop(old_ts, None)
                if new_ts is not None:
                    ids = due.get(new_ts)
                    if ids is None:
                        due[new_ts] = {sid}
                        bisect.insort(self._due_times, new_ts)
                    else:
                        ids.add(sid)
                        self._due_sorted.pop(new_ts, None)
            if key is not None:
                self._keys[key] = IdempotencyRecord(key, sid, s.version, event.kind)
            pending = self._pending
            pending.append((s, event, change.messages))
            if len(pending) >= _BATCH:
                self._flush()

    def _stamp(self, when: dt.datetime) -> float:
        """``when.timestamp()``, remembered by the object's identity (lock held).

        Due times repeat by identity: ``Flow.due_for`` caches one datetime object per step
        and start day, which every suggestion started that day shares, and an aware
        datetime's ``timestamp()`` asks its zone for the offset each time (0.6 µs with
        ``ZoneInfo``, timeit in a throwaway script; the lookup here is about a third of
        that).  The entry keeps the object, so its id cannot be reused while it is
        remembered; the memo is emptied when it reaches :data:`_STAMP_CACHE` entries.
        """
        known = self._stamps.get(id(when))
        if known is not None and known[0] is when:
            return known[1]
        ts = when.timestamp()
        if len(self._stamps) >= _STAMP_CACHE:
            self._stamps.clear()
        self._stamps[id(when)] = (when, ts)
        return ts

    def _flush(self) -> None:
        """Encode the pending events into their histories and their messages into the outbox (lock held).

        Commits leave their row's event and messages here, and every :data:`_BATCH`-th
        commit encodes them all (the same work, in a tight loop where it runs faster);
        whatever reads histories or the outbox flushes first.  This is the hot path of
        every command, so it is one loop that tries identity before equality and calls as
        few functions as it can.  An event is kept whole (shape 0) when anything about it
        is unusual: see the module docstring.
        """
        pending, self._pending = self._pending, []
        rows = self._rows
        actors = self._actors
        shape_ids = self._shape_ids
        splitters = _SPLITTERS
        outbox = self._outbox
        for s, event, messages in pending:
            sid = s.id
            entry = rows[sid]
            blob = entry[1]
            try:
                h = event.hash
                at = event.at
                changes = event.changes
                payload = event.payload
                kind = event.kind
                actor = event.actor
                tz = at.tzinfo
                try:
                    raw = bytes.fromhex(h)
                except (TypeError, ValueError):
                    raw = b""
                # (reason and a non-empty payload go to marshal, which refuses what it cannot keep exactly)
                if (
                    len(raw) != 32 or len(h) != 64 or type(event) is not Event or type(at) is not _DATETIME
                    or type(changes) is not dict or type(kind) is not str or type(actor) is not Actor
                    or type(actor.id) is not str or tz is None or (not payload and type(payload) is not dict)
                    or (not h.islower() and raw.hex() != h)
                    or event.prev_hash != (blob[-32:].hex() if blob else "")
                ):
                    raise _KeepWhole
                known = actors.get(actor.id)  # one object for equal actors (often built anew per command)
                if known is not actor:
                    if (
                        known is not None and known.role is actor.role and known.unit == actor.unit
                        and known.name == actor.name and type(known.unit) is type(actor.unit)
                        and type(known.name) is type(actor.name)
                    ):
                        actor = known
                    else:
                        if len(actors) >= _ACTOR_CACHE:
                            actors.clear()
                        actors[actor.id] = actor
                refs: list[Any] = [actor]
                inline: list[Any] = []
                keys = tuple(changes)
                split = splitters.get(keys)
                if split is None:
                    split = _splitter(keys)
                codes = split(s, changes, at, refs, inline)
                flags = 0
                reason = event.reason
                if reason is not None:
                    inline.append(reason)
                    flags = 1
                if payload:
                    inline.append(payload)
                    flags |= 2
                recipients: list[str | None] | None = None
                if messages:
                    flags |= 4
                    recipients = []
                    version = event.version
                    state = event.to_state._value_  # not an Enum: AttributeError, kept whole
                    for m in messages:
                        p = m.payload
                        if (  # the usual case, by identity: Flow builds messages from the event's own objects
                            m.created_at is at and m.topic is kind and m.suggestion_id is event.suggestion_id
                            and m.version is version and type(m) is OutboxMessage and type(m.recipient) is str
                            and type(p) is dict and len(p) == 1 and p.get("state") is state and type(state) is str
                        ) or _derivable(event, m):
                            recipients.append(m.recipient)
                        else:
                            recipients.append(None)
                    inline.append(tuple(recipients))
                try:
                    tail = marshal.dumps(tuple(inline)) if inline else b""
                except ValueError:  # a value marshal cannot keep exactly
                    raise _KeepWhole from None
                if type(tz) is _TIMEZONE:
                    tz = self._zones.setdefault((tz.utcoffset(None), tz.tzname(None)), tz)
                skey = (kind, id(event.from_state), id(event.to_state), id(tz), keys, codes, flags)
                shape = shape_ids.get(skey)
                if shape is None:
                    if len(self._shapes) > _U16:
                        raise _KeepWhole
                    shape = shape_ids[skey] = len(self._shapes)
                    self._shapes.append(_Shape(kind, event.from_state, event.to_state, tz, keys, codes, flags))
                if len(tail) > _U16:
                    raise _KeepWhole
                record = _HDR.pack(shape, at.__reduce_ex__(4)[1][0], len(tail)) + tail + raw
            except Exception:  # _KeepWhole, or anything unforeseen: never lose a committed event
                record, refs, recipients = self._whole(event), [event], None
            # a new list (an entry is never changed but for its row): readers keep a consistent history
            new = entry + refs
            new[1] = blob + record
            rows[sid] = new
            if messages:
                first = outbox.next
                version = s.version
                if version > 0xFFFFFFFF:  # beyond the array: all its messages are kept whole
                    version, recipients = 0, None
                if recipients is None or None in recipients:
                    outbox.keep_whole(first, messages, recipients)
                outbox.firsts.append(first)
                outbox.sids.append(sid)
                outbox.versions.append(version)
                outbox.next = first + len(messages)

    @staticmethod
    def _whole(event: Event) -> bytes:
        """The record of an event kept whole (its one reference is the event).

        Its trailer is the event's hash when that is canonical, so that the next event can
        chain to it; else zeros, and the next event chains only if its prev_hash is 64 zeros.
        """
        return _HDR.pack(0, _NO_AT, 0) + (_raw_hash(event.hash) or bytes(_HASH))

    # --- reading the compact history -----------------------------------------------------
    def _decode(self, suggestion_id: str, entry: list[Any]) -> list[Event]:
        """Rebuild the events of one history from its entry ``(row, blob, *refs)``."""
        shapes = self._shapes
        blob: bytes = entry[1]
        view = memoryview(blob)
        out: list[Event] = []
        off = 0
        r = 2
        prev = ""
        end = len(blob)
        version = 0
        while off < end:
            version += 1
            ix, state, length = _HDR.unpack_from(blob, off)
            off += _HDR_SIZE
            tail = marshal.loads(view[off:off + length]) if length else ()
            off += length
            h = blob[off:off + _HASH].hex()
            off += _HASH
            shape = shapes[ix]
            if shape is None:
                out.append(entry[r])
                r += 1
                prev = h
                continue
            actor = entry[r]
            r += 1
            at = _DATETIME(state, shape.tz)
            plan = shape.plan
            if plan is None:
                changes = dict(zip(shape.keys, tail, strict=False))  # the tail goes on: reason, payload...
                t = shape.inline
            else:
                changes = {}
                t = 0
                for k, code in plan:
                    if code == "j":
                        changes[k] = tail[t]
                        t += 1
                    elif code == "a":
                        changes[k] = at.astimezone(_UTC).isoformat()  # what encode_datetime gives
                    else:
                        v = entry[r]
                        r += 1
                        if code == "s":
                            changes[k] = v
                        elif code == "t":
                            changes[k] = encode_datetime(v)  # deadlines repeat: its memo often has them
                        else:
                            changes[k] = encode_value(k, v)
            reason = None
            if shape.reason:
                reason = tail[t]
                t += 1
            payload: dict[str, Any] = {}
            if shape.payload:
                payload = tail[t]
            out.append(Event(suggestion_id, version, shape.kind, shape.from_state, shape.to_state, actor,
                             at, reason, changes, payload, prev, h))
            prev = h
        return out

    def _messages(self, suggestion_id: str, version: int) -> list[OutboxMessage | None]:
        """The derivable messages of one event, rebuilt (``None`` where a message is kept whole)."""
        blob: bytes = self._rows[suggestion_id][1]
        off = 0
        for _ in range(version - 1):  # skip to the record of ``version``
            length = _HDR.unpack_from(blob, off)[2]
            off += _HDR_SIZE + length + _HASH
        ix, state, length = _HDR.unpack_from(blob, off)
        shape = self._shapes[ix]
        if shape is None or not shape.messages:
            return []
        off += _HDR_SIZE
        recipients: tuple[str | None, ...] = marshal.loads(memoryview(blob)[off:off + length])[-1]
        at = _DATETIME(state, shape.tz)
        return [
            None if r is None else OutboxMessage(
                topic=shape.kind, suggestion_id=suggestion_id, version=version,
                recipient=r, created_at=at,
                payload={"state": shape.to_state.value},
            )
            for r in recipients
        ]

    def _replace_event(self, suggestion_id: str, index: int, event: Event) -> None:
        """Replace the ``index``-th event (0-based) of a history by ``event``, as stored — for tests.

        Only tamper tests use this: it writes behind the store's back what a broken or
        malicious writer could, so that :func:`~jianyi_flow.domain.history.verify_events` has
        something to find.  The new event is kept whole; the rest of the history, the row
        and the outbox are left as they were.
        """
        with self._lock:
            self._flush()
            entry = self._rows[suggestion_id]
            blob: bytes = entry[1]
            if not 0 <= index < len(self.history(suggestion_id)):
                raise IndexError(index)
            off = 0
            r = 2
            for _ in range(index):
                ix, _state, length = _HDR.unpack_from(blob, off)
                shape = self._shapes[ix]
                off += _HDR_SIZE + length + _HASH
                r += 1 if shape is None else shape.refs
            ix, _state, length = _HDR.unpack_from(blob, off)
            shape = self._shapes[ix]
            end = off + _HDR_SIZE + length + _HASH
            outbox = self._outbox
            for b in range(outbox.head, len(outbox.sids)):  # its messages are kept whole from now on
                if outbox.sids[b] == suggestion_id and outbox.versions[b] == index + 1:
                    for i, m in enumerate(self._messages(suggestion_id, index + 1)):
                        if m is not None and outbox.firsts[b] + i not in outbox.sent:
                            outbox.odd[outbox.firsts[b] + i] = m
            # keep the old trailer: the next record's prev_hash is still the old hash
            record = _HDR.pack(0, _NO_AT, 0) + blob[end - _HASH:end]
            after = r + (1 if shape is None else shape.refs)
            self._rows[suggestion_id] = [entry[0], blob[:off] + record + blob[end:], *entry[2:r], event, *entry[after:]]

    # --- reading -------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        try:
            row: Suggestion = self._rows[suggestion_id][0]
        except KeyError:
            raise NotFound("suggestion", suggestion_id) from None
        return row

    def history(self, suggestion_id: str) -> list[Event]:
        with self._lock:
            if self._pending:
                self._flush()
            entry = self._rows.get(suggestion_id)
        # an entry's history is never changed in place (a flush puts a new list): decode it unlocked
        return [] if entry is None else self._decode(suggestion_id, entry)

    def query(self, query: Query) -> list[Suggestion]:
        for field in ("due_before", "due_after"):
            value = getattr(query, field)
            if value is not None:
                require_aware(value, f"query.{field}")
        if query.limit is not None and query.limit <= 0:
            return []
        with self._lock:
            if query.by_due:
                times = self._due_times
                lo = 0 if query.due_after is None else bisect.bisect_left(times, query.due_after.timestamp())
                hi = len(times) if query.due_before is None else bisect.bisect_left(times, query.due_before.timestamp())
                out: list[Suggestion] = []
                ordered = self._due_sorted
                for ts in times[lo:hi]:
                    ids = ordered.get(ts)
                    if ids is None:
                        ids = ordered[ts] = sorted(self._due[ts])
                    for sid in ids:
                        row = self._rows[sid][0]
                        if matches(query, row):
                            out.append(row)
                            if query.limit is not None and len(out) >= query.limit:
                                return out
                return out
            start = 0 if query.after_id is None else bisect.bisect_right(self._ids, query.after_id)
            found: list[Suggestion] = []
            for sid in itertools.islice(self._ids, start, None):
                row = self._rows[sid][0]
                if matches(query, row):
                    found.append(row)
                    if query.limit is not None and len(found) >= query.limit:
                        break
            return found

    def suggestion_ids(self, after_id: str | None, limit: int) -> list[str]:
        """The next ``limit`` suggestion ids after ``after_id``, in order (for audits that must not decode rows)."""
        with self._lock:
            start = 0 if after_id is None else bisect.bisect_right(self._ids, after_id)
            return self._ids[start:start + max(limit, 0)]

    def export_events(self, after_id: str | None, limit: int) -> list[Event]:
        """The events of the next ``limit`` suggestions with ids after ``after_id`` (bulk export)."""
        with self._lock:
            if self._pending:
                self._flush()
            start = 0 if after_id is None else bisect.bisect_right(self._ids, after_id)
            entries = [(sid, self._rows[sid]) for sid in self._ids[start:start + limit]]
        out: list[Event] = []
        for sid, entry in entries:
            out.extend(self._decode(sid, entry))
        return out

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        return self._keys.get(key)

    # --- outbox --------------------------------------------------------------------------
    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        require_aware(now, "now")
        out: list[OutboxMessage] = []
        if limit <= 0:
            return out
        until = now + lease
        with self._lock:
            if self._pending:
                self._flush()
            ob = self._outbox
            for b in range(ob.head, len(ob.sids)):
                sid = ob.sids[b]
                if sid is None:
                    continue
                ids = ob.ids(b)
                first = ids.start
                derived: list[OutboxMessage | None] | None = None
                for mid in ids:
                    if mid in ob.sent:
                        continue
                    held = ob.leases.get(mid)
                    if held is not None and held[1] > now:
                        continue
                    attempts = 1 if held is None else held[0] + 1
                    whole = ob.odd.get(mid)
                    if whole is not None:
                        message = attrs.evolve(whole, id=mid, attempts=attempts)
                    else:
                        if derived is None:
                            derived = self._messages(sid, ob.versions[b])
                        m = derived[mid - first]
                        assert m is not None
                        message = OutboxMessage(m.topic, m.suggestion_id, m.version, m.recipient, m.created_at,
                                                m.payload, mid, attempts)
                    ob.leases[mid] = (attempts, until)
                    out.append(message)
                    if len(out) >= limit:
                        return out
        return out

    def mark_sent(self, ids: Iterable[int]) -> None:
        with self._lock:
            if self._pending:
                self._flush()
            for mid in ids:
                if isinstance(mid, int):
                    self._outbox.mark_sent(mid)
            self._outbox.trim()

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._rows)


"""A third-party store adapter: the whole store in one JSON file.

It implements the :class:`jianyi_flow.storage.base.Store` protocol from scratch (no
``MemoryStore`` underneath) and passes the contract kit, see
tests/test_custom_store_example.py::

    from jianyi_flow.testing import StoreContract

    class TestJsonFileStore(StoreContract):
        def make_store(self):
            return JsonFileStore(tmp_dir / "store.json")

What an adapter has to get right, and how this one does it:

* **All or nothing.**  ``commit`` checks everything first (version, duplicate id, reused
  key), builds the next state beside the current one, writes it to a temporary file and
  renames that over the store file (``os.replace`` is atomic).  Only then does the
  in-memory state move on; if the write fails nothing changed.
* **One writer at a time.**  A lock makes the check-then-write of ``commit`` (and of
  ``claim``) one step, so of two writers holding the same version exactly one wins.
* **Encoding.**  Suggestion fields go through the model's ``encode_value`` /
  ``decode_value``; datetimes are stored as UTC ISO text and read back aware.
* **Semantics from the reference.**  ``query`` uses :func:`jianyi_flow.storage.base.matches` and
  :func:`jianyi_flow.storage.base.order`, so filters and ordering are exactly MemoryStore's.

Good for a single process with a few thousand suggestions (every commit rewrites the
file); use ``SqlStore`` for anything bigger or shared.  Run this file for a demo.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jianyi_flow import SHANGHAI, Actor, FakeClock, Flow, Proposer, Role, State, Suggestion, SuggestionDraft
from jianyi_flow.domain.model import SUGGESTION_FIELDS, Event, decode_value, encode_value
from jianyi_flow.errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    NotFound,
    StoreError,
    ValidationError,
)
from jianyi_flow.storage.base import Change, IdempotencyRecord, OutboxMessage, Query, matches, order


def _aware(value: dt.datetime, field: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must be timezone-aware")
    return value


def _time(value: dt.datetime | None) -> str | None:
    """UTC ISO text.  (Converted here, not with ``encode_value``: see ``_encode``.)"""
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _untime(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text).astimezone(SHANGHAI)


def _encode(name: str, value: Any) -> Any:
    # Datetimes are converted directly rather than through encode_value, whose memo table
    # cannot tell the two wall times of a DST fold apart; everything else as the model says.
    if isinstance(value, dt.datetime):
        return _time(_aware(value, name))
    return encode_value(name, value)


def encode_suggestion(s: Suggestion) -> dict[str, Any]:
    return {name: _encode(name, getattr(s, name)) for name in SUGGESTION_FIELDS}


def decode_suggestion(data: dict[str, Any]) -> Suggestion:
    return Suggestion(**{name: decode_value(name, value) for name, value in data.items() if name in SUGGESTION_FIELDS})


def encode_event(e: Event) -> dict[str, Any]:
    return {
        "suggestion_id": e.suggestion_id,
        "version": e.version,
        "kind": e.kind,
        "from_state": None if e.from_state is None else e.from_state.value,
        "to_state": e.to_state.value,
        "actor": [e.actor.id, e.actor.role.value, e.actor.unit, e.actor.name],
        "at": _time(_aware(e.at, "event.at")),
        "reason": e.reason,
        "changes": dict(e.changes),
        "payload": dict(e.payload),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def decode_event(data: dict[str, Any]) -> Event:
    actor_id, role, unit, name = data["actor"]
    at = _untime(data["at"])
    assert at is not None
    return Event(
        suggestion_id=data["suggestion_id"],
        version=data["version"],
        kind=data["kind"],
        from_state=None if data["from_state"] is None else State(data["from_state"]),
        to_state=State(data["to_state"]),
        actor=Actor(id=actor_id, role=Role(role), unit=unit, name=name),
        at=at,
        reason=data["reason"],
        changes=data["changes"],
        payload=data["payload"],
        prev_hash=data["prev_hash"],
        hash=data["hash"],
    )


class JsonFileStore:
    """A :class:`~jianyi_flow.storage.base.Store` kept in one JSON file (see the module docstring).

    ``durable=False`` skips the ``fsync`` after each write: faster, for tests and demos.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self._path = Path(path)
        self._durable = durable
        self._lock = threading.RLock()
        self._doc: dict[str, Any] = {"suggestions": {}, "events": {}, "outbox": [], "next_message": 1, "keys": {}}
        if self._path.exists():
            self._doc = json.loads(self._path.read_text(encoding="utf-8"))

    # --- the one write -----------------------------------------------------------------------
    def commit(self, change: Change) -> None:
        s, event = change.suggestion, change.event
        if event.suggestion_id != s.id or event.version != s.version or s.version != change.expected_version + 1:
            raise ValidationError("change", "row, event and expected version must agree")
        row = encode_suggestion(s)  # encode before taking the lock: bad values fail early
        encoded_event = encode_event(event)
        with self._lock:
            rows: dict[str, Any] = self._doc["suggestions"]
            current = rows.get(s.id)
            if change.expected_version == 0:
                if current is not None:
                    raise DuplicateSuggestion(s.id)
            elif current is None:
                raise NotFound("suggestion", s.id)
            elif current["version"] != change.expected_version:
                raise ConcurrencyConflict(s.id, change.expected_version, current["version"])
            key = change.idempotency_key
            if key is not None and key in self._doc["keys"]:
                raise IdempotencyKeyReused(key, f"suggestion {self._doc['keys'][key][0]}")
            next_id = self._doc["next_message"]
            messages = []
            for m in change.messages:
                messages.append({
                    "id": next_id, "topic": m.topic, "suggestion_id": m.suggestion_id, "version": m.version,
                    "recipient": m.recipient, "created_at": _time(_aware(m.created_at, "message.created_at")),
                    "payload": dict(m.payload), "leased_until": None, "attempts": 0, "sent": False,
                })
                next_id += 1
            events = self._doc["events"]
            new_doc = {
                "suggestions": {**rows, s.id: row},
                "events": {**events, s.id: [*events.get(s.id, []), encoded_event]},
                "outbox": [*self._doc["outbox"], *messages],
                "next_message": next_id,
                "keys": self._doc["keys"] if key is None else {
                    **self._doc["keys"], key: [s.id, s.version, event.kind]
                },
            }
            self._save(new_doc)
            self._doc = new_doc

    def _save(self, doc: dict[str, Any]) -> None:
        try:
            text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError("change", f"not JSON-ready: {exc}") from None
        tmp = self._path.with_name(self._path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                if self._durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except OSError as exc:
            raise StoreError(f"cannot write {self._path}: {exc}") from None

    # --- reading ----------------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        row = self._doc["suggestions"].get(suggestion_id)
        if row is None:
            raise NotFound("suggestion", suggestion_id)
        return decode_suggestion(row)

    def history(self, suggestion_id: str) -> list[Event]:
        return [decode_event(e) for e in self._doc["events"].get(suggestion_id, [])]

    def query(self, query: Query) -> list[Suggestion]:
        for bound in (query.due_before, query.due_after):
            if bound is not None:
                _aware(bound, "query")
        rows = [decode_suggestion(r) for r in self._doc["suggestions"].values()]
        return list(order(query, [s for s in rows if matches(query, s)]))

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        found = self._doc["keys"].get(key)
        return None if found is None else IdempotencyRecord(key, found[0], found[1], found[2])

    # --- outbox --------------------------------------------------------------------------------------
    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        _aware(now, "now")
        if limit <= 0:
            return []
        until = _time(now + lease)
        with self._lock:
            outbox = [dict(m) for m in self._doc["outbox"]]
            taken = []
            for m in outbox:  # oldest first: the list is in id order
                leased = _untime(m["leased_until"])
                if m["sent"] or (leased is not None and leased > now):
                    continue
                m["leased_until"] = until
                m["attempts"] += 1
                taken.append(m)
                if len(taken) >= limit:
                    break
            if taken:
                new_doc = {**self._doc, "outbox": outbox}
                self._save(new_doc)
                self._doc = new_doc
        return [
            OutboxMessage(topic=m["topic"], suggestion_id=m["suggestion_id"], version=m["version"],
                          recipient=m["recipient"], created_at=_untime(m["created_at"]) or now,
                          payload=m["payload"], id=m["id"], attempts=m["attempts"])
            for m in taken
        ]

    def mark_sent(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        with self._lock:
            outbox = [{**m, "sent": True} if m["id"] in wanted else m for m in self._doc["outbox"]]
            new_doc = {**self._doc, "outbox": outbox}
            self._save(new_doc)
            self._doc = new_doc

    def close(self) -> None:
        """Nothing stays open between calls: each write opens, writes and closes the file."""


def demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "campaign.json"
        clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=SHANGHAI))
        office = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区征集办")
        flow = Flow(JsonFileStore(path), clock)
        draft = SuggestionDraft(
            title="关于增设新桥医院公交站的建议", subject="新桥片区公交", problem="医院门口没有公交站。",
            measures="在医院正门增设站台。", area="xinqiao", proposer=Proposer(name="张三", phone="13812345678"),
        )
        s = flow.receive(draft, office, idempotency_key="portal-0001")
        clock.advance(hours=2)
        flow.register(s.id, office)
        clock.advance(days=1)
        flow.transfer(s.id, office, lead_unit="u_traffic", co_units=("u_env",))

        reopened = JsonFileStore(path)  # everything is in the file
        row = reopened.load(s.id)
        print(f"{row.id}: {row.state.value}, lead {row.lead_unit}, due {row.due_at:%Y-%m-%d %H:%M %Z}")
        print("history:", ", ".join(e.kind for e in reopened.history(s.id)))
        print("outbox:", ", ".join(m.recipient for m in reopened.claim(10, clock.now(), dt.timedelta(minutes=5))))
        print(f"file: {path.stat().st_size} bytes")


if __name__ == "__main__":
    demo()

"""A third-party store adapter: the whole store in one JSON file.

It implements the :class:`jianyi_flow.storage.base.Store` protocol from scratch (no
``MemoryStore`` underneath), plus the optional ``HistoryScanner``, ``MetadataStore`` and
``OutboxBacklog`` capabilities (not ``PersonalDataVault``: a flow on it needs the named
opt-out ``vault=False``), and passes the contract kit
(tests/test_custom_store_example.py)::

    from jianyi_flow.storage.base import HistoryScanner, MetadataStore, OutboxBacklog
    from jianyi_flow.testing import StoreContract

    class TestJsonFileStore(StoreContract):
        capabilities = (HistoryScanner, MetadataStore, OutboxBacklog)  # no batch()

        def make_store(self):
            return JsonFileStore(tmp_dir / "store.json")

What an adapter has to get right, and how this one does it:

* **All or nothing.**  ``commit`` checks everything first (version, duplicate id, reused
  key), builds the next document beside the current one, writes it to a temporary file
  and renames that over the store file (``os.replace`` is atomic).  Only then does the
  in-memory document move on; if anything fails, nothing changed — not even ``seq``.
* **One writer at a time.**  A lock makes the check-then-write of ``commit`` (and of
  ``claim``) one step, so of two writers holding the same version exactly one wins, and
  ``seq`` counts 1, 2, 3... without gaps.
* **Byte-exact keys.**  Ids, idempotency keys (with their scope) and meta names are
  Python strings used as they are: ``"k"`` and ``"k "`` are two keys.
* **Encoding.**  Suggestion fields go through :func:`jianyi_flow.domain.codec.encode_value`
  and ``decode_value``; datetimes are stored as UTC ISO text and read back aware.
* **Semantics from the reference.**  ``query`` and ``count`` use
  :func:`jianyi_flow.storage.base.matches` and :func:`~jianyi_flow.storage.base.order`, so
  filters, orders and cursors are exactly MemoryStore's.

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

import attrs

from jianyi_flow import SHANGHAI, Actor, FakeClock, Flow, Proposer, Role, State, Suggestion, SuggestionDraft
from jianyi_flow.domain.clock import require_aware
from jianyi_flow.domain.codec import SUGGESTION_FIELDS, decode_value, encode_value
from jianyi_flow.domain.model import Event
from jianyi_flow.errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    NotFound,
    StoreError,
    ValidationError,
)
from jianyi_flow.storage.base import (
    Change,
    IdempotencyRecord,
    OutboxMessage,
    Query,
    StoredHistory,
    check_change,
    matches,
    order,
)

LIMIT_MAX = 100_000


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(SHANGHAI)


def _untime(text: str | None) -> dt.datetime | None:
    return None if text is None else _instant(text)


def _limit(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= LIMIT_MAX:
        raise ValidationError("limit", f"must be a whole number from 0 to {LIMIT_MAX}")
    return value


def encode_suggestion(s: Suggestion) -> dict[str, Any]:
    return {name: encode_value(name, getattr(s, name)) for name in SUGGESTION_FIELDS}


def decode_suggestion(data: dict[str, Any]) -> Suggestion:
    return Suggestion(**{name: decode_value(name, value) for name, value in data.items()})


def encode_event(e: Event, seq: int) -> dict[str, Any]:
    return {
        "suggestion_id": e.suggestion_id, "version": e.version, "kind": e.kind,
        "from_state": None if e.from_state is None else e.from_state.value, "to_state": e.to_state.value,
        "actor": [e.actor.id, e.actor.role.value, e.actor.unit, e.actor.name], "at": _time(require_aware(e.at)),
        "reason": e.reason, "changes": dict(e.changes), "payload": dict(e.payload), "prev_hash": e.prev_hash,
        "hash": e.hash, "notices": list(e.notices), "workflow": e.workflow, "policy": e.policy, "seq": seq,
        "mac": e.mac,
    }


def decode_event(data: dict[str, Any]) -> Event:
    actor_id, role, unit, name = data["actor"]
    return Event(
        suggestion_id=data["suggestion_id"], version=data["version"], kind=data["kind"],
        from_state=None if data["from_state"] is None else State(data["from_state"]),
        to_state=State(data["to_state"]), actor=Actor(id=actor_id, role=Role(role), unit=unit, name=name),
        at=_instant(data["at"]), reason=data["reason"], changes=data["changes"],
        payload=data["payload"], prev_hash=data["prev_hash"], hash=data["hash"], notices=tuple(data["notices"]),
        workflow=data["workflow"], policy=data["policy"], seq=data["seq"], mac=data["mac"],
    )


def decode_message(m: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(topic=m["topic"], suggestion_id=m["suggestion_id"], version=m["version"],
                         recipient=m["recipient"], created_at=_instant(m["created_at"]),
                         payload=m["payload"], id=m["id"], attempts=m["attempts"], sent_at=_untime(m["sent_at"]))


class JsonFileStore:
    """A :class:`~jianyi_flow.storage.base.Store` kept in one JSON file (see the module docstring).

    ``durable=False`` skips the ``fsync`` after each write: faster, for tests and demos.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self._path = Path(path)
        self._durable = durable
        self._lock = threading.RLock()
        self._doc: dict[str, Any] = {"suggestions": {}, "events": {}, "outbox": [], "keys": {}, "meta": {},
                                     "seq": 0}
        if self._path.exists():
            self._doc = json.loads(self._path.read_text(encoding="utf-8"))

    def _save(self, doc: dict[str, Any]) -> None:
        """Write ``doc`` to the file atomically, then make it the current document."""
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
        self._doc = doc

    # --- the one write -----------------------------------------------------------------------
    def commit(self, change: Change) -> Event:
        check_change(change)  # the shape checks every store makes first (the contract kit holds us to them)
        s, event, record = change.suggestion, change.event, change.idempotency
        row = encode_suggestion(s)  # encode before taking the lock: bad values fail early
        key = None if record is None else json.dumps([record.scope, record.key], ensure_ascii=False)
        with self._lock:
            doc = self._doc
            current = doc["suggestions"].get(s.id)
            if change.expected_version == 0:
                if current is not None or s.id in doc["events"]:
                    raise DuplicateSuggestion(s.id)
            elif current is None:
                raise NotFound("suggestion", s.id)
            elif current["version"] != change.expected_version:
                raise ConcurrencyConflict(s.id, change.expected_version, current["version"])
            if record is not None and key in doc["keys"]:
                raise IdempotencyKeyReused(record.key, "another command")
            seq = doc["seq"] + 1
            next_id = len(doc["outbox"]) + 1
            messages = [
                {"id": next_id + n, "topic": m.topic, "suggestion_id": m.suggestion_id, "version": m.version,
                 "recipient": m.recipient, "created_at": _time(require_aware(m.created_at)),
                 "payload": dict(m.payload), "leased_until": None, "attempts": 0, "sent_at": None}
                for n, m in enumerate(change.messages)
            ]
            self._save({
                **doc,
                "suggestions": {**doc["suggestions"], s.id: row},
                "events": {**doc["events"], s.id: [*doc["events"].get(s.id, []), encode_event(event, seq)]},
                "outbox": [*doc["outbox"], *messages],
                "keys": doc["keys"] if record is None else {**doc["keys"], key: attrs.asdict(record)},
                "seq": seq,
            })
        return attrs.evolve(event, seq=seq)

    # --- reading ----------------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        row = self._doc["suggestions"].get(suggestion_id)
        if row is None:
            raise NotFound("suggestion", suggestion_id)
        return decode_suggestion(row)

    def history(self, suggestion_id: str) -> list[Event]:
        return [decode_event(e) for e in self._doc["events"].get(suggestion_id, [])]

    def query(self, query: Query) -> list[Suggestion]:
        if query.limit is not None:
            _limit(query.limit)
        rows = [decode_suggestion(r) for r in self._doc["suggestions"].values()]
        return order(query, [s for s in rows if matches(query, s)])

    def count(self, query: Query) -> int:
        unpaged = query.unpaged()
        return sum(1 for r in self._doc["suggestions"].values() if matches(unpaged, decode_suggestion(r)))

    def idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        found = self._doc["keys"].get(json.dumps([scope, key], ensure_ascii=False))
        return None if found is None else IdempotencyRecord(**found)

    def scan_histories(self, after_id: str | None, limit: int) -> list[StoredHistory]:
        doc = self._doc
        ids = sorted(i for i in doc["suggestions"].keys() | doc["events"].keys() if after_id is None or i > after_id)
        out = []
        for sid in ids[: _limit(limit)]:
            row = doc["suggestions"].get(sid)
            out.append(StoredHistory(
                sid, None if row is None else decode_suggestion(row),
                tuple(decode_event(e) for e in doc["events"].get(sid, [])),
                tuple(decode_message(m) for m in doc["outbox"] if m["suggestion_id"] == sid),
            ))
        return out

    def last_seq(self) -> int:
        seq: int = self._doc["seq"]
        return seq

    # --- outbox --------------------------------------------------------------------------------------
    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        _limit(limit)
        require_aware(now, "now")
        if not isinstance(lease, dt.timedelta) or lease <= dt.timedelta(0):
            raise ValidationError("lease", "must be a positive timedelta")
        with self._lock:
            outbox = [dict(m) for m in self._doc["outbox"]]
            taken = []
            for m in outbox:  # oldest first: the list is in id order
                if len(taken) >= limit:
                    break
                leased = _untime(m["leased_until"])
                if m["sent_at"] is not None or (leased is not None and leased > now):
                    continue
                m["leased_until"] = _time(now + lease)
                m["attempts"] += 1
                taken.append(m)
            if taken:
                self._save({**self._doc, "outbox": outbox})
        return [decode_message(m) for m in taken]

    def outbox_pending(self) -> int:
        return sum(1 for m in self._doc["outbox"] if m["sent_at"] is None)

    def mark_sent(self, ids: Iterable[int], at: dt.datetime) -> None:
        require_aware(at, "at")
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise ValidationError("ids", "must be a list of message ids")
        wanted = list(ids)
        if any(not isinstance(i, int) or isinstance(i, bool) for i in wanted):
            raise ValidationError("ids", "message ids are whole numbers")
        with self._lock:
            outbox = [{**m, "sent_at": _time(at)} if m["id"] in wanted and m["sent_at"] is None else m
                      for m in self._doc["outbox"]]
            self._save({**self._doc, "outbox": outbox})

    # --- named values ------------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        value: str | None = self._doc["meta"].get(name)
        return value

    def set_meta(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValidationError("meta", "names and values are text")
        with self._lock:
            self._save({**self._doc, "meta": {**self._doc["meta"], name: value}})

    def close(self) -> None:
        """Nothing stays open between calls: each write opens, writes and closes the file."""


def demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "campaign.json"
        clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=SHANGHAI))
        office = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区征集办")
        # the default permission table (the office routes); this store keeps no personal-data
        # vault, so the proposer goes into the hashed history: vault=False says that is accepted
        flow = Flow(JsonFileStore(path), clock, vault=False)
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
        print("history:", ", ".join(f"{e.kind} (seq {e.seq})" for e in reopened.history(s.id)))
        print("outbox:", ", ".join(m.recipient for m in reopened.claim(10, clock.now(), dt.timedelta(minutes=5))))
        print("verified:", Flow(reopened, clock, vault=False).verify_all() == [])
        print(f"file: {path.stat().st_size} bytes")


if __name__ == "__main__":
    demo()

"""Auditing a store: every history, the outbox its events announce, the event log, and the anchor.

:func:`verify_store` reads a :class:`~jianyi_flow.storage.base.HistoryScanner` store in one
ordered pass and reports, per suggestion, an edited, deleted or reordered event, a row that
differs from the replay of its history, an outbox message an event announced that is gone,
and — over the whole log — positions (``seq``) that are missing or used twice, which is
how a deleted suggestion shows even when every chain that is left is intact.

The hash chain is unkeyed: whoever can write the database can rewrite a history and re-seal
it with this library's own code, or drop the newest events and roll the row back.  An
:class:`Anchor` adds what such a writer cannot forge, with a key kept outside the database:

* every event's hash is sealed with a keyed MAC (``Event.mac``, HMAC-SHA256), so a rewritten
  event no longer verifies;
* :meth:`Anchor.checkpoint` appends a signed checkpoint to a log file kept outside the
  database (ideally append-only storage, or shipped elsewhere): the log position, the
  number of suggestions and events, and a digest of every suggestion's newest event at that
  position.  Each checkpoint also carries the previous one's MAC, so a checkpoint removed
  from the middle of the file shows.  :meth:`Anchor.verify` recomputes every checkpoint
  from the store: a suggestion deleted, an event dropped or rewritten before a checkpoint
  no longer matches it.

What stays undetectable is written in docs/security.md: without a key, a consistent
rewrite; with a key but after the last checkpoint, dropping the newest events together with
their rows (the log then simply ends earlier).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from ..domain import validation as v
from ..domain.codec import encode_datetime
from ..domain.history import HistoryProblem, verify_events
from ..domain.model import Event
from ..domain.workflow import Workflow
from ..errors import ValidationError
from ..storage.base import HistoryScanner, OutboxMessage, PersonalDataVault, Store

__all__ = ["Anchor", "Checkpoint", "verify_store"]


def _check_notices(sid: str, events: Sequence[Event], messages: Sequence[OutboxMessage]) -> list[HistoryProblem]:
    """Every outbox message an event announces must still be in the outbox (sent or not)."""
    have: dict[tuple[int, str], int] = {}
    for m in messages:
        have[(m.version, m.recipient)] = have.get((m.version, m.recipient), 0) + 1
    problems: list[HistoryProblem] = []
    for e in events:
        for r in e.notices:
            if have.get((e.version, r), 0) < 1:
                problems.append(HistoryProblem(sid, e.version, f"outbox message to {r} is missing"))
            else:
                have[(e.version, r)] -= 1
    return problems


def verify_store(store: HistoryScanner, *, key: bytes | None = None, page: int = 1000,
                 workflows: Mapping[str | None, Workflow] | None = None) -> list[HistoryProblem]:
    """Every problem of every history in ``store`` and of its event log, in one ordered pass."""
    problems: list[HistoryProblem] = []
    vault = isinstance(store, PersonalDataVault)
    seen = bytearray()
    after: str | None = None
    while True:
        histories = store.scan_histories(after, page)
        for h in histories:
            if h.problem is not None:
                problems.append(HistoryProblem(h.suggestion_id, 0, h.problem))
                continue
            problems.extend(verify_events(h.suggestion_id, h.events, h.row, key=key, workflows=workflows,
                                          vault=vault, personal=h.personal))
            if h.row is None:
                problems.append(HistoryProblem(h.suggestion_id, len(h.events), "events without a row"))
            problems.extend(_check_notices(h.suggestion_id, h.events, h.messages))
            for e in h.events:
                if e.seq is None:
                    continue
                if e.seq >= len(seen):
                    seen.extend(bytes(e.seq + 1 - len(seen)))
                if seen[e.seq]:
                    problems.append(HistoryProblem(h.suggestion_id, e.version, f"log position {e.seq} used twice"))
                seen[e.seq] = 1
        if len(histories) < page:
            break
        after = histories[-1].suggestion_id
    last = store.last_seq()
    if len(seen) <= last:
        seen.extend(bytes(last + 1 - len(seen)))
    missing = [i for i in range(1, last + 1) if not seen[i]]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        problems.append(HistoryProblem("*", 0, f"{len(missing)} events missing from the log (positions {shown})"))
    beyond = len(seen) - 1 - last
    if beyond > 0 and any(seen[last + 1:]):
        problems.append(HistoryProblem("*", 0, f"events past the log's last position {last}"))
    return problems


@attrs.frozen
class Checkpoint:
    """What the store held at one log position, signed with the anchor's key."""

    at: str
    """When it was taken (UTC ISO text)."""
    seq: int
    suggestions: int
    events: int
    heads: str
    """SHA-256 over ``id, version, hash`` of each suggestion's newest event at ``seq``, in id order."""
    prev: str
    """The previous checkpoint's ``mac`` (``""`` for the first)."""
    mac: str = ""

    def body(self) -> bytes:
        return json.dumps([self.at, self.seq, self.suggestions, self.events, self.heads, self.prev],
                          separators=(",", ":")).encode("ascii")

    def to_line(self) -> str:
        return json.dumps(attrs.asdict(self), separators=(",", ":"), sort_keys=True)


class _Heads:
    """Counts and the heads digest of a store as of one log position."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.suggestions = 0
        self.events = 0
        self.digest = hashlib.sha256()

    def add(self, suggestion_id: str, events: Sequence[Event]) -> None:
        head: Event | None = None
        for e in events:
            if e.seq is not None and e.seq <= self.seq:
                self.events += 1
                head = e
        if head is not None:
            self.suggestions += 1
            self.digest.update(f"{suggestion_id}\t{head.version}\t{head.hash}\n".encode("utf-8", "surrogatepass"))


def _scan(store: HistoryScanner, positions: Sequence[int], page: int = 1000) -> list[_Heads]:
    heads = [_Heads(p) for p in positions]
    after: str | None = None
    while True:
        histories = store.scan_histories(after, page)
        for h in histories:
            for one in heads:
                one.add(h.suggestion_id, h.events)
        if len(histories) < page:
            return heads
        after = histories[-1].suggestion_id


class Anchor:
    """A key kept outside the database, and optionally a checkpoint log file kept outside it too.

    ``key`` seals every event a :class:`~jianyi_flow.Flow` configured with this anchor writes;
    ``log`` is where :meth:`checkpoint` appends and :meth:`verify` reads.
    """

    def __init__(self, key: bytes, log: str | Path | None = None) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValidationError("anchor.key", "must be at least 16 bytes of secret")
        self.key = key
        self.log = None if log is None else Path(log)

    def __repr__(self) -> str:
        return f"Anchor(key=<{len(self.key)} bytes>, log={self.log})"

    @classmethod
    def from_key_file(cls, path: str | Path, log: str | Path | None = None) -> Anchor:
        """An anchor whose key is the content of a file (at least 16 bytes; trailing newline ignored)."""
        try:
            key = Path(path).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise ValidationError("anchor.key_file", f"cannot read {path}: {e.strerror or e}") from None
        return cls(key, log)

    def seal(self, checkpoint: Checkpoint) -> Checkpoint:
        return attrs.evolve(checkpoint, mac=hmac.new(self.key, checkpoint.body(), hashlib.sha256).hexdigest())

    def checkpoints(self) -> list[Checkpoint]:
        """The checkpoints in the log, oldest first (an unreadable line raises ValidationError)."""
        if self.log is None or not self.log.exists():
            return []
        out: list[Checkpoint] = []
        for n, line in enumerate(self.log.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append(Checkpoint(**json.loads(line)))
            except (ValueError, TypeError) as e:
                raise ValidationError("anchor.log", f"line {n} is not a checkpoint: {e}") from None
        return out

    def checkpoint(self, store: Store, now: dt.datetime) -> Checkpoint:
        """Record what ``store`` holds now, signed, at the end of the log file."""
        if self.log is None:
            raise ValidationError("anchor.log", "an anchor without a log file cannot take checkpoints")
        if not isinstance(store, HistoryScanner):
            raise ValidationError("store", "checkpoints need a store that can scan its histories")
        v.aware("now", now)
        existing = self.checkpoints()
        seq = store.last_seq()
        (heads,) = _scan(store, [seq])
        cp = self.seal(Checkpoint(at=encode_datetime(now), seq=seq, suggestions=heads.suggestions,
                                  events=heads.events, heads=heads.digest.hexdigest(),
                                  prev=existing[-1].mac if existing else ""))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(cp.to_line() + "\n")
            f.flush()
            os.fsync(f.fileno())
        return cp

    def verify(self, store: Store) -> list[HistoryProblem]:
        """Every checkpoint in the log against ``store``: signature, chain of checkpoints, and content."""
        if not isinstance(store, HistoryScanner):
            raise ValidationError("store", "checkpoints need a store that can scan its histories")
        cps = self.checkpoints()
        problems: list[HistoryProblem] = []
        prev = ""
        for n, cp in enumerate(cps, start=1):
            if not hmac.compare_digest(self.seal(cp).mac, cp.mac):
                problems.append(HistoryProblem("*", 0, f"checkpoint {n} (log position {cp.seq}): signature wrong"))
            if cp.prev != prev:
                problems.append(HistoryProblem("*", 0, f"checkpoint {n}: the checkpoint before it is missing"))
            prev = cp.mac
        if not cps:
            return problems
        last = store.last_seq()
        for n, (cp, heads) in enumerate(zip(cps, _scan(store, [cp.seq for cp in cps]), strict=True), start=1):
            where = f"checkpoint {n} (log position {cp.seq}, {cp.at})"
            if last < cp.seq:
                problems.append(HistoryProblem("*", 0, f"{where}: the log ends at {last}, before the checkpoint"))
            if (heads.suggestions, heads.events) != (cp.suggestions, cp.events):
                problems.append(HistoryProblem("*", 0, f"{where}: {heads.suggestions} suggestions and "
                                                       f"{heads.events} events now, {cp.suggestions} and "
                                                       f"{cp.events} then"))
            elif heads.digest.hexdigest() != cp.heads:
                problems.append(HistoryProblem("*", 0, f"{where}: a history changed since"))
        return problems

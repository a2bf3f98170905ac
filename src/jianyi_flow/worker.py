"""The worker a portal runs beside itself: deliver the outbox and tick deadlines on a schedule.

Every command that must tell someone (the office, a handling unit, the proposer) writes an
outbox message in the same transaction as the suggestion, so a notice is never lost and
never sent for a command that rolled back.  :class:`Relay` delivers them:

1. ``claim`` a batch — the store leases the oldest unsent messages to this worker, so
   another worker running at the same time gets different ones (on PostgreSQL and MariaDB
   with ``FOR UPDATE SKIP LOCKED``);
2. hand each to the :class:`Sender` (an SMS gateway, e-mail, the portal's inbox...);
3. ``mark_sent`` what was delivered.

A message whose delivery failed, or whose worker died, is not marked sent: when its lease
runs out it is claimed again.  Delivery is therefore *at least once*; a receiver that must
not act twice deduplicates on the message id (:class:`SpoolSender` shows how).

:class:`Worker` loops: relay, and once per ``tick_every`` run ``Flow.tick`` (overdue flags,
unrated replies), until :meth:`Worker.stop` is called — from a SIGTERM handler in
``jianyi-flow worker`` — or ``rounds`` loops were made.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import Protocol

import attrs

from .domain import validation as v
from .domain.codec import encode_datetime
from .errors import ValidationError
from .service.flow import Flow
from .storage.base import OutboxMessage

__all__ = ["DeliveryFailed", "LogSender", "Relay", "Sender", "SpoolSender", "Worker", "WorkerStats"]

log = logging.getLogger("jianyi_flow.worker")


class DeliveryFailed(Exception):
    """A sender could not deliver a message now; it is retried after its lease."""


class Sender(Protocol):
    """Delivers one message, or raises :class:`DeliveryFailed`."""

    def send(self, message: OutboxMessage) -> None: ...


class LogSender:
    """Writes each message as a log line (``jianyi_flow.worker`` logger, INFO): for development."""

    def send(self, message: OutboxMessage) -> None:
        log.info("notice #%s %s to %s about %s v%d", message.id, message.topic, message.recipient,
                 message.suggestion_id, message.version)


class SpoolSender:
    """A stand-in for an SMS or e-mail gateway: appends each message as a JSON line to a spool file.

    It remembers the message ids already in the file and skips them, which is what a real
    gateway integration must do too: delivery is at least once, so the same message can
    come twice (after a worker died between sending and marking it sent).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sent: set[int] = set()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self._sent.add(int(json.loads(line)["id"]))

    def send(self, message: OutboxMessage) -> None:
        if message.id is None:
            raise DeliveryFailed("a message without an id was never committed")
        with self._lock:
            if message.id in self._sent:
                return
            line = json.dumps({"id": message.id, "topic": message.topic, "recipient": message.recipient,
                               "suggestion_id": message.suggestion_id, "version": message.version,
                               "created_at": encode_datetime(message.created_at)}, ensure_ascii=False)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
            self._sent.add(message.id)

    def delivered(self) -> list[dict[str, object]]:
        """Every message in the spool, in the order written."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


@attrs.define
class WorkerStats:
    """What a worker did so far."""

    delivered: int = 0
    failed: int = 0
    ticks: int = 0
    events: int = 0


class Relay:
    """Claims, delivers and marks sent, in batches, for one flow's store."""

    def __init__(self, flow: Flow, sender: Sender, *, batch: int = 50,
                 lease: dt.timedelta = dt.timedelta(minutes=5)) -> None:
        self.flow = flow
        self.sender = sender
        self.batch = v.whole_number("batch", batch, low=1, high=10_000)
        if not isinstance(lease, dt.timedelta) or lease <= dt.timedelta(0):
            raise ValidationError("lease", "must be a positive timedelta")
        self.lease = lease

    def run_once(self, stats: WorkerStats | None = None) -> int:
        """One batch: how many messages were delivered (0 when nothing was claimable)."""
        stats = stats if stats is not None else WorkerStats()
        store = self.flow.store
        messages = store.claim(self.batch, self.flow.clock.now(), self.lease)
        done: list[int] = []
        for message in messages:
            try:
                self.sender.send(message)
            except DeliveryFailed as e:
                stats.failed += 1
                log.warning("notice #%s to %s failed (attempt %d): %s; retried after its lease",
                            message.id, message.recipient, message.attempts, e)
                continue
            assert message.id is not None
            done.append(message.id)
        if done:
            store.mark_sent(done, self.flow.clock.now())
        stats.delivered += len(done)
        return len(done)

    def drain(self, rounds: int = 1000) -> int:
        """Deliver batches until nothing is claimable (or ``rounds`` batches): how many were delivered."""
        total = 0
        for _ in range(rounds):
            n = self.run_once()
            total += n
            if n == 0:
                break
        return total


class Worker:
    """Relays the outbox and ticks deadlines until stopped."""

    def __init__(self, flow: Flow, sender: Sender, *, interval: float = 2.0,
                 tick_every: dt.timedelta = dt.timedelta(minutes=10), batch: int = 50,
                 lease: dt.timedelta = dt.timedelta(minutes=5)) -> None:
        self.flow = flow
        self.relay = Relay(flow, sender, batch=batch, lease=lease)
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval < 0:
            raise ValidationError("interval", "must be a number of seconds, 0 or more")
        self.interval = float(interval)
        self.tick_every = tick_every
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._last_tick: dt.datetime | None = None

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and return (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, rounds: int | None = None) -> WorkerStats:
        """Loop until :meth:`stop` (or ``rounds`` loops); each loop relays what is claimable and ticks when due."""
        done = 0
        while not self._stop.is_set() and (rounds is None or done < rounds):
            now = self.flow.clock.now()
            if self._last_tick is None or now - self._last_tick >= self.tick_every:
                events = self.flow.tick(now)
                self.stats.ticks += 1
                self.stats.events += len(events)
                self._last_tick = now
            while not self._stop.is_set() and self.relay.run_once(self.stats) == self.relay.batch:
                pass
            done += 1
            if rounds is None or done < rounds:
                self._stop.wait(self.interval)
        return self.stats

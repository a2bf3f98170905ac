"""The worker: relays the outbox at least once, de-duplicated by message id, and ticks on a schedule."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from helpers import fill_transferred
from jianyi_flow import FakeClock, Flow, MemoryStore, ValidationError
from jianyi_flow.storage.base import OutboxMessage
from jianyi_flow.worker import DeliveryFailed, Relay, SpoolSender, Worker


def _flow_with_notices(n: int = 3) -> Flow:
    """``n`` suggestions transferred: three notices each (office, proposer, unit), none relayed yet."""
    return fill_transferred(MemoryStore(), n)


def test_every_notice_is_delivered_once_and_marked_sent(tmp_path: Path) -> None:
    flow = _flow_with_notices()
    spool = SpoolSender(tmp_path / "out.jsonl")
    assert Relay(flow, spool, batch=2).drain() == 9  # receive → office, register → proposer, transfer → unit
    assert sorted(m["id"] for m in spool.delivered()) == list(range(1, 10))
    assert flow.store.claim(10, flow.clock.now() + dt.timedelta(days=1), dt.timedelta(minutes=1)) == []


def test_a_message_sent_again_after_a_crash_is_written_once(tmp_path: Path) -> None:
    """At least once: a worker that died before mark_sent makes the next one send again; the spool dedupes."""
    flow = _flow_with_notices(1)
    spool = SpoolSender(tmp_path / "out.jsonl")
    claimed = flow.store.claim(10, flow.clock.now(), dt.timedelta(minutes=5))
    for m in claimed:
        spool.send(m)  # ... and the worker dies here, before mark_sent
    assert isinstance(flow.clock, FakeClock)
    flow.clock.advance(minutes=6)
    again = SpoolSender(tmp_path / "out.jsonl")  # a new process reads what was already written
    assert Relay(flow, again).drain() == 3
    assert len(again.delivered()) == 3


class _FailsOnce:
    def __init__(self) -> None:
        self.sent: list[OutboxMessage] = []
        self.failed = False

    def send(self, message: OutboxMessage) -> None:
        if not self.failed:
            self.failed = True
            raise DeliveryFailed("gateway timeout")
        self.sent.append(message)


def test_a_failed_delivery_is_retried_after_its_lease() -> None:
    flow = _flow_with_notices(1)
    sender = _FailsOnce()
    relay = Relay(flow, sender, lease=dt.timedelta(minutes=5))
    assert relay.drain() == 2
    assert isinstance(flow.clock, FakeClock)
    flow.clock.advance(minutes=5)
    assert relay.drain() == 1
    assert len(sender.sent) == 3


def test_the_worker_ticks_and_stops_when_asked(tmp_path: Path) -> None:
    flow = _flow_with_notices(1)
    assert isinstance(flow.clock, FakeClock)
    flow.clock.advance(days=70)  # the research deadline passed: tick flags it and notifies the unit
    worker = Worker(flow, SpoolSender(tmp_path / "out.jsonl"), interval=0.01)
    stats = worker.run(rounds=2)
    assert stats.ticks == 1 and stats.events == 1 and stats.delivered == 4
    stopper = threading.Timer(0.05, worker.stop)
    stopper.start()
    worker.run()  # returns once stop() is called
    assert worker.stopping


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    flow = _flow_with_notices(0)
    with pytest.raises(ValidationError):
        Relay(flow, SpoolSender(tmp_path / "x.jsonl"), batch=0)
    with pytest.raises(ValidationError):
        Worker(flow, SpoolSender(tmp_path / "x.jsonl"), interval=-1)

"""An outbox relay: deliver the notices commands left in the store, at least once.

Every command that must tell someone (the office, a handling unit, the proposer) writes an
outbox message in the same transaction as the suggestion, so a notice is never lost and
never sent for a command that rolled back.  A relay then loops:

1. ``claim`` a batch: the store leases the oldest unsent messages to this relay, so a
   second relay running at the same time gets different ones;
2. deliver each (SMS, portal inbox, e-mail... here: a log line);
3. ``mark_sent`` what was delivered.

A message whose delivery failed, or whose relay crashed, is simply not marked sent: when
its lease runs out it is claimed again.  Delivery is therefore *at least once*, and a
receiver that must not act twice deduplicates on ``(suggestion_id, version, recipient)``.

Run ``python examples/outbox_relay.py``: it fills a temporary SQLite database through
``Flow`` and relays it with a delivery channel that fails once, to show the retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from jianyi_flow import SHANGHAI, Actor, Clock, FakeClock, Flow, Proposer, Role, Store, SuggestionDraft
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import OutboxMessage

log = logging.getLogger("outbox_relay")


class DeliveryFailed(Exception):
    """The channel did not take the message (it will be retried after its lease)."""


def relay(
    store: Store,
    clock: Clock,
    deliver: Callable[[OutboxMessage], None],
    *,
    batch: int = 20,
    lease: dt.timedelta = dt.timedelta(minutes=5),
    rounds: int = 100,
) -> int:
    """Claim, deliver and mark sent until nothing is claimable or ``rounds`` batches were done.

    Returns how many messages were delivered.  Bounded so a scheduler (cron, a systemd
    timer, a Celery beat) runs it repeatedly rather than forever.
    """
    delivered = 0
    for _ in range(rounds):
        messages = store.claim(batch, clock.now(), lease)
        if not messages:
            break
        done: list[int] = []
        for message in messages:
            try:
                deliver(message)
            except DeliveryFailed as exc:
                log.warning("message %s to %s failed (attempt %d): %s; retried after the lease",
                            message.id, message.recipient, message.attempts, exc)
                continue
            assert message.id is not None
            done.append(message.id)
        store.mark_sent(done)
        delivered += len(done)
    return delivered


class FlakyChannel:
    """A delivery channel (think SMS gateway) that rejects the first message to each unit once."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        self.sent: list[OutboxMessage] = []

    def __call__(self, message: OutboxMessage) -> None:
        if message.recipient.startswith("unit:") and message.recipient not in self.failed:
            self.failed.add(message.recipient)
            raise DeliveryFailed("gateway timeout")
        self.sent.append(message)
        log.info("delivered #%s %-8s to %-22s about %s v%d (attempt %d)", message.id, message.topic,
                 message.recipient, message.suggestion_id, message.version, message.attempts)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)  # this relay's lines only, not alembic's or the state machine's
    clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=SHANGHAI))
    office = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区征集办")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore.open(f"sqlite:///{Path(tmp) / 'relay.db'}")
        numbers = iter(range(1, 1000))
        flow = Flow(store, clock, ids=lambda: f"JY{next(numbers):04d}")
        for n, (area, lead) in enumerate([("xinqiao", "u_traffic"), ("shapingba", "u_env"), ("xinqiao", "u_env")]):
            draft = SuggestionDraft(
                title=f"第{n + 1}条建议", subject="公共服务", problem="存在的问题。", measures="具体的措施。",
                area=area, proposer=Proposer(name="张三", phone="13812345678"),
            )
            s = flow.receive(draft, office)
            flow.register(s.id, office)
            flow.transfer(s.id, office, lead_unit=lead)
            clock.advance(minutes=10)

        channel = FlakyChannel()
        lease = dt.timedelta(minutes=5)
        first = relay(store, clock, channel, batch=4, lease=lease)
        log.info("first pass: %d delivered, %d waiting for their lease to run out", first, store.outbox_pending())
        clock.advance(lease)
        second = relay(store, clock, channel, batch=4, lease=lease)
        log.info("after the lease: %d more delivered, %d pending", second, store.outbox_pending())
        assert store.outbox_pending() == 0 and first + second == len(channel.sent) == 9
        store.close()


if __name__ == "__main__":
    main()

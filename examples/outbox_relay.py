"""Delivering the outbox at least once, with a gateway that fails now and then.

Every command that must tell someone (the office, a handling unit, the proposer) writes an
outbox message in the same transaction as the suggestion (docs/outbox.md).  A relay claims
the oldest undelivered messages under a lease, hands each to a sender and marks what was
delivered; a message whose delivery failed is claimed again once its lease runs out.  In
production run ``jianyi-flow worker --store URL`` beside the portal (jianyi_flow.worker).

Run ``python examples/outbox_relay.py``: it fills a temporary SQLite database through
``Flow`` and relays it through a sender that fails once per unit, to show the retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

from jianyi_flow import SHANGHAI, Actor, FakeClock, Flow, Proposer, Role, SuggestionDraft
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import OutboxMessage
from jianyi_flow.worker import DeliveryFailed, Relay

log = logging.getLogger("outbox_relay")


class FlakyGateway:
    """A stand-in for an SMS gateway that rejects the first message to each unit once."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        self.sent: list[OutboxMessage] = []

    def send(self, message: OutboxMessage) -> None:
        if message.recipient.startswith("unit:") and message.recipient not in self.failed:
            self.failed.add(message.recipient)
            raise DeliveryFailed("gateway timeout")
        self.sent.append(message)
        log.info("delivered #%s %-8s to %-22s about %s v%d (attempt %d)", message.id, message.topic,
                 message.recipient, message.suggestion_id, message.version, message.attempts)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=SHANGHAI))
    office = Actor("office-1", Role.COLLECTION_OFFICE, unit="zjb", name="区征集办")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore.open(f"sqlite:///{Path(tmp) / 'relay.db'}", migrate=True)
        flow = Flow(store, clock)
        for n, (area, lead) in enumerate([("xinqiao", "u_traffic"), ("shapingba", "u_env"), ("xinqiao", "u_env")]):
            draft = SuggestionDraft(title=f"第{n + 1}条建议", subject="公共服务", problem="存在的问题。",
                                    measures="具体的措施。", area=area, proposer=Proposer(name="张三"))
            s = flow.receive(draft, office)
            flow.register(s.id, office)
            flow.transfer(s.id, office, lead_unit=lead)
            clock.advance(minutes=10)

        gateway = FlakyGateway()
        lease = dt.timedelta(minutes=5)
        relay = Relay(flow, gateway, batch=4, lease=lease)
        first = relay.drain()
        log.info("first pass: %d delivered, %d waiting for their lease to run out", first, store.outbox_pending())
        clock.advance(lease)
        second = relay.drain()
        log.info("after the lease: %d more delivered, %d pending", second, store.outbox_pending())
        assert store.outbox_pending() == 0 and first + second == len(gateway.sent) == 9
        assert flow.verify_all() == []
        store.close()


if __name__ == "__main__":
    main()

"""The simulator's agenda: bucketed by day, it hands out steps in exactly the order one heap would.

``CampaignSimulator`` keeps only the current bucket (a UTC day of timestamps) as a heap and
the later steps in unsorted lists by bucket.  Both tests hold it to a plain heap fed the same
pushes: one through a whole simulated campaign (every step done is the one a heap would pop
next), one with made-up times (ties, a push into the current bucket, a push into the past).
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from typing import Any

from jianyi_flow import MemoryStore
from jianyi_flow.domain.clock import SHANGHAI
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.simulation import CampaignSimulator


class _Checked(CampaignSimulator):
    """A simulator that also feeds every push to one plain heap and checks each step against it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.reference: list[tuple[Any, ...]] = []
        self.done = 0
        super().__init__(*args, **kwargs)

    def _push(self, when: dt.datetime, sid: str, action: str) -> None:
        super()._push(when, sid, action)
        heapq.heappush(self.reference, (when.timestamp(), self._seq, when, sid, action))

    def _do(self, item: Any) -> None:
        assert item == heapq.heappop(self.reference), f"step {self.done}"
        self.done += 1
        super()._do(item)


def test_a_whole_campaign_takes_its_steps_in_the_order_one_heap_gives() -> None:
    sim = _Checked(yongchuan_2024(), MemoryStore(), seed=5, suggestions=400, batch=7)
    sim.run()
    assert sim.done > 400 * 5  # every arrival and the steps after it went through the check


def test_made_up_times_come_off_in_heap_order_across_buckets() -> None:
    sim = CampaignSimulator(yongchuan_2024(), MemoryStore(), seed=1, suggestions=1)
    rng = random.Random(7)
    base = dt.datetime(2024, 8, 1, tzinfo=SHANGHAI)
    reference: list[tuple[Any, ...]] = []

    def push(when: dt.datetime, name: str) -> None:
        sim._push(when, "", name)
        heapq.heappush(reference, (when.timestamp(), sim._seq, when, "", name))

    for n in range(500):  # spread over 40 days, many on the same instant
        push(base + dt.timedelta(hours=rng.choice([0, 0, 5, 23]) + 24 * rng.randrange(40)), f"a{n}")
    popped: list[tuple[Any, ...]] = []
    while True:
        if not sim._agenda and not sim._next_bucket():
            break
        item = heapq.heappop(sim._agenda)
        assert item == heapq.heappop(reference)
        popped.append(item)
        if len(popped) % 3 == 0:  # a push while the bucket is being worked: same day, later day, the past
            now = item[2]
            push(now + dt.timedelta(minutes=rng.randrange(0, 600)), "same-or-next-day")
            push(now + dt.timedelta(days=rng.randrange(1, 30)), "later")
            if len(popped) % 30 == 0:
                push(now - dt.timedelta(days=2), "past")
    assert not reference and len(popped) > 500
    assert {item[4] for item in popped} >= {"same-or-next-day", "later", "past"}

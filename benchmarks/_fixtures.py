"""Realistic inputs shared by the figures: drafts, actors, a flow, and a change recorder.

Texts differ per suggestion (as in real use), so nothing is shared between suggestions
that would not be shared in production.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from jianyi_flow import (
    SHANGHAI,
    Actor,
    Change,
    FakeClock,
    Flow,
    MemoryStore,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ResearchMethod,
    Role,
    Store,
    Suggestion,
    SuggestionDraft,
)

START = dt.datetime(2024, 8, 21, 9, 0, tzinfo=SHANGHAI)
"""Wednesday 2024-08-21 09:00 in Shanghai: an ordinary working day."""

AREA = "A4"
LEAD = "JTJ"
CO = "CGJ"
OFFICE = Actor("office-1", Role.COLLECTION_OFFICE, unit="XFB", name="区征集办")
UNIT = Actor("staff-JTJ", Role.HANDLING_UNIT, unit=LEAD, name="交通局")


def proposer_actor(n: int) -> Actor:
    return Actor(f"citizen-{n:07d}", Role.PROPOSER)


def draft(n: int) -> SuggestionDraft:
    """A valid draft whose texts carry ``n`` (the sizes of a typical simulated suggestion)."""
    return SuggestionDraft(
        title=f"关于优化永川城区公交线路的建议（{n}）",
        subject=f"超大城市治理：公交线路与站点优化{n % 53}",
        problem=f"早高峰 {n % 300} 路班次间隔过长，乘客候车超过 20 分钟，部分站点缺少遮阳棚和座椅。",
        measures=f"建议早高峰加密班次至 8 分钟一班，增设医院站，并完善站台设施（方案{n % 89}）。",
        area=AREA,
        topic=None,
        proposer=Proposer(
            name="张三丰",
            kind=ProposerKind.CITIZEN,
            phone=f"138{n % 10**8:08d}",
            address=f"重庆市永川区中山路{n % 300 + 1}号",
            account=f"citizen-{n:07d}",
        ),
    )


def make_flow(store: Store, start: dt.datetime = START, prefix: str = "S") -> tuple[Flow, FakeClock]:
    """A Flow with the default permission table, no campaign guards, sequential ids and a fixed clock."""
    clock = FakeClock(start)
    counter = itertools.count(1)
    return Flow(store, clock, ids=lambda: f"{prefix}{next(counter):08d}"), clock


def registered(flow: Flow, count: int, first: int = 0) -> list[str]:
    """Receive and register ``count`` suggestions; their ids."""
    out: list[str] = []
    for n in range(first, first + count):
        s = flow.receive(draft(n), proposer_actor(n))
        flow.register(s.id, OFFICE)
        out.append(s.id)
    return out


LIFECYCLE: tuple[str, ...] = ("receive", "register", "transfer", "research", "decide", "reply", "rate")
"""The seven commands of the main line, each a separate call (and transaction on SQL)."""


def lifecycle(flow: Flow, n: int, advance: Callable[[], Any] | None = None) -> Suggestion:
    """One suggestion through the seven steps of the main line (7 events).

    ``advance`` (e.g. moving a FakeClock on) is called between the steps, so each event
    gets its own time as in real use.
    """
    tick = advance or (lambda: None)
    s = flow.receive(draft(n), proposer_actor(n))
    tick()
    s = flow.register(s.id, OFFICE)
    tick()
    s = flow.transfer(s.id, OFFICE, lead_unit=LEAD, co_units=[CO] if n % 3 == 0 else [])
    tick()
    s = flow.research(s.id, UNIT, findings="经实地调研和部门会商，形成办理意见。",
                      method=ResearchMethod.FIELD_VISIT)
    tick()
    s = flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED if n % 2 else Outcome.DECLINED,
                    reason=None if n % 2 else "现有政策已覆盖或条件暂不具备")
    tick()
    s = flow.reply(s.id, UNIT, text="感谢您的建议，办理情况答复如下。", form=ReplyForm.WRITTEN)
    tick()
    return flow.rate(s.id, proposer_actor(n), rating=Rating.SATISFIED)


class Recorder(MemoryStore):
    """A MemoryStore that also keeps every Change it committed, in order (to replay elsewhere)."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[Change] = []

    def commit(self, change: Change) -> None:
        super().commit(change)
        self.changes.append(change)


def batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

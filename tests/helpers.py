"""Small builders shared by the tests: a fixed clock, actors, a valid draft, and a driver
that walks one suggestion to any state through the public :class:`Flow` API.

Nothing here reaches into Flow's internals: every state is reached by the commands a
portal would call, each run by an actor the default permission table allows (the office
routes, the lead unit handles, the proposer — ``actor.id == draft.proposer.account`` —
rates and withdraws, the lead unit's head approves extensions), and ``tick`` for the
time-driven ``unrated``.  Checks of what is *stored* read the store directly
(``flow.store.load`` / ``history``): that is trusted code, not an actor's view.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from jianyi_flow import (
    SHANGHAI,
    Actor,
    FakeClock,
    Flow,
    MemoryStore,
    OutboxMessage,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ResearchMethod,
    Role,
    State,
    Store,
    Suggestion,
    SuggestionDraft,
)
from jianyi_flow.domain.model import Event
from jianyi_flow.testing.drive import PATHS  # the shortest command path from received to each state

START = dt.datetime(2024, 8, 21, 9, 0, tzinfo=SHANGHAI)
"""Wednesday 2024-08-21 09:00 in Shanghai: an ordinary working day, far from any holiday."""

AREA = "xinqiao"
OTHER_AREA = "shapingba"
LEAD_UNIT = "u_traffic"
CO_UNIT = "u_env"
OTHER_UNIT = "u_housing"
REC_UNIT = "street_xq"
OFFICE_UNIT = "zjb"
KNOWN_AREAS = frozenset({AREA, OTHER_AREA})
KNOWN_UNITS = frozenset({LEAD_UNIT, CO_UNIT, OTHER_UNIT, REC_UNIT, OFFICE_UNIT})

PHONE = "13812345678"
ADDRESS = "重庆市沙坪坝区新桥正街12号"
ACCOUNT = "wx_zhangsan"
"""The proposer's portal account in :func:`make_proposer`: :data:`PROPOSER` acts under it."""

OFFICE = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit=OFFICE_UNIT, name="征集办")
UNIT = Actor(id="unit-1", role=Role.HANDLING_UNIT, unit=LEAD_UNIT, name="交通局")
"""Staff of the lead unit :data:`LEAD_UNIT`."""
UNIT_HEAD = Actor(id="head-1", role=Role.HANDLING_UNIT_HEAD, unit=LEAD_UNIT, name="交通局负责人")
"""The lead unit's head: approves or refuses its extension requests."""
CO_UNIT_ACTOR = Actor(id="unit-3", role=Role.HANDLING_UNIT, unit=CO_UNIT, name="生态环境局")
OTHER_UNIT_ACTOR = Actor(id="unit-2", role=Role.HANDLING_UNIT, unit=OTHER_UNIT, name="住建委")
PROPOSER = Actor(id=ACCOUNT, role=Role.PROPOSER, name="张三")
"""The proposer of every draft :func:`make_draft` builds (its id is the draft's account)."""
OTHER_PROPOSER = Actor(id="wx_lisi", role=Role.PROPOSER, name="李四")
EVALUATOR = Actor(id="judge-1", role=Role.EVALUATOR, name="李评委")
OFFICER = Actor(id="io-1", role=Role.INFORMATION_OFFICER, unit=REC_UNIT, name="信息员")


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
             microsecond: int = 0) -> dt.datetime:
    """An aware Asia/Shanghai datetime."""
    return dt.datetime(year, month, day, hour, minute, second, microsecond, tzinfo=SHANGHAI)


def end_of(day: dt.date) -> dt.datetime:
    """The last microsecond of ``day`` in Shanghai (what a deadline looks like), written out by hand."""
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, 999_999, tzinfo=SHANGHAI)


def make_clock(start: dt.datetime = START) -> FakeClock:
    return FakeClock(start)


def make_proposer(**overrides: Any) -> Proposer:
    fields: dict[str, Any] = {
        "name": "张三",
        "kind": ProposerKind.CITIZEN,
        "phone": PHONE,
        "address": ADDRESS,
        "account": ACCOUNT,
    }
    fields.update(overrides)
    return Proposer(**fields)


def make_draft(**overrides: Any) -> SuggestionDraft:
    """A valid draft; pass any field to override it (``proposer=make_proposer(phone=...)``...)."""
    fields: dict[str, Any] = {
        "title": "关于优化新桥公交线路的建议",
        "subject": "新桥片区公交线路调整",
        "problem": "早高峰 231 路班次间隔过长，乘客候车超过 20 分钟。",
        "measures": "建议早高峰加密班次至 8 分钟一班，并增设新桥医院站。",
        "area": AREA,
        "proposer": make_proposer(),
        "topic": "transport",
    }
    fields.update(overrides)
    return SuggestionDraft(**fields)


def sequential_ids(prefix: str = "s") -> Callable[[], str]:
    """Deterministic suggestion ids ``s0001``, ``s0002``..."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):04d}"


def make_flow(store: Store | None = None, clock: FakeClock | None = None, **kwargs: Any) -> Flow:
    """A Flow on a fresh MemoryStore and a FakeClock at :data:`START`, with sequential ids.

    The permission table is the default one unless ``permissions=`` says otherwise.
    """
    kwargs.setdefault("ids", sequential_ids())
    return Flow(store if store is not None else MemoryStore(), clock if clock is not None else make_clock(),
                **kwargs)


def fake_clock(flow: Flow) -> FakeClock:
    clock = flow.clock
    assert isinstance(clock, FakeClock), "these helpers drive time through a FakeClock"
    return clock


def stored(flow: Flow, sid: str) -> Suggestion:
    """The row as stored (trusted read, no actor, no masking)."""
    return flow.store.load(sid)


def stored_history(flow: Flow, sid: str) -> list[Event]:
    """The events as stored (trusted read, no actor, no masking)."""
    return flow.store.history(sid)


# --- one step per trigger, with valid arguments, by an allowed actor ---------------------------

def _decide(outcome: Outcome) -> Callable[[Flow, str], Suggestion]:
    def run(flow: Flow, sid: str) -> Suggestion:
        if outcome is Outcome.DECLINED:
            return flow.decide(sid, UNIT, outcome=outcome, reason="财政预算不足，暂不采纳")
        if outcome is Outcome.PARTIALLY_ADOPTED:
            return flow.decide(sid, UNIT, outcome=outcome, adopted_part="加密早高峰班次")
        return flow.decide(sid, UNIT, outcome=outcome)

    return run


def close_unrated(flow: Flow, sid: str) -> Suggestion:
    """Let the rating window of a replied suggestion pass and run ``tick``."""
    s = stored(flow, sid)
    assert s.state is State.REPLIED and s.due_at is not None
    clock = fake_clock(flow)
    clock.set(max(clock.now(), s.due_at + dt.timedelta(seconds=1)))
    flow.tick()
    return stored(flow, sid)


def rate_step(rating: Rating) -> Callable[[Flow, str], Suggestion]:
    return lambda flow, sid: flow.rate(sid, PROPOSER, rating=rating, comment="回复及时")


def extend(flow: Flow, sid: str, days: int, reason: str = "需会商") -> Suggestion:
    """The lead unit asks for ``days`` more and its head approves: the deadline moves."""
    flow.request_extension(sid, UNIT, days=days, reason=reason)
    return flow.approve_extension(sid, UNIT_HEAD)


STEPS: Mapping[str, Callable[[Flow, str], Suggestion]] = {
    "register": lambda flow, sid: flow.register(sid, OFFICE),
    "not_accept": lambda flow, sid: flow.not_accept(sid, OFFICE, reason="属个人诉求，转信访渠道"),
    "transfer": lambda flow, sid: flow.transfer(sid, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,)),
    "object_transfer": lambda flow, sid: flow.object_transfer(sid, UNIT, reason="不属本单位职责"),
    "accept_objection": lambda flow, sid: flow.accept_objection(sid, OFFICE, note="异议成立"),
    "reject_objection": lambda flow, sid: flow.reject_objection(sid, OFFICE, reason="属交通局职责"),
    "research": lambda flow, sid: flow.research(sid, UNIT, findings="实地调研三次，召开座谈会一次",
                                                method=ResearchMethod.FIELD_VISIT),
    "adopt": _decide(Outcome.ADOPTED),
    "adopt_partially": _decide(Outcome.PARTIALLY_ADOPTED),
    "decline": _decide(Outcome.DECLINED),
    "reply": lambda flow, sid: flow.reply(sid, UNIT, text="感谢您的建议，已加密班次。", form=ReplyForm.WRITTEN),
    "rate": rate_step(Rating.DISSATISFIED),
    "withdraw": lambda flow, sid: flow.withdraw(sid, PROPOSER, reason="问题已自行解决"),
    "reopen": lambda flow, sid: flow.reopen(sid, OFFICE, reason="建议人不满意，重新办理"),
    "close_unrated": close_unrated,
}
"""One way to run each state-changing trigger with valid arguments, by an actor allowed to."""



def receive(flow: Flow, draft: SuggestionDraft | None = None, *, suggestion_id: str | None = None,
            actor: Actor = OFFICE) -> Suggestion:
    return flow.receive(draft if draft is not None else make_draft(), actor, suggestion_id=suggestion_id)


def drive_to(
    flow: Flow,
    state: State,
    *,
    suggestion_id: str | None = None,
    draft: SuggestionDraft | None = None,
    rating: Rating = Rating.DISSATISFIED,
) -> Suggestion:
    """Receive a new suggestion and walk it to ``state`` through Flow commands; returns the stored row.

    ``rated`` is reached with ``rating`` (dissatisfied by default, so a reopen is possible);
    ``unrated`` moves the flow's FakeClock past the rating window and runs ``tick``.  The
    draft's proposer account must be :data:`ACCOUNT` for the proposer's steps to be allowed.
    """
    s = receive(flow, draft, suggestion_id=suggestion_id)
    for step in PATHS[state]:
        run = rate_step(rating) if step == "rate" else STEPS[step]
        run(flow, s.id)
    s = stored(flow, s.id)
    assert s.state is state, f"drove to {s.state}, wanted {state}"
    return s


# --- looking at the store through its public API ------------------------------------------------

def drain(store: Store, now: dt.datetime = START) -> list[OutboxMessage]:
    """Claim every unsent outbox message and mark it sent; returns them oldest first."""
    messages = store.claim(1_000_000, now, dt.timedelta(seconds=1))
    store.mark_sent([m.id for m in messages if m.id is not None], now)
    return messages


@attrs.frozen
class Snapshot:
    """What a refused command must leave untouched."""

    row: Suggestion
    history: tuple[Event, ...]


def snapshot(flow: Flow, sid: str) -> Snapshot:
    """Take a snapshot and empty the outbox, so :func:`assert_unchanged` can see new messages."""
    drain(flow.store)
    return Snapshot(stored(flow, sid), tuple(stored_history(flow, sid)))


def assert_unchanged(flow: Flow, sid: str, before: Snapshot, keys: Iterable[tuple[Actor, str]] = ()) -> None:
    """Same row (and version), same history, no new outbox message, no idempotency key recorded.

    ``keys`` are (actor, key) pairs: a key is recorded per actor.
    """
    after = stored(flow, sid)
    assert after == before.row
    assert after.version == before.row.version
    assert tuple(stored_history(flow, sid)) == before.history
    assert drain(flow.store) == []
    for actor, key in keys:
        assert flow.store.idempotency(actor.key, key) is None


CLI_OFFICE = Actor("office-1", Role.COLLECTION_OFFICE, unit="zjb")
"""The office the command-line tests' stores were filled by."""
CLI_START = dt.datetime(2024, 9, 2, 9, tzinfo=SHANGHAI)


def fill_transferred(store: Store, n: int = 3) -> Flow:
    """``n`` suggestions received, registered and transferred to ``u_traffic``, five minutes apart (CLI, worker)."""
    clock = FakeClock(CLI_START)
    flow = Flow(store, clock)
    for i in range(n):
        draft = SuggestionDraft(title=f"建议{i}", subject="事项", problem="问题。", measures="措施。", area="a1",
                                proposer=Proposer("张三"))
        s = flow.receive(draft, CLI_OFFICE)
        flow.register(s.id, CLI_OFFICE)
        flow.transfer(s.id, CLI_OFFICE, lead_unit="u_traffic")
        clock.advance(minutes=5)
    return flow

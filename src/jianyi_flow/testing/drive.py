"""Real actors and a driver that walks a suggestion to any state through :class:`~jianyi_flow.Flow`.

The flows made here run with the default permission table, so every command is sent by an
actor the table allows on that suggestion (:func:`actor_for`): the collection office
routes, the lead unit handles, its head decides on extensions, the proposer (the actor
whose id is the proposer's portal account) rates and withdraws, an evaluator scores.
Nothing here reaches into Flow: every state is reached by the commands a portal would
send, and ``tick`` for the time-driven ``unrated``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from ..domain.clock import SHANGHAI, FakeClock
from ..domain.model import (
    Actor,
    Channel,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ResearchMethod,
    Role,
    State,
    Suggestion,
    SuggestionDraft,
)
from ..service.flow import Flow
from ..storage.base import Store

__all__ = [
    "CO_UNIT",
    "EVALUATOR_ACTOR",
    "LEAD_UNIT",
    "OFFICE_ACTOR",
    "OTHER_UNIT",
    "PATHS",
    "PROPOSER_ACCOUNT",
    "PROPOSER_ACTOR",
    "STEPS",
    "T0",
    "UNIT_ACTOR",
    "UNIT_HEAD_ACTOR",
    "actor_for",
    "drive_to",
    "make_draft",
    "make_flow",
    "proposer_actor",
    "unit_actor",
    "unit_head",
]

T0 = dt.datetime(2024, 8, 21, 9, 0, tzinfo=SHANGHAI)
"""Wednesday 21 August 2024, 09:00 in Shanghai: a working day far from any holiday."""

LEAD_UNIT = "u_traffic"
CO_UNIT = "u_env"
OTHER_UNIT = "u_housing"
PROPOSER_ACCOUNT = "wx_zhangsan"


def unit_actor(unit: str) -> Actor:
    """A clerk of ``unit`` (承办单位): researches, decides, replies, objects, asks for more time."""
    return Actor(id=f"clerk-{unit}", role=Role.HANDLING_UNIT, unit=unit, name=f"{unit} 经办人")


def unit_head(unit: str) -> Actor:
    """The head of ``unit`` (承办单位负责人): approves or refuses its extension requests."""
    return Actor(id=f"head-{unit}", role=Role.HANDLING_UNIT_HEAD, unit=unit, name=f"{unit} 负责人")


def proposer_actor(account: str = PROPOSER_ACCOUNT) -> Actor:
    """The proposer signed in under ``account`` (a suggestion's ``proposer.account``)."""
    return Actor(id=account, role=Role.PROPOSER, name="张三")


OFFICE_ACTOR = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区征集办")
UNIT_ACTOR = unit_actor(LEAD_UNIT)
UNIT_HEAD_ACTOR = unit_head(LEAD_UNIT)
PROPOSER_ACTOR = proposer_actor()
EVALUATOR_ACTOR = Actor(id="judge-1", role=Role.EVALUATOR, name="李评委")

_OFFICE_COMMANDS = frozenset({"receive", "register", "not_accept", "transfer", "reopen", "accept_objection",
                              "reject_objection", "report_upward", "forward_to_city", "mark_typical",
                              "record_adoption"})
_UNIT_COMMANDS = frozenset({"object_transfer", "request_extension", "research", "decide", "reply"})
_HEAD_COMMANDS = frozenset({"approve_extension", "reject_extension"})
_PROPOSER_COMMANDS = frozenset({"rate", "withdraw"})
_EVALUATOR_COMMANDS = frozenset({"evaluate", "nominate_reward"})


def actor_for(command: str, s: Suggestion | None = None) -> Actor:
    """Who the default permission table lets run ``command`` on ``s`` (written out from docs/security.md)."""
    lead = (s.lead_unit if s is not None else None) or LEAD_UNIT
    if command in _OFFICE_COMMANDS:
        return OFFICE_ACTOR
    if command in _UNIT_COMMANDS:
        return unit_actor(lead)
    if command in _HEAD_COMMANDS:
        return unit_head(lead)
    if command in _PROPOSER_COMMANDS:
        return proposer_actor((s.proposer.account if s is not None else None) or PROPOSER_ACCOUNT)
    if command in _EVALUATOR_COMMANDS:
        return EVALUATOR_ACTOR
    raise ValueError(f"no actor is known for command {command!r}")


def make_draft(**overrides: Any) -> SuggestionDraft:
    """A valid draft from a citizen with a portal account; pass any field to override it."""
    values: dict[str, Any] = {
        "title": "关于优化新桥公交线路的建议",
        "subject": "新桥片区公交线路调整",
        "problem": "早高峰 231 路班次间隔过长，乘客候车超过 20 分钟。",
        "measures": "建议早高峰加密班次至 8 分钟一班，并增设新桥医院站。",
        "area": "xinqiao",
        "topic": "transport",
        "channel": Channel.ONLINE_PORTAL,
        "proposer": Proposer(name="张三", kind=ProposerKind.CITIZEN, phone="13812345678",
                             address="重庆市沙坪坝区新桥正街12号", account=PROPOSER_ACCOUNT),
    }
    values.update(overrides)
    return SuggestionDraft(**values)


def make_flow(store: Store, clock: FakeClock | None = None, **kwargs: Any) -> Flow:
    """A Flow with the default permission table, a FakeClock at :data:`T0` and ids ``s0001``, ``s0002``..."""
    if "ids" not in kwargs:
        counter = itertools.count(1)
        kwargs["ids"] = lambda: f"s{next(counter):04d}"
    kwargs.setdefault("campaign", "jy2024")
    return Flow(store, clock if clock is not None else FakeClock(T0), **kwargs)


def _fake_clock(flow: Flow) -> FakeClock:
    clock = flow.clock
    assert isinstance(clock, FakeClock), "driving to 'unrated' moves time: the flow needs a FakeClock"
    return clock


def _run(command: str, **kwargs: Any) -> Callable[[Flow, str], Suggestion]:
    def step(flow: Flow, sid: str) -> Suggestion:
        actor = actor_for(command, flow.store.load(sid))
        result: Suggestion = getattr(flow, command)(sid, actor, **kwargs)
        return result

    return step


def _decide(outcome: Outcome) -> Callable[[Flow, str], Suggestion]:
    if outcome is Outcome.DECLINED:
        return _run("decide", outcome=outcome, reason="财政预算不足，暂不采纳")
    if outcome is Outcome.PARTIALLY_ADOPTED:
        return _run("decide", outcome=outcome, adopted_part="加密早高峰班次")
    return _run("decide", outcome=outcome)


def _close_unrated(flow: Flow, sid: str) -> Suggestion:
    """Let the rating window of a replied suggestion pass and run ``tick``."""
    s = flow.store.load(sid)
    assert s.state is State.REPLIED and s.due_at is not None
    clock = _fake_clock(flow)
    clock.set(max(clock.now(), s.due_at + dt.timedelta(seconds=1)))
    flow.tick()
    return flow.store.load(sid)


STEPS: Mapping[str, Callable[[Flow, str], Suggestion]] = {
    "register": _run("register"),
    "not_accept": _run("not_accept", reason="属个人诉求，转信访渠道"),
    "transfer": _run("transfer", lead_unit=LEAD_UNIT, co_units=(CO_UNIT,)),
    "object_transfer": _run("object_transfer", reason="不属本单位职责"),
    "accept_objection": _run("accept_objection", note="异议成立"),
    "reject_objection": _run("reject_objection", reason="属本单位职责"),
    "research": _run("research", findings="实地调研三次，召开座谈会一次", method=ResearchMethod.FORUM),
    "adopt": _decide(Outcome.ADOPTED),
    "adopt_partially": _decide(Outcome.PARTIALLY_ADOPTED),
    "decline": _decide(Outcome.DECLINED),
    "reply": _run("reply", text="感谢您的建议，已加密班次。", form=ReplyForm.WRITTEN),
    "rate": _run("rate", rating=Rating.DISSATISFIED, comment="站台仍未增设"),
    "withdraw": _run("withdraw", reason="问题已自行解决"),
    "reopen": _run("reopen", reason="建议人不满意，重新办理"),
    "close_unrated": _close_unrated,
}
"""One way to run each state-changing command with valid arguments, by the actor allowed to."""

_RESEARCHED = ("register", "transfer", "research")
PATHS: Mapping[State, tuple[str, ...]] = {
    State.RECEIVED: (),
    State.REGISTERED: ("register",),
    State.TRANSFERRED: ("register", "transfer"),
    State.OBJECTED: ("register", "transfer", "object_transfer"),
    State.RETURNED: ("register", "transfer", "object_transfer", "accept_objection"),
    State.RESEARCHED: _RESEARCHED,
    State.ADOPTED: (*_RESEARCHED, "adopt"),
    State.PARTIALLY_ADOPTED: (*_RESEARCHED, "adopt_partially"),
    State.DECLINED: (*_RESEARCHED, "decline"),
    State.REPLIED: (*_RESEARCHED, "adopt", "reply"),
    State.RATED: (*_RESEARCHED, "adopt", "reply", "rate"),
    State.NOT_ACCEPTED: ("not_accept",),
    State.WITHDRAWN: ("withdraw",),
    State.UNRATED: (*_RESEARCHED, "adopt", "reply", "close_unrated"),
}
"""The shortest command path from ``received`` to each state (``rated``: dissatisfied, so it may reopen)."""


def drive_to(
    flow: Flow,
    state: State,
    *,
    suggestion_id: str | None = None,
    draft: SuggestionDraft | None = None,
    rating: Rating = Rating.DISSATISFIED,
) -> Suggestion:
    """Receive a new suggestion (by the office) and walk it to ``state``; returns the stored row.

    ``unrated`` moves the flow's FakeClock past the rating window and runs ``tick``.
    """
    s = flow.receive(draft if draft is not None else make_draft(), OFFICE_ACTOR, suggestion_id=suggestion_id)
    for name in PATHS[state]:
        if name == "rate":
            flow.rate(s.id, actor_for("rate", flow.store.load(s.id)), rating=rating, comment="回复及时")
        else:
            STEPS[name](flow, s.id)
    row = flow.store.load(s.id)
    assert row.state is state, f"drove to {row.state}, wanted {state}"
    return row

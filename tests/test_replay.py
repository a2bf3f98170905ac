"""Replaying a suggestion's history gives its stored row; tampering with the history is detected.

Lifecycles are generated: at each step hypothesis picks a suggestion, one of the commands
the machine allows in its current state (``allowed_triggers``) with random arguments, a
``tick``, or a random advance of the clock; each command is sent by the actor the default
permission table allows (``jianyi_flow.testing.actor_for``).  Commands the machine allows
but Flow refuses for their own rules (a second extension, a reopen after 'satisfied', an
objection after its window...) must then leave the store untouched.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jianyi_flow import (
    Flow,
    InvalidTransition,
    MemoryStore,
    Outcome,
    Rating,
    ReplyForm,
    ResearchMethod,
    State,
    Store,
    ValidationError,
    WindowClosed,
    replay,
)
from jianyi_flow.domain.clock import FakeClock
from jianyi_flow.domain.history import event_hash, seal, verify_events
from jianyi_flow.domain.model import Actor, AdoptionForm, Event, ReportForm, RewardTier, Role, Suggestion
from jianyi_flow.domain.personal import pseudonymous_row
from jianyi_flow.domain.workflow import allowed_triggers
from jianyi_flow.storage.base import OutboxMessage, StoredHistory
from jianyi_flow.testing import CO_UNIT, LEAD_UNIT, OFFICE_ACTOR, OTHER_UNIT, actor_for, drive_to, make_draft, make_flow

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SYSTEM_TRIGGERS = frozenset({"close_unrated", "flag_overdue", "retime"})
"""Triggers only ``Flow.tick`` (and the calendar's re-timing) fire, as the system."""
MAX_DAYS = 480
"""Keeps generated lifecycles (plus their longest deadlines) inside the calendar's covered years."""

Draw = Callable[[st.SearchStrategy[Any]], Any]
texts = st.sampled_from(["理由", "需进一步调研", "属个人诉求", "x" * 40, "包含 <b>标记</b> 和 'quotes'"])
maybe = st.none() | texts


def _decide(flow: Flow, sid: str, actor: Actor, draw: Draw) -> object:
    outcome = draw(st.sampled_from(list(Outcome)))
    kwargs: dict[str, Any] = {}
    if outcome is Outcome.DECLINED or draw(st.booleans()):
        kwargs["reason"] = draw(texts)
    if outcome is Outcome.PARTIALLY_ADOPTED:
        kwargs["adopted_part"] = draw(texts)
    return flow.decide(sid, actor, outcome=outcome, **kwargs)


COMMANDS: dict[str, Callable[[Flow, str, Actor, Draw], object]] = {
    "register": lambda f, sid, a, d: f.register(sid, a),
    "not_accept": lambda f, sid, a, d: f.not_accept(sid, a, reason=d(texts)),
    "transfer": lambda f, sid, a, d: f.transfer(
        sid, a, lead_unit=d(st.sampled_from([LEAD_UNIT, OTHER_UNIT])),
        co_units=d(st.sampled_from([(), (CO_UNIT,)])), note=d(maybe),
    ),
    "object_transfer": lambda f, sid, a, d: f.object_transfer(sid, a, reason=d(texts)),
    "accept_objection": lambda f, sid, a, d: f.accept_objection(sid, a, note=d(maybe)),
    "reject_objection": lambda f, sid, a, d: f.reject_objection(sid, a, reason=d(texts)),
    "research": lambda f, sid, a, d: f.research(sid, a, findings=d(texts),
                                                method=d(st.sampled_from(list(ResearchMethod)))),
    "decide": _decide,
    "reply": lambda f, sid, a, d: f.reply(sid, a, text=d(texts), form=d(st.sampled_from(list(ReplyForm)))),
    "rate": lambda f, sid, a, d: f.rate(sid, a, rating=d(st.sampled_from(list(Rating))), comment=d(maybe)),
    "withdraw": lambda f, sid, a, d: f.withdraw(sid, a, reason=d(maybe)),
    "reopen": lambda f, sid, a, d: f.reopen(sid, a, reason=d(texts)),
    "request_extension": lambda f, sid, a, d: f.request_extension(sid, a, days=d(st.integers(1, 30)),
                                                                  reason=d(texts)),
    "approve_extension": lambda f, sid, a, d: f.approve_extension(sid, a, note=d(maybe)),
    "reject_extension": lambda f, sid, a, d: f.reject_extension(sid, a, reason=d(texts)),
    "report_upward": lambda f, sid, a, d: f.report_upward(sid, a, form=d(st.sampled_from(list(ReportForm))),
                                                          note=d(maybe)),
    "forward_to_city": lambda f, sid, a, d: f.forward_to_city(sid, a, note=d(maybe)),
    "evaluate": lambda f, sid, a, d: f.evaluate(sid, a, quality=d(st.integers(0, 10)), value=d(st.integers(0, 10)),
                                                effect=d(st.integers(0, 10)), evaluator="李评委"),
    "nominate_reward": lambda f, sid, a, d: f.nominate_reward(sid, a, tier=d(st.sampled_from(list(RewardTier)))),
    "record_adoption": lambda f, sid, a, d: f.record_adoption(sid, a, adopted_into=d(texts),
                                                              form=d(st.none() | st.sampled_from(list(AdoptionForm)))),
    "mark_typical": lambda f, sid, a, d: f.mark_typical(sid, a, note=d(maybe)),
}
"""Every command a portal can send, with arguments drawn at random (always well formed)."""

WEIGHTS = {"register": 6, "transfer": 6, "research": 6, "decide": 6, "reply": 6, "rate": 6, "reopen": 6,
           "withdraw": 1, "not_accept": 1}
"""How often each allowed command is picked (others: 2), so lifecycles reach the late states."""

ADVANCES = st.one_of(
    st.integers(0, 120).map(lambda m: dt.timedelta(minutes=m)),
    st.integers(1, 48).map(lambda h: dt.timedelta(hours=h)),
    st.integers(1, 40).map(lambda d: dt.timedelta(days=d)),
)


def test_every_machine_trigger_can_be_generated() -> None:
    shown = {t for state in State for t in allowed_triggers(state)}
    assert shown == set(COMMANDS) | SYSTEM_TRIGGERS


def fake_clock(flow: Flow) -> FakeClock:
    assert isinstance(flow.clock, FakeClock)
    return flow.clock


def drain(store: Store) -> list[OutboxMessage]:
    messages = store.claim(1_000_000, dt.datetime(2090, 1, 1, tzinfo=dt.UTC), dt.timedelta(days=1))
    store.mark_sent([m.id for m in messages if m.id is not None], dt.datetime(2090, 1, 1, tzinfo=dt.UTC))
    return messages


def run_lifecycles(flow: Flow, draw: Draw) -> list[str]:
    """Run a random legal lifecycle of one or more suggestions; returns their ids."""
    store = flow.store
    ids = [flow.receive(make_draft(), OFFICE_ACTOR).id for _ in range(draw(st.integers(1, 2)))]
    clock = fake_clock(flow)
    start = clock.now()
    for _ in range(draw(st.integers(5, 60))):
        action = draw(st.sampled_from(["command"] * 8 + ["advance", "advance", "tick", "jump", "receive"]))
        if action in ("advance", "jump"):
            step = draw(ADVANCES if action == "advance" else st.integers(25, 70).map(lambda d: dt.timedelta(days=d)))
            if clock.now() + step - start <= dt.timedelta(days=MAX_DAYS):
                clock.advance(step)
            if action == "jump":
                flow.tick()
        elif action == "tick":
            flow.tick()
        elif action == "receive":
            ids.append(flow.receive(make_draft(), OFFICE_ACTOR).id)
        else:
            sid = draw(st.sampled_from(ids))
            row = store.load(sid)
            options = [t for t in allowed_triggers(row.state) if t not in SYSTEM_TRIGGERS]
            if not options:
                continue
            command = draw(st.sampled_from([t for t in options for _ in range(WEIGHTS.get(t, 2))]))
            drain(store)
            history = store.history(sid)
            try:
                COMMANDS[command](flow, sid, actor_for(command, row), draw)
            except (InvalidTransition, ValidationError, WindowClosed):
                # allowed by the machine, refused by the command's own rule: nothing written
                assert store.load(sid) == row
                assert store.history(sid) == history
                assert drain(store) == []
    return ids


def check_history(flow: Flow, sid: str) -> list[Event]:
    events = flow.history(sid, OFFICE_ACTOR)  # the office sees the history as stored
    row = flow.get(sid, OFFICE_ACTOR)
    assert events == flow.store.history(sid) and row == flow.store.load(sid)
    # a vaulted proposer's data lives in the vault: the replay gives the row without it
    assert replay(events) == (pseudonymous_row(row) if row.proposer.vaulted else row)
    assert row.proposer.vaulted is flow.vaulted
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert row.version == len(events)
    assert events[0].kind == "receive" and events[0].from_state is None and events[0].prev_hash == ""
    for before, after in itertools.pairwise(events):
        assert after.from_state is before.to_state
        assert after.prev_hash == before.hash
        assert after.at >= before.at
        assert before.seq is not None and after.seq is not None and before.seq < after.seq
    assert row.event_hash == events[-1].hash
    assert row.state is events[-1].to_state
    assert flow.verify_history(sid) == []
    for n, event in enumerate(events, start=1):
        prefix = replay(events[:n])
        assert prefix is not None
        assert (prefix.version, prefix.state) == (n, event.to_state)
    return events


@pytest.mark.parametrize("vault", [True, False], ids=["vault", "no-vault"])
@SETTINGS
@given(st.data())
def test_replay_of_any_lifecycle_is_the_stored_row(vault: bool, data: st.DataObject) -> None:
    flow = make_flow(MemoryStore(), vault=vault)
    for sid in run_lifecycles(flow, data.draw):
        check_history(flow, sid)
    assert flow.verify_all() == []


# --- tampering ------------------------------------------------------------------------------------

def _edits(event: Event) -> list[Event]:
    """Ways to edit one event's content, each giving a different event."""
    other = State.WITHDRAWN if event.to_state is not State.WITHDRAWN else State.RECEIVED
    return [
        attrs.evolve(event, reason=(event.reason or "") + "（篡改）"),
        attrs.evolve(event, at=event.at + dt.timedelta(seconds=1)),
        attrs.evolve(event, to_state=other),
        attrs.evolve(event, actor=Actor(id="intruder", role=Role.COLLECTION_OFFICE)),
        attrs.evolve(event, changes={**event.changes, "title": "被篡改的标题"}),
        attrs.evolve(event, payload={**event.payload, "approver": "nobody"}),
        attrs.evolve(event, kind="reopen" if event.kind != "reopen" else "register"),
        attrs.evolve(event, notices=(*event.notices, "unit:u_intruder")),
        attrs.evolve(event, workflow="suggestion@000000000000"),
        attrs.evolve(event, policy="deadlines@000000000000"),
    ]


def _tampered(events: list[Event], kind: str, i: int, j: int, edit: int, reseal: bool) -> list[Event]:
    out = list(events)
    if kind == "edit":
        changed = _edits(out[i])[edit]
        out[i] = seal(changed) if reseal else changed
    elif kind == "delete":
        del out[i]
    else:  # reorder
        out[i], out[j] = out[j], out[i]
    return out


@SETTINGS
@given(st.data())
def test_tampering_with_any_generated_history_is_detected(data: st.DataObject) -> None:
    flow = make_flow(MemoryStore())
    sid = run_lifecycles(flow, data.draw)[0]
    events = check_history(flow, sid)
    row = flow.store.load(sid)
    # Removing or moving the first event is covered by the tests after this one (see there).
    kinds = ["edit", "delete", "reorder"] if len(events) > 2 else ["edit"]
    kind = data.draw(st.sampled_from(kinds))
    first = 0 if kind == "edit" else 1
    i = data.draw(st.integers(first, len(events) - 1))
    j = data.draw(st.integers(1, len(events) - 1).filter(lambda j: j != i)) if kind == "reorder" else i
    edit = data.draw(st.integers(0, len(_edits(events[i])) - 1))
    reseal = data.draw(st.booleans())

    problems = verify_events(sid, _tampered(events, kind, i, j, edit, reseal), row)

    assert problems != []
    if kind == "edit" and not reseal:
        assert any(p.version == events[i].version and "hash" in p.problem for p in problems)


@pytest.fixture(scope="module")
def rich_history() -> tuple[Flow, str]:
    """A suggestion that went the long way round: objected, returned, extended, flagged, reopened, summarised."""
    flow = make_flow(MemoryStore())
    store = flow.store
    s = drive_to(flow, State.RETURNED)

    def run(command: str, **kwargs: Any) -> None:
        getattr(flow, command)(s.id, actor_for(command, store.load(s.id)), **kwargs)

    run("transfer", lead_unit=OTHER_UNIT)
    run("request_extension", days=5, reason="需征求意见")
    run("approve_extension", note="同意")
    fake_clock(flow).advance(days=80)
    flow.tick()
    run("research", findings="调研", method=ResearchMethod.SURVEY)
    run("decide", outcome=Outcome.PARTIALLY_ADOPTED, adopted_part="第一条")
    run("reply", text="答复", form=ReplyForm.PHONE)
    run("rate", rating=Rating.DISSATISFIED)
    run("reopen", reason="不满意")
    run("research", findings="再调研", method=ResearchMethod.EXPERT_REVIEW)
    run("decide", outcome=Outcome.ADOPTED)
    run("reply", text="再答复", form=ReplyForm.WRITTEN)
    fake_clock(flow).advance(days=40)
    flow.tick()
    run("evaluate", quality=9, value=8, effect=7, evaluator="李评委")
    run("nominate_reward", tier=RewardTier.SECOND)
    run("report_upward", form=ReportForm.ANALYSIS)
    run("forward_to_city")
    run("record_adoption", adopted_into="文件", form=AdoptionForm.MECHANISM)
    run("mark_typical")
    assert store.load(s.id).state is State.UNRATED
    return flow, s.id


def test_rich_history_replays(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = check_history(flow, sid)
    kinds = [e.kind for e in events]
    assert {"object_transfer", "accept_objection", "request_extension", "approve_extension", "flag_overdue",
            "reopen", "close_unrated", "evaluate"} <= set(kinds)
    row = flow.store.load(sid)
    assert row.evaluation is not None and row.evaluation.total == 24
    assert (row.reward_tier, row.upward_reports, row.typical_case) == (RewardTier.SECOND, (ReportForm.ANALYSIS,),
                                                                         True)
    assert all(e.workflow == flow.workflow.version for e in events)
    assert any(e.policy is not None for e in events) and any(e.notices for e in events)


def test_every_edit_of_every_event_is_detected(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.store.history(sid)
    row = flow.store.load(sid)
    for i, event in enumerate(events):
        for edited in _edits(event):
            tampered = list(events)
            tampered[i] = edited
            problems = verify_events(sid, tampered, row)
            assert [(p.version, p.problem) for p in problems if "hash" in p.problem][:1] == [
                (event.version, "content does not match its hash")
            ]
            # an attacker who recomputes the edited event's hash breaks the chain after it instead
            tampered[i] = seal(edited)
            assert event_hash(tampered[i]) == tampered[i].hash
            problems = verify_events(sid, tampered, row)
            if i + 1 < len(events):
                assert any(p.version == events[i + 1].version and "prev_hash" in p.problem for p in problems)
            else:
                assert any("replay" in p.problem for p in problems)


def test_deleting_any_later_event_is_detected(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.store.history(sid)
    row = flow.store.load(sid)
    for i in range(1, len(events)):
        problems = verify_events(sid, events[:i] + events[i + 1:], row)
        assert problems != [], f"deleting v{i + 1} went unnoticed"
    assert [p.problem for p in verify_events(sid, [], row)] == ["row has no history"]


def test_reordering_any_two_later_events_is_detected(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.store.history(sid)
    row = flow.store.load(sid)
    for i in range(1, len(events)):
        for j in range(i + 1, len(events)):
            swapped = list(events)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            problems = verify_events(sid, swapped, row)
            assert any("version out of order" in p.problem for p in problems)


# verify_events replays the (tampered) events to compare them with the row.  When the first
# event is gone or moved, the replay starts from an event that is not a 'receive' and
# Suggestion() raises TypeError: the verifier must report the tampering, not crash.

def test_deleting_the_first_event_is_reported_not_raised(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.store.history(sid)
    problems = verify_events(sid, events[1:], flow.store.load(sid))
    assert any(p.version == 2 and "version out of order" in p.problem for p in problems)
    assert any(p.version == 2 and "prev_hash" in p.problem for p in problems)


def test_moving_the_first_event_is_reported_not_raised(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.store.history(sid)
    swapped = [events[1], events[0], *events[2:]]
    problems = verify_events(sid, swapped, flow.store.load(sid))
    assert any("version out of order" in p.problem for p in problems)


@pytest.mark.parametrize(
    "changes", [{"hacked": True}, {"due_at": "not a date"}, {"rating": "delighted"}], ids=["field", "date", "enum"]
)
def test_an_edit_the_replay_cannot_apply_is_reported_not_raised(
    rich_history: tuple[Flow, str], changes: dict[str, Any]
) -> None:
    """Tampered content that apply_event rejects must still come back as a HistoryProblem."""
    flow, sid = rich_history
    events = flow.store.history(sid)
    tampered = list(events)
    tampered[3] = attrs.evolve(events[3], changes={**events[3].changes, **changes})
    problems = verify_events(sid, tampered, flow.store.load(sid))
    assert any(p.version == 4 and "hash" in p.problem for p in problems)


def test_a_row_that_differs_from_its_history_is_detected(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.store.history(sid)
    row = flow.store.load(sid)
    assert verify_events(sid, events, row) == []
    forged = attrs.evolve(row, typical_case=False)
    assert [p.problem for p in verify_events(sid, events, forged)] == ["row differs from the replay of its history"]


# --- verify_all over a whole store ------------------------------------------------------------------
class Tampered:
    """A MemoryStore seen through a reader that edits what it reads: one event, or a whole suggestion gone.

    Built on the public Store and HistoryScanner methods only, the way a database someone
    edited behind the library's back would answer.
    """

    def __init__(self, inner: MemoryStore, *, edit: tuple[str, int, Event] | None = None,
                 hide: str | None = None) -> None:
        self.inner, self.edit, self.hide = inner, edit, hide

    def _events(self, sid: str, events: list[Event]) -> list[Event]:
        if self.edit is not None and self.edit[0] == sid:
            return [self.edit[2] if e.version == self.edit[1] else e for e in events]
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def load(self, sid: str) -> Suggestion:
        return self.inner.load(sid)

    def history(self, sid: str) -> list[Event]:
        return self._events(sid, self.inner.history(sid))

    def scan_histories(self, after_id: str | None, limit: int) -> list[StoredHistory]:
        out = []
        for h in self.inner.scan_histories(after_id, limit):
            if h.suggestion_id != self.hide:
                out.append(attrs.evolve(h, events=tuple(self._events(h.suggestion_id, list(h.events)))))
        return out

    def last_seq(self) -> int:
        return self.inner.last_seq()


@pytest.fixture(scope="module")
def many() -> tuple[MemoryStore, list[str]]:
    """Forty suggestions in every state, on one store."""
    store = MemoryStore()
    flow = make_flow(store)
    ids = [drive_to(flow, state).id for state in [s for s in State if s is not State.UNRATED] * 3]
    assert flow.verify_all() == []
    return store, ids


def test_verify_all_finds_the_one_edited_suggestion_among_many(many: tuple[MemoryStore, list[str]]) -> None:
    store, ids = many
    victim = ids[17]
    events = store.history(victim)
    edited = Tampered(store, edit=(victim, 2, attrs.evolve(events[1], reason="改过的理由")))
    problems = Flow(edited, FakeClock(events[-1].at)).verify_all()
    assert {p.suggestion_id for p in problems} == {victim}
    assert any(p.version == 2 and "hash" in p.problem for p in problems)


def test_verify_all_finds_a_whole_suggestion_gone(many: tuple[MemoryStore, list[str]]) -> None:
    """Every remaining chain is intact; only the log positions of the hidden suggestion's events show it."""
    store, ids = many
    victim = ids[5]
    gone = sorted(e.seq or 0 for e in store.history(victim))
    hidden = Tampered(store, hide=victim)
    problems = Flow(hidden, FakeClock(store.history(victim)[-1].at)).verify_all()
    assert [p.suggestion_id for p in problems] == ["*"]
    assert f"{len(gone)} events missing from the log" in problems[0].problem
    assert str(gone[0]) in problems[0].problem

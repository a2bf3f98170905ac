"""Replaying a suggestion's history gives its stored row; tampering with the history is detected.

Lifecycles are generated: at each step hypothesis picks a suggestion, one of the commands
the machine allows in its current state (``allowed_triggers``) with random arguments, a
``tick``, or a random advance of the clock.  Commands the machine allows but Flow refuses
for their own rules (a second extension, a reopen after 'satisfied', a return after the
objection window...) must then leave the store untouched.
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

from helpers import (
    CO_UNIT,
    LEAD_UNIT,
    OFFICE,
    OTHER_UNIT,
    PROPOSER,
    UNIT,
    assert_unchanged,
    drive_to,
    fake_clock,
    make_flow,
    receive,
    snapshot,
)
from jianyi_flow import (
    Actor,
    Flow,
    InvalidTransition,
    Outcome,
    Rating,
    Role,
    State,
    ValidationError,
    replay,
)
from jianyi_flow.domain.history import event_hash, seal, verify_events
from jianyi_flow.domain.model import Event, ReportForm, RewardTier
from jianyi_flow.domain.workflow import allowed_triggers

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EVALUATOR = Actor(id="judge-1", role=Role.EVALUATOR)
TICK_TRIGGERS = frozenset({"close_unrated", "flag_overdue"})
MAX_DAYS = 480
"""Keeps generated lifecycles (plus their longest deadlines) inside the calendar's covered years."""

Draw = Callable[[st.SearchStrategy[Any]], Any]
texts = st.sampled_from(["理由", "需进一步调研", "属个人诉求", "x" * 40, "包含 <b>标记</b> 和 'quotes'"])


def _decide(flow: Flow, sid: str, draw: Draw) -> None:
    outcome = draw(st.sampled_from(list(Outcome)))
    kwargs: dict[str, Any] = {}
    if outcome is Outcome.DECLINED or draw(st.booleans()):
        kwargs["reason"] = draw(texts)
    if outcome is Outcome.PARTIALLY_ADOPTED:
        kwargs["adopted_part"] = draw(texts)
    flow.decide(sid, UNIT, outcome=outcome, **kwargs)


COMMANDS: dict[str, Callable[[Flow, str, Draw], object]] = {
    "register": lambda f, sid, d: f.register(sid, OFFICE),
    "not_accept": lambda f, sid, d: f.not_accept(sid, OFFICE, reason=d(texts)),
    "transfer": lambda f, sid, d: f.transfer(
        sid, OFFICE, lead_unit=d(st.sampled_from([LEAD_UNIT, OTHER_UNIT])),
        co_units=d(st.sampled_from([(), (CO_UNIT,)])), note=d(st.none() | texts),
    ),
    "return_transfer": lambda f, sid, d: f.return_transfer(sid, UNIT, reason=d(texts)),
    "research": lambda f, sid, d: f.research(sid, UNIT, findings=d(texts)),
    "decide": _decide,
    "reply": lambda f, sid, d: f.reply(sid, UNIT, text=d(texts)),
    "rate": lambda f, sid, d: f.rate(sid, PROPOSER, rating=d(st.sampled_from(list(Rating))),
                                     comment=d(st.none() | texts)),
    "withdraw": lambda f, sid, d: f.withdraw(sid, PROPOSER, reason=d(st.none() | texts)),
    "reopen": lambda f, sid, d: f.reopen(sid, OFFICE, reason=d(texts)),
    "extend": lambda f, sid, d: f.extend(sid, OFFICE, days=d(st.integers(1, 32)), approver="王主任",
                                         reason=d(texts)),
    "report_upward": lambda f, sid, d: f.report_upward(sid, OFFICE, form=d(st.sampled_from(list(ReportForm))),
                                                       note=d(st.none() | texts)),
    "forward_to_city": lambda f, sid, d: f.forward_to_city(sid, OFFICE, note=d(st.none() | texts)),
    "evaluate": lambda f, sid, d: f.evaluate(sid, EVALUATOR, quality=d(st.integers(0, 10)),
                                             value=d(st.integers(0, 10)), effect=d(st.integers(0, 10)),
                                             evaluator="李评委"),
    "nominate_reward": lambda f, sid, d: f.nominate_reward(sid, EVALUATOR, tier=d(st.sampled_from(list(RewardTier)))),
    "record_adoption": lambda f, sid, d: f.record_adoption(sid, OFFICE, adopted_into=d(texts)),
    "mark_typical": lambda f, sid, d: f.mark_typical(sid, OFFICE, note=d(st.none() | texts)),
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
    assert shown == set(COMMANDS) | TICK_TRIGGERS


def run_lifecycles(flow: Flow, draw: Draw) -> list[str]:
    """Run a random legal lifecycle of one or more suggestions; returns their ids."""
    ids = [receive(flow).id for _ in range(draw(st.integers(1, 2)))]
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
            ids.append(receive(flow).id)
        else:
            sid = draw(st.sampled_from(ids))
            options = [t for t in allowed_triggers(flow.get(sid).state) if t not in TICK_TRIGGERS]
            if not options:
                continue
            command = draw(st.sampled_from([t for t in options for _ in range(WEIGHTS.get(t, 2))]))
            before = snapshot(flow, sid)
            try:
                COMMANDS[command](flow, sid, draw)
            except (InvalidTransition, ValidationError):
                # allowed by the machine, refused by the command's own rule: nothing written
                assert_unchanged(flow, sid, before)
    return ids


def check_history(flow: Flow, sid: str) -> list[Event]:
    events = flow.history(sid)
    row = flow.get(sid)
    assert replay(events) == row
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert row.version == len(events)
    assert events[0].kind == "receive" and events[0].from_state is None and events[0].prev_hash == ""
    for before, after in itertools.pairwise(events):
        assert after.from_state is before.to_state
        assert after.prev_hash == before.hash
        assert after.at >= before.at
    assert row.event_hash == events[-1].hash
    assert row.state is events[-1].to_state
    assert flow.verify_history(sid) == []
    for n, event in enumerate(events, start=1):
        prefix = replay(events[:n])
        assert prefix is not None
        assert (prefix.version, prefix.state) == (n, event.to_state)
    return events


@SETTINGS
@given(st.data())
def test_replay_of_any_lifecycle_is_the_stored_row(data: st.DataObject) -> None:
    flow = make_flow()
    for sid in run_lifecycles(flow, data.draw):
        check_history(flow, sid)


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
    flow = make_flow()
    sid = run_lifecycles(flow, data.draw)[0]
    events = check_history(flow, sid)
    row = flow.get(sid)
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
    """A suggestion that went the long way round: returned, reopened, extended, flagged, summarised."""
    flow = make_flow()
    s = drive_to(flow, State.RETURNED)
    flow.transfer(s.id, OFFICE, lead_unit=OTHER_UNIT)
    flow.extend(s.id, OFFICE, days=5, approver="王主任", reason="x")
    fake_clock(flow).advance(days=80)
    flow.tick()
    flow.research(s.id, UNIT, findings="调研")
    flow.decide(s.id, UNIT, outcome=Outcome.PARTIALLY_ADOPTED, adopted_part="第一条")
    flow.reply(s.id, UNIT, text="答复")
    flow.rate(s.id, PROPOSER, rating=Rating.DISSATISFIED)
    flow.reopen(s.id, OFFICE, reason="不满意")
    flow.research(s.id, UNIT, findings="再调研")
    flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED)
    flow.reply(s.id, UNIT, text="再答复")
    fake_clock(flow).advance(days=40)
    flow.tick()
    flow.evaluate(s.id, EVALUATOR, quality=9, value=8, effect=7, evaluator="李评委")
    flow.nominate_reward(s.id, EVALUATOR, tier=RewardTier.SECOND)
    flow.report_upward(s.id, OFFICE, form=ReportForm.ANALYSIS)
    flow.forward_to_city(s.id, OFFICE)
    flow.record_adoption(s.id, OFFICE, adopted_into="文件")
    flow.mark_typical(s.id, OFFICE)
    assert flow.get(s.id).state is State.UNRATED
    return flow, s.id


def test_rich_history_replays(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = check_history(flow, sid)
    kinds = [e.kind for e in events]
    assert {"return_transfer", "extend", "flag_overdue", "reopen", "close_unrated", "evaluate"} <= set(kinds)
    row = flow.get(sid)
    assert row.evaluation is not None and row.evaluation.total == 24
    assert (row.reward_tier, row.upward_reports, row.typical_case) == (RewardTier.SECOND, (ReportForm.ANALYSIS,),
                                                                         True)


def test_every_edit_of_every_event_is_detected(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.history(sid)
    row = flow.get(sid)
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
    events = flow.history(sid)
    row = flow.get(sid)
    for i in range(1, len(events)):
        problems = verify_events(sid, events[:i] + events[i + 1:], row)
        assert problems != [], f"deleting v{i + 1} went unnoticed"
    assert [p.problem for p in verify_events(sid, [], row)] == ["row has no history"]


def test_reordering_any_two_later_events_is_detected(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.history(sid)
    row = flow.get(sid)
    for i in range(1, len(events)):
        for j in range(i + 1, len(events)):
            swapped = list(events)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            problems = verify_events(sid, swapped, row)
            assert any("version out of order" in p.problem for p in problems)


# verify_events replays the (tampered) events to compare them with the row.  When the first
# event is gone or moved, the replay starts from an event that is not a 'receive' and
# Suggestion() raises TypeError: the verifier crashes instead of reporting the tampering.

def test_deleting_the_first_event_is_reported_not_raised(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.history(sid)
    problems = verify_events(sid, events[1:], flow.get(sid))
    assert any(p.version == 2 and "version out of order" in p.problem for p in problems)
    assert any(p.version == 2 and "prev_hash" in p.problem for p in problems)


def test_moving_the_first_event_is_reported_not_raised(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.history(sid)
    swapped = [events[1], events[0], *events[2:]]
    problems = verify_events(sid, swapped, flow.get(sid))
    assert any("version out of order" in p.problem for p in problems)


@pytest.mark.parametrize(
    "changes", [{"hacked": True}, {"due_at": "not a date"}, {"rating": "delighted"}], ids=["field", "date", "enum"]
)
def test_an_edit_the_replay_cannot_apply_is_reported_not_raised(
    rich_history: tuple[Flow, str], changes: dict[str, Any]
) -> None:
    """Tampered content that apply_event rejects must still come back as a HistoryProblem."""
    flow, sid = rich_history
    events = flow.history(sid)
    tampered = list(events)
    tampered[3] = attrs.evolve(events[3], changes={**events[3].changes, **changes})
    problems = verify_events(sid, tampered, flow.get(sid))
    assert any(p.version == 4 and "hash" in p.problem for p in problems)


def test_a_row_that_differs_from_its_history_is_detected(rich_history: tuple[Flow, str]) -> None:
    flow, sid = rich_history
    events = flow.history(sid)
    row = flow.get(sid)
    assert verify_events(sid, events, row) == []
    forged = attrs.evolve(row, typical_case=False)
    assert [p.problem for p in verify_events(sid, events, forged)] == ["row differs from the replay of its history"]


def test_verify_all_finds_the_one_tampered_suggestion_among_many() -> None:
    from jianyi_flow import MemoryStore
    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.simulation import CampaignSimulator

    store = MemoryStore()
    sim = CampaignSimulator(yongchuan_2024(), store, seed=2, suggestions=40)
    sim.run()
    assert sim.flow.verify_all() == []
    victim = "S0000007"
    events = store.history(victim)
    store._replace_event(victim, 1, attrs.evolve(events[1], reason="改过的理由"))
    problems = sim.flow.verify_all()
    assert {p.suggestion_id for p in problems} == {victim}
    assert any(p.version == 2 and "hash" in p.problem for p in problems)

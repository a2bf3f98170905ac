"""Issue 20 defects 7, 13 and 15, through Flow: permissions on by default, no event dated before
the last one, and no refusal that tells an actor a suggestion exists.

Each test whose docstring names a defect fails on the code before issue 20 (checked
against that code with the same scenario).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from helpers import (
    CO_UNIT,
    LEAD_UNIT,
    OFFICE,
    OFFICER,
    OTHER_PROPOSER,
    OTHER_UNIT_ACTOR,
    PROPOSER,
    START,
    UNIT,
    assert_unchanged,
    drive_to,
    fake_clock,
    make_clock,
    make_draft,
    make_flow,
    receive,
    shanghai,
    snapshot,
    stored,
    stored_history,
)
from jianyi_flow import (
    ALLOW_ALL,
    Actor,
    ClockWentBackwards,
    DuplicateSuggestion,
    Flow,
    JianyiFlowError,
    MemoryStore,
    NotFound,
    Outcome,
    PermissionDenied,
    PermissionTable,
    ResearchMethod,
    Role,
    State,
)
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.service.campaign_flow import make_flow as make_campaign_flow

MALLORY = Actor("wx_mallory", Role.PROPOSER, name="某人")
"""A proposer acting on a suggestion that is not theirs."""

Command = Callable[[Flow, str, Actor], object]
OFFICE_AND_UNIT_COMMANDS: dict[str, tuple[State, Command]] = {
    "register": (State.RECEIVED, lambda f, sid, a: f.register(sid, a)),
    "transfer": (State.REGISTERED, lambda f, sid, a: f.transfer(sid, a, lead_unit=LEAD_UNIT)),
    "research": (State.TRANSFERRED, lambda f, sid, a: f.research(sid, a, findings="调研",
                                                                 method=ResearchMethod.FORUM)),
    "decide": (State.RESEARCHED, lambda f, sid, a: f.decide(sid, a, outcome=Outcome.DECLINED, reason="不采纳")),
}


# --- defect 7: the permission table is on by default ------------------------------------------------


@pytest.mark.parametrize("command", sorted(OFFICE_AND_UNIT_COMMANDS))
def test_a_default_flow_refuses_a_proposer_handling_someone_elses_suggestion(command: str) -> None:
    """Defect 7: ``Flow(store, clock)`` ran without a permission guard, so a proposer could register,
    transfer, research and decide anybody's suggestion."""
    state, run = OFFICE_AND_UNIT_COMMANDS[command]
    flow = Flow(MemoryStore(), make_clock())
    s = drive_to(flow, state)
    before = snapshot(flow, s.id)
    with pytest.raises(NotFound):  # not theirs: as if it did not exist
        run(flow, s.id, MALLORY)
    with pytest.raises(PermissionDenied):  # their own: they see it, and are told they may not
        run(flow, s.id, PROPOSER)
    assert_unchanged(flow, s.id, before)


@pytest.mark.parametrize("command", sorted(OFFICE_AND_UNIT_COMMANDS))
def test_allow_all_is_the_named_opt_out_for_trusted_jobs(command: str) -> None:
    """Defect 7, the other half: running without the table is possible, but only by saying so."""
    state, run = OFFICE_AND_UNIT_COMMANDS[command]
    flow = Flow(MemoryStore(), make_clock(), permissions=ALLOW_ALL)
    s = drive_to(flow, state)
    run(flow, s.id, MALLORY)
    last = stored_history(flow, s.id)[-1]
    assert (last.kind, last.actor) == (command, MALLORY)


def test_a_campaign_flow_runs_under_the_default_table_too() -> None:
    """Defect 7 for ``make_flow(campaign, ...)``: the phase guard and the permission table, both."""
    campaign = yongchuan_2024()
    clock = make_clock(shanghai(2024, 9, 2, 9))
    flow = make_campaign_flow(campaign, MemoryStore(), clock)
    assert flow.permissions == PermissionTable.default()
    s = flow.receive(make_draft(area="A4", topic="T15"), PROPOSER)
    with pytest.raises(NotFound):
        flow.register(s.id, MALLORY)
    with pytest.raises(PermissionDenied):
        flow.register(s.id, PROPOSER)
    assert stored(flow, s.id).state is State.RECEIVED


def test_a_default_flow_refuses_a_proposer_filing_for_someone_else() -> None:
    """Defect 7 for receive: a proposer files under their own account only."""
    flow = Flow(MemoryStore(), make_clock())
    with pytest.raises(PermissionDenied):
        flow.receive(make_draft(), MALLORY)  # the draft's account is PROPOSER's
    assert flow.receive(make_draft(), PROPOSER).proposer.account == PROPOSER.id


# --- defect 13: no event dated before the suggestion's last one --------------------------------------


def test_a_clock_that_went_backwards_is_refused_and_nothing_is_written() -> None:
    """Defect 13: an event dated before the suggestion's previous event was written."""
    flow = make_flow()
    s = receive(flow)
    before = snapshot(flow, s.id)
    fake_clock(flow).set(START - dt.timedelta(hours=1))
    with pytest.raises(ClockWentBackwards) as caught:
        flow.register(s.id, OFFICE, idempotency_key="K")
    err = caught.value
    assert (err.suggestion_id, err.at, err.previous_at) == (s.id, START - dt.timedelta(hours=1), START)
    assert isinstance(err, JianyiFlowError)
    assert_unchanged(flow, s.id, before, keys=[(OFFICE, "K")])


def test_the_same_instant_is_not_backwards_and_one_microsecond_earlier_is() -> None:
    """Companion of defect 13: times are compared as instants, whatever their zone."""
    flow = make_flow()
    s = receive(flow)
    clock = fake_clock(flow)
    clock.set(START.astimezone(dt.UTC))  # the same instant, written in UTC
    assert flow.register(s.id, OFFICE).version == 2
    clock.set(START - dt.timedelta(microseconds=1))
    with pytest.raises(ClockWentBackwards):
        flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT)
    assert stored(flow, s.id).version == 2


@pytest.mark.parametrize("state", [State.TRANSFERRED, State.ADOPTED, State.REPLIED], ids=str)
def test_every_command_refuses_a_time_before_the_last_event(state: State) -> None:
    """Defect 13 on later steps: the check is Flow's, not one command's."""
    flow = make_flow()
    s = drive_to(flow, state)
    clock = fake_clock(flow)
    clock.advance(days=3)
    flow.report_upward(s.id, OFFICE, form="original")
    before = snapshot(flow, s.id)
    clock.set(clock.now() - dt.timedelta(days=1))
    commands: dict[State, Callable[[], object]] = {
        State.TRANSFERRED: lambda: flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM),
        State.ADOPTED: lambda: flow.reply(s.id, UNIT, text="答复", form="written"),
        State.REPLIED: lambda: flow.rate(s.id, PROPOSER, rating="satisfied"),
    }
    with pytest.raises(ClockWentBackwards):
        commands[state]()
    assert_unchanged(flow, s.id, before)


def test_tick_skips_a_suggestion_whose_last_event_is_later_than_its_time() -> None:
    """Defect 13 for the time-driven work: ``tick(at)`` writes no event before a row's last one."""
    flow = make_flow()
    s = receive(flow)  # registration due Thu 09-05
    fake_clock(flow).set(shanghai(2024, 9, 10, 9))
    flow.register(s.id, OFFICE)  # the latest event is on 09-10; routing is still due 09-05, so overdue
    before = snapshot(flow, s.id)
    assert flow.tick(shanghai(2024, 9, 6, 9)) == []
    assert_unchanged(flow, s.id, before)
    assert [e.kind for e in flow.tick(shanghai(2024, 9, 10, 10))] == ["flag_overdue"]


# --- defect 15: an unknown id and someone else's id are answered alike ------------------------------


OUTSIDERS: dict[str, Actor] = {
    "other_unit": OTHER_UNIT_ACTOR,
    "other_proposer": OTHER_PROPOSER,
    "other_officer": Actor("io-9", Role.INFORMATION_OFFICER, unit="street_xq"),
    "leadership": Actor("leader-1", Role.LEADERSHIP),
    "municipal_office": Actor("city-1", Role.MUNICIPAL_OFFICE),
    "evaluator": Actor("judge-1", Role.EVALUATOR),
    "unitless_unit": Actor("unit-9", Role.HANDLING_UNIT),
}
"""Actors none of whom may see a transferred, unreported suggestion of someone else."""

Probe = Callable[[Flow, str, Actor], object]
PROBES: dict[str, Probe] = {
    "get": lambda f, sid, a: f.get(sid, a),
    "history": lambda f, sid, a: f.history(sid, a),
    "available_commands": lambda f, sid, a: f.available_commands(a, sid),
    "research": lambda f, sid, a: f.research(sid, a, findings="调研", method=ResearchMethod.FORUM),
    "withdraw": lambda f, sid, a: f.withdraw(sid, a),
    "evaluate": lambda f, sid, a: f.evaluate(sid, a, quality=1, value=1, effect=1, evaluator="x"),
    "mark_typical": lambda f, sid, a: f.mark_typical(sid, a),
    "with_expected_version": lambda f, sid, a: f.research(sid, a, findings="调研", method=ResearchMethod.FORUM,
                                                          expected_version=99),
    "with_idempotency_key": lambda f, sid, a: f.withdraw(sid, a, idempotency_key="probe"),
}
"""Reads and commands an actor might use to learn whether an id exists."""


def _answer(run: Callable[[], object]) -> BaseException:
    with pytest.raises(JianyiFlowError) as caught:
        run()
    return caught.value


@pytest.mark.parametrize("probe", sorted(PROBES))
@pytest.mark.parametrize("who", sorted(OUTSIDERS))
def test_someone_elses_id_is_answered_like_an_unknown_id(who: str, probe: str) -> None:
    """Defect 15: an unknown id gave NotFound, someone else's PermissionDenied ("not visible"): an actor
    learned which ids exist.  Now both are the same error with the same message but for the id."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED, draft=make_draft(recommending_unit=None))
    unknown = "x" * len(s.id)
    actor, run = OUTSIDERS[who], PROBES[probe]
    before = snapshot(flow, s.id)
    theirs, nothing = _answer(lambda: run(flow, s.id, actor)), _answer(lambda: run(flow, unknown, actor))
    assert type(theirs) is type(nothing) is NotFound
    assert str(theirs).replace(s.id, "<id>") == str(nothing).replace(unknown, "<id>")
    assert json.dumps(theirs.to_dict(), ensure_ascii=False).replace(s.id, "<id>") == \
        json.dumps(nothing.to_dict(), ensure_ascii=False).replace(unknown, "<id>")
    assert_unchanged(flow, s.id, before, keys=[(actor, "probe")])


def test_an_actor_who_may_see_it_is_told_why_it_may_not_act() -> None:
    """Companion of defect 15: only actors who may see a suggestion get PermissionDenied, with a reason."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    co = Actor("unit-3", Role.HANDLING_UNIT, unit=CO_UNIT)
    with pytest.raises(PermissionDenied) as caught:
        flow.research(s.id, co, findings="调研", method=ResearchMethod.FORUM)
    assert "lead unit" in caught.value.reason
    filed = receive(flow, actor=OFFICER)
    with pytest.raises(PermissionDenied):
        flow.register(filed.id, OFFICER)  # the officer who submitted it sees it, and may not register it


def test_receive_with_a_chosen_id_does_not_tell_a_proposer_that_the_id_exists() -> None:
    flow = make_flow()
    theirs = drive_to(flow, State.REGISTERED)
    mine = make_draft()

    def outcome(sid: str) -> Any:
        try:
            flow.receive(mine, PROPOSER, suggestion_id=sid)
        except JianyiFlowError as exc:
            return type(exc)
        return "created"

    existing, fresh = outcome(theirs.id), outcome("y" * len(theirs.id))
    assert existing is not DuplicateSuggestion, "the answer says the id exists"
    assert existing == fresh

"""Every state and side path is reachable through Flow; every illegal command raises the typed error.

The (state, command) pairs are generated from :class:`State` × :data:`COMMANDS`, and the
expectation for each pair is read from :data:`jianyi_flow.domain.workflow.TRANSITIONS`, so a new
state or edge is covered without touching this file (and a new Flow command makes
``test_commands_list_is_complete`` fail until it is added here).

The matrix runs twice: as a trusted job (``permissions=ALLOW_ALL``), where only the
workflow and the commands' own rules can refuse, and under the default permission table
with the actor the table names for each command, where a suggestion the actor may not see
is :class:`NotFound` and anything else refused is refused by the workflow.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from helpers import (
    CO_UNIT,
    EVALUATOR,
    LEAD_UNIT,
    OFFICE,
    OTHER_UNIT,
    PATHS,
    PROPOSER,
    STEPS,
    UNIT,
    UNIT_HEAD,
    assert_unchanged,
    drain,
    drive_to,
    end_of,
    extend,
    fake_clock,
    make_flow,
    receive,
    shanghai,
    snapshot,
    stored,
    stored_history,
)
from jianyi_flow import (
    ALLOW_ALL,
    PROPOSER_PSEUDONYM,
    WORKFLOW,
    Actor,
    Flow,
    InvalidTransition,
    MemoryStore,
    NotFound,
    Outcome,
    PermissionDenied,
    Query,
    Rating,
    ReplyForm,
    ResearchMethod,
    Role,
    State,
    Step,
    Suggestion,
    ValidationError,
    WindowClosed,
    replay,
)
from jianyi_flow.domain.model import SYSTEM_ACTOR, TERMINAL_STATES, ReportForm, RewardTier
from jianyi_flow.domain.personal import pseudonymous_row
from jianyi_flow.domain.workflow import TRANSITIONS, allowed_triggers, edges, fire
from jianyi_flow.storage.base import Store

EDGES: dict[tuple[State, str], State | None] = {(src, trigger): dest for src, trigger, dest in edges()}
TICK_TRIGGERS = ("close_unrated", "flag_overdue")
"""Triggers no portal calls: ``tick`` runs them."""
RETIME_TRIGGERS = ("retime",)
"""Re-counting a provisional deadline on the official calendar: a system trigger, run by the calendar code."""
DECIDE_TRIGGERS = {"adopt", "adopt_partially", "decline"}
MODES = [pytest.param(ALLOW_ALL, id="allow_all"), pytest.param(None, id="default_table")]
"""The two ways the matrix runs: a trusted job, and under the default permission table."""


def _never(s: Suggestion) -> type[Exception] | None:
    return None


@attrs.frozen
class Command:
    """One Flow command with valid arguments, the actor the default table lets run it, and its trigger.

    ``prepare`` runs first where the edge exists (e.g. an evaluation before a reward
    nomination); ``refused_with`` names the error a legal edge still raises for a row that
    misses the command's own precondition (e.g. recording the adoption of a declined one).
    """

    name: str
    trigger: str
    actor: Actor
    run: Callable[[Flow, str, str | None], Suggestion]
    label: str = ""
    prepare: Callable[[Flow, str], object] | None = None
    refused_with: Callable[[Suggestion], type[Exception] | None] = _never

    @property
    def id(self) -> str:
        return self.label or self.name


def _decide(outcome: Outcome, **kwargs: Any) -> Callable[[Flow, str, str | None], Suggestion]:
    return lambda f, sid, key: f.decide(sid, UNIT, outcome=outcome, idempotency_key=key, **kwargs)


def _evaluate(f: Flow, sid: str, key: str | None = None) -> Suggestion:
    return f.evaluate(sid, EVALUATOR, quality=8, value=7, effect=9, evaluator="李评委", idempotency_key=key)


def _request(f: Flow, sid: str) -> Suggestion:
    return f.request_extension(sid, UNIT, days=10, reason="需补充调研")


def _not_adopted(s: Suggestion) -> type[Exception] | None:
    return None if s.outcome in (Outcome.ADOPTED, Outcome.PARTIALLY_ADOPTED) else InvalidTransition


COMMANDS: tuple[Command, ...] = (
    Command("register", "register", OFFICE, lambda f, sid, key: f.register(sid, OFFICE, idempotency_key=key)),
    Command("not_accept", "not_accept", OFFICE,
            lambda f, sid, key: f.not_accept(sid, OFFICE, reason="个人诉求", idempotency_key=key)),
    Command("transfer", "transfer", OFFICE,
            lambda f, sid, key: f.transfer(sid, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,),
                                           idempotency_key=key)),
    Command("object_transfer", "object_transfer", UNIT,
            lambda f, sid, key: f.object_transfer(sid, UNIT, reason="不属本单位职责", idempotency_key=key)),
    Command("accept_objection", "accept_objection", OFFICE,
            lambda f, sid, key: f.accept_objection(sid, OFFICE, note="异议成立", idempotency_key=key)),
    Command("reject_objection", "reject_objection", OFFICE,
            lambda f, sid, key: f.reject_objection(sid, OFFICE, reason="属本单位职责", idempotency_key=key)),
    Command("research", "research", UNIT,
            lambda f, sid, key: f.research(sid, UNIT, findings="调研", method=ResearchMethod.FORUM,
                                           idempotency_key=key)),
    Command("decide", "adopt", UNIT, _decide(Outcome.ADOPTED), label="decide-adopted"),
    Command("decide", "adopt_partially", UNIT, _decide(Outcome.PARTIALLY_ADOPTED, adopted_part="第一条"),
            label="decide-partially_adopted"),
    Command("decide", "decline", UNIT, _decide(Outcome.DECLINED, reason="条件不具备"), label="decide-declined"),
    Command("reply", "reply", UNIT,
            lambda f, sid, key: f.reply(sid, UNIT, text="答复内容", form=ReplyForm.PHONE, idempotency_key=key)),
    Command("rate", "rate", PROPOSER,
            lambda f, sid, key: f.rate(sid, PROPOSER, rating=Rating.SATISFIED, idempotency_key=key)),
    Command("withdraw", "withdraw", PROPOSER, lambda f, sid, key: f.withdraw(sid, PROPOSER, idempotency_key=key)),
    Command("reopen", "reopen", OFFICE,
            lambda f, sid, key: f.reopen(sid, OFFICE, reason="不满意", idempotency_key=key)),
    Command("request_extension", "request_extension", UNIT,
            lambda f, sid, key: f.request_extension(sid, UNIT, days=10, reason="需补充调研", idempotency_key=key)),
    Command("approve_extension", "approve_extension", UNIT_HEAD,
            lambda f, sid, key: f.approve_extension(sid, UNIT_HEAD, note="同意", idempotency_key=key),
            prepare=_request),
    Command("reject_extension", "reject_extension", UNIT_HEAD,
            lambda f, sid, key: f.reject_extension(sid, UNIT_HEAD, reason="理由不足", idempotency_key=key),
            prepare=_request),
    # reporting upward and the summary phase (internal: the state does not change)
    Command("report_upward", "report_upward", OFFICE,
            lambda f, sid, key: f.report_upward(sid, OFFICE, form=ReportForm.EXCERPT, note="摘报",
                                                idempotency_key=key)),
    Command("forward_to_city", "forward_to_city", OFFICE,
            lambda f, sid, key: f.forward_to_city(sid, OFFICE, idempotency_key=key)),
    Command("evaluate", "evaluate", EVALUATOR, _evaluate),
    Command("nominate_reward", "nominate_reward", EVALUATOR,
            lambda f, sid, key: f.nominate_reward(sid, EVALUATOR, tier=RewardTier.FIRST, idempotency_key=key),
            prepare=_evaluate, refused_with=_not_adopted),
    Command("record_adoption", "record_adoption", OFFICE,
            lambda f, sid, key: f.record_adoption(sid, OFFICE, adopted_into="区交通局〔2024〕3号文件",
                                                  idempotency_key=key),
            refused_with=_not_adopted),
    Command("mark_typical", "mark_typical", OFFICE,
            lambda f, sid, key: f.mark_typical(sid, OFFICE, note="典型案例", idempotency_key=key)),
)

_READERS = {"due_for", "get", "history", "list_suggestions", "overdue", "due_soon", "available_commands",
            "verify_history", "verify_all", "tick", "receive",
            "validate_draft", "calendar_health", "retime", "checkpoint", "migrate", "run_command",
            # personal data: not workflow edges (about the data, in every state; tests/test_personal_data.py)
            "erase_personal_data", "erase_expired", "vault_personal_data"}


# --- the lists themselves are complete ------------------------------------------------------------

def test_commands_list_is_complete() -> None:
    """Every public command of Flow is in COMMANDS (so every pair below includes it)."""
    public = {
        name for name, member in inspect.getmembers(Flow, inspect.isfunction) if not name.startswith("_")
    }
    assert public - _READERS == {c.name for c in COMMANDS}


def test_every_trigger_is_run_by_a_command_or_by_the_system() -> None:
    triggers = {t["trigger"] for t in TRANSITIONS}
    assert triggers == {c.trigger for c in COMMANDS} | set(TICK_TRIGGERS) | set(RETIME_TRIGGERS)
    assert set(WORKFLOW.machine.events) == triggers


def test_every_state_has_a_path_and_appears_in_the_machine() -> None:
    assert set(PATHS) == set(State)
    assert set(WORKFLOW.machine.states) == {s.value for s in State}
    touched = {src for src, _, _ in edges()} | {dest for _, _, dest in edges() if dest is not None}
    assert touched | {State.RECEIVED} == set(State)


@pytest.mark.parametrize("state", list(State), ids=str)
def test_every_state_is_reachable_through_flow(state: State) -> None:
    flow = make_flow()
    s = drive_to(flow, state)
    assert flow.get(s.id, OFFICE) == s
    assert s.state is state
    events = flow.history(s.id, OFFICE)
    assert events == stored_history(flow, s.id)
    assert [e.kind for e in events] == ["receive", *(
        "decide" if step in DECIDE_TRIGGERS else step for step in PATHS[state]
    )]
    assert replay(events) == pseudonymous_row(s)  # the vault holds the proposer's data
    assert flow.verify_history(s.id) == []
    assert s.is_terminal == (state in TERMINAL_STATES)


# --- the machine itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("state", list(State), ids=str)
@pytest.mark.parametrize("trigger", sorted({t["trigger"] for t in TRANSITIONS}))
def test_fire_follows_transitions(state: State, trigger: str) -> None:
    if (state, trigger) in EDGES:
        dest = EDGES[(state, trigger)]
        assert fire(trigger, state) is (state if dest is None else dest)
        shown = "decide" if trigger in DECIDE_TRIGGERS else trigger
        assert shown in allowed_triggers(state)
    else:
        with pytest.raises(InvalidTransition) as info:
            fire(trigger, state, "cmd")
        assert info.value.command == "cmd"
        assert info.value.state == state.value
        assert list(info.value.allowed) == allowed_triggers(state)


def test_fire_unknown_trigger_is_invalid_transition() -> None:
    with pytest.raises(InvalidTransition) as info:
        fire("no_such_trigger", State.RECEIVED)
    assert info.value.command == "no_such_trigger"
    assert info.value.state == "received"


def test_final_states_change_state_no_more() -> None:
    """No edge leaves a final state; rated leaves only by reopen.  (Internal summary-phase
    commands may still record events on rated and unrated suggestions.)"""
    for state in TERMINAL_STATES:
        assert [t for src, t, dest in edges() if src is state and dest not in (None, state)] == []
    assert [t for src, t, dest in edges() if src is State.RATED and dest is not None] == ["reopen"]
    for state in (State.NOT_ACCEPTED, State.WITHDRAWN):
        assert allowed_triggers(state) == []
        assert "nothing (final state)" in str(InvalidTransition("x", state.value, allowed_triggers(state)))


# --- every state × every command through Flow -------------------------------------------------------

def _sees(flow: Flow, sid: str, actor: Actor) -> bool:
    try:
        flow.get(sid, actor)
    except NotFound:
        return False
    return True


@pytest.mark.parametrize("permissions", MODES)
@pytest.mark.parametrize("state", list(State), ids=str)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.id)
def test_every_command_in_every_state(state: State, command: Command, permissions: Any) -> None:
    flow = make_flow(permissions=permissions)
    s = drive_to(flow, state)  # rated with 'dissatisfied', so the reopen edge is usable
    legal = (state, command.trigger) in EDGES
    if legal and command.prepare is not None:
        command.prepare(flow, s.id)
        s = stored(flow, s.id)
    before = snapshot(flow, s.id)
    key = f"key-{command.id}"
    visible = _sees(flow, s.id, command.actor)
    refusal = (command.refused_with(s) if legal else InvalidTransition) if visible else NotFound

    if refusal is None:
        dest = EDGES[(state, command.trigger)] or state
        after = command.run(flow, s.id, key)
        assert after.state is dest
        assert after == flow.get(s.id, command.actor)
        assert after.version == s.version + 1
        events = stored_history(flow, s.id)
        assert len(events) == len(before.history) + 1
        last = events[-1]
        assert (last.kind, last.from_state, last.to_state, last.version) == (command.name, state, dest, after.version)
        # the proposer acting on their own vaulted suggestion is recorded by a pseudonym
        proposer_self = command.actor.role is Role.PROPOSER and command.actor.id == s.proposer.account
        assert last.actor == (Actor(PROPOSER_PSEUDONYM, Role.PROPOSER) if proposer_self else command.actor)
        record = flow.store.idempotency(command.actor.key, key)
        assert record is not None
        assert (record.command, record.suggestion_id, record.version) == (command.name, s.id, after.version)
        assert replay(events) == pseudonymous_row(stored(flow, s.id))
        assert flow.verify_history(s.id) == []
    else:
        with pytest.raises(refusal) as info:
            command.run(flow, s.id, key)
        err = info.value
        if isinstance(err, InvalidTransition):
            assert err.command == command.name
            assert err.state == state.value
            assert repr(command.name) in str(err)
            assert repr(state.value) in str(err)
            if err.detail is None:  # refused by the workflow, not by the command's own rule
                assert list(err.allowed) == allowed_triggers(state)
        assert_unchanged(flow, s.id, before, keys=[(command.actor, key)])


def test_the_default_table_hides_a_suggestion_from_a_unit_before_it_is_transferred() -> None:
    """The matrix above under the default table: a unit asked to research a registered suggestion
    learns nothing about it (NotFound), while a trusted job is told the state forbids it."""
    trusted, guarded = make_flow(permissions=ALLOW_ALL), make_flow()
    for flow, error in ((trusted, InvalidTransition), (guarded, NotFound)):
        s = drive_to(flow, State.REGISTERED)
        with pytest.raises(error):
            flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM)


@pytest.mark.parametrize("state", list(State), ids=str)
def test_tick_in_every_state(state: State) -> None:
    """The tick-driven edges: close_unrated from replied, flag_overdue from the other open states."""
    flow = make_flow()
    s = drive_to(flow, state)
    before = snapshot(flow, s.id)
    clock = fake_clock(flow)
    clock.set((s.due_at or clock.now()) + dt.timedelta(days=1))
    expected = [t for t in TICK_TRIGGERS if (state, t) in EDGES][:1]

    written = flow.tick()

    assert [e.kind for e in written] == expected
    if not expected:
        assert_unchanged(flow, s.id, before)
        return
    (event,) = written
    dest = EDGES[(state, expected[0])] or state
    assert event == stored_history(flow, s.id)[-1]
    assert (event.from_state, event.to_state, event.actor) == (state, dest, SYSTEM_ACTOR)
    assert stored(flow, s.id).state is dest
    assert flow.tick() == []  # idempotent


# --- side paths -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_not_accept_needs_a_reason(reason: str) -> None:
    flow = make_flow()
    s = receive(flow)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.not_accept(s.id, OFFICE, reason=reason)
    assert info.value.field == "reason"
    assert_unchanged(flow, s.id, before)


def test_not_accept_closes_and_tells_the_proposer() -> None:
    flow = make_flow()
    s = receive(flow)
    drain(flow.store)
    fake_clock(flow).advance(hours=2)
    out = flow.not_accept(s.id, OFFICE, reason="属个人诉求")
    assert out.state is State.NOT_ACCEPTED
    assert (out.due_at, out.due_step, out.closed_at) == (None, None, flow.clock.now())
    assert stored_history(flow, s.id)[-1].reason == "属个人诉求"
    assert [m.recipient for m in drain(flow.store)] == [f"proposer:{s.id}"]


@pytest.mark.parametrize("state", [State.RECEIVED, State.REGISTERED, State.TRANSFERRED, State.RESEARCHED,
                                   State.OBJECTED, State.RETURNED])
def test_withdraw_before_a_decision(state: State) -> None:
    flow = make_flow()
    s = drive_to(flow, state)
    out = flow.withdraw(s.id, PROPOSER, reason="已自行解决")
    assert out.state is State.WITHDRAWN
    assert out.due_at is None and out.closed_at is not None


@pytest.mark.parametrize("state", [State.ADOPTED, State.PARTIALLY_ADOPTED, State.DECLINED, State.REPLIED,
                                   State.RATED, State.UNRATED])
def test_withdraw_refused_after_a_decision(state: State) -> None:
    flow = make_flow()
    s = drive_to(flow, state)
    before = snapshot(flow, s.id)
    with pytest.raises(InvalidTransition) as info:
        flow.withdraw(s.id, PROPOSER)
    assert (info.value.command, info.value.state) == ("withdraw", state.value)
    assert_unchanged(flow, s.id, before)


# --- the misroute objection (信访工作条例 Art. 23): the unit objects, the office decides --------------

def test_an_objection_waits_for_the_office_and_the_office_s_routing_period_is_due() -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    assert (s.lead_unit, s.co_units) == (LEAD_UNIT, (CO_UNIT,))
    drain(flow.store)
    clock = fake_clock(flow)
    clock.set(shanghai(2024, 8, 23, 10))  # Friday

    objected = flow.object_transfer(s.id, UNIT, reason="不属本单位职责")
    assert objected.state is State.OBJECTED
    assert (objected.objection_reason, objected.objection_due_at, objected.lead_unit) == (
        "不属本单位职责", None, LEAD_UNIT)
    # until the office decides, its own 15-day routing period runs: 08-23 + 15 = Sat 09-07 -> Mon 09-09
    assert (objected.due_step, objected.due_at) == (Step.REGISTER, end_of(dt.date(2024, 9, 9)))
    assert [m.recipient for m in drain(flow.store)] == ["office"]
    assert stored_history(flow, s.id)[-1].reason == "不属本单位职责"


def test_accept_objection_returns_it_then_transfer_again_to_another_unit() -> None:
    flow = make_flow()
    s = drive_to(flow, State.OBJECTED)
    drain(flow.store)
    clock = fake_clock(flow)
    clock.set(shanghai(2024, 8, 23, 10))  # Friday

    back = flow.accept_objection(s.id, OFFICE, note="核实属实")
    assert back.state is State.RETURNED
    assert (back.lead_unit, back.co_units, back.objection_due_at, back.objection_reason, back.return_count) == (
        None, (), None, None, 1)
    # routing is due again like a fresh registration: 08-23 + 15 = 09-07, a Saturday -> Monday 09-09
    assert (back.due_step, back.due_at) == (Step.REGISTER, end_of(dt.date(2024, 9, 9)))
    assert [m.recipient for m in drain(flow.store)] == [f"unit:{LEAD_UNIT}", "office"]

    again = flow.transfer(s.id, OFFICE, lead_unit=OTHER_UNIT)
    assert again.state is State.TRANSFERRED
    assert (again.lead_unit, again.co_units, again.return_count) == (OTHER_UNIT, (), 1)
    # a new objection window for the new unit: Fri 08-23 + 5 working days = Fri 08-30
    assert again.objection_due_at == end_of(dt.date(2024, 8, 30))
    assert [m.recipient for m in drain(flow.store)] == [f"unit:{OTHER_UNIT}"]
    assert flow.verify_history(s.id) == []


def test_reject_objection_keeps_the_unit_and_restarts_its_research_period() -> None:
    flow = make_flow()
    s = drive_to(flow, State.OBJECTED)
    drain(flow.store)
    fake_clock(flow).set(shanghai(2024, 8, 26, 9))  # Monday

    kept = flow.reject_objection(s.id, OFFICE, reason="经核实属交通局职责")
    assert kept.state is State.TRANSFERRED
    assert (kept.lead_unit, kept.co_units, kept.objection_reason, kept.return_count) == (
        LEAD_UNIT, (CO_UNIT,), None, 0)
    # research counted from the refusal: 08-26 + 60 = Fri 10-25
    assert (kept.due_step, kept.due_at) == (Step.RESEARCH, end_of(dt.date(2024, 10, 25)))
    assert [m.recipient for m in drain(flow.store)] == [f"unit:{LEAD_UNIT}"]
    assert stored_history(flow, s.id)[-1].reason == "经核实属交通局职责"
    # one objection per transfer: the window is spent
    before = snapshot(flow, s.id)
    with pytest.raises(InvalidTransition) as info:
        flow.object_transfer(s.id, UNIT, reason="仍不属本单位职责")
    assert (info.value.command, info.value.state) == ("object_transfer", "transferred")
    assert info.value.detail is not None
    assert_unchanged(flow, s.id, before)


def _transferred_on_friday(flow: Flow) -> Suggestion:
    s = drive_to(flow, State.REGISTERED)
    fake_clock(flow).set(shanghai(2024, 8, 23, 10))  # Friday 2024-08-23
    return flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT)


def test_objection_window_is_five_working_days_across_the_weekend() -> None:
    # Transferred Fri 08-23.  Working days after it: Mon 26, Tue 27, Wed 28, Thu 29, Fri 30
    # (Sat 24 / Sun 25 do not count).  The window ends at the end of Fri 08-30.
    flow = make_flow()
    s = _transferred_on_friday(flow)
    assert s.objection_due_at == end_of(dt.date(2024, 8, 30))
    fake_clock(flow).set(shanghai(2024, 8, 30, 23, 59, 59))
    assert flow.object_transfer(s.id, UNIT, reason="不属本单位职责").state is State.OBJECTED


def test_an_objection_after_the_window_is_refused_as_a_closed_window() -> None:
    """A time-window refusal is its own error class (WindowClosed), not a ValidationError on a field."""
    flow = make_flow()
    s = _transferred_on_friday(flow)
    before = snapshot(flow, s.id)
    fake_clock(flow).set(shanghai(2024, 8, 31, 0, 0, 0))  # Saturday, first instant after the window
    with pytest.raises(WindowClosed) as info:
        flow.object_transfer(s.id, UNIT, reason="不属本单位职责")
    assert (info.value.command, info.value.window, info.value.closed_at) == (
        "object_transfer", "objection", end_of(dt.date(2024, 8, 30)))
    assert not isinstance(info.value, ValidationError)
    assert_unchanged(flow, s.id, before)


def test_an_objection_needs_a_reason() -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.object_transfer(s.id, UNIT, reason=" ")
    assert info.value.field == "reason"
    assert_unchanged(flow, s.id, before)
    objected = drive_to(flow, State.OBJECTED)
    before = snapshot(flow, objected.id)
    with pytest.raises(ValidationError) as info:
        flow.reject_objection(objected.id, OFFICE, reason="")
    assert info.value.field == "reason"
    assert_unchanged(flow, objected.id, before)


def test_a_reopened_suggestion_cannot_be_objected_to_as_misrouted() -> None:
    """The Art. 23 objection window belongs to a fresh transfer; a reopen hands it back to the same unit."""
    flow = make_flow()
    s = drive_to(flow, State.RATED, rating=Rating.DISSATISFIED)
    s = flow.reopen(s.id, OFFICE, reason="不满意")
    assert s.state is State.TRANSFERRED and s.objection_due_at is None
    before = snapshot(flow, s.id)
    with pytest.raises(InvalidTransition) as info:
        flow.object_transfer(s.id, UNIT, reason="不属本单位职责")
    assert (info.value.command, info.value.state) == ("object_transfer", "transferred")
    assert "fresh transfer" in str(info.value)
    assert_unchanged(flow, s.id, before)


def test_only_the_lead_unit_objects_and_only_the_office_decides() -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    co = Actor("unit-3", "handling_unit", unit=CO_UNIT)
    before = snapshot(flow, s.id)
    with pytest.raises(PermissionDenied):
        flow.object_transfer(s.id, co, reason="不属本单位职责")
    flow.object_transfer(s.id, UNIT, reason="不属本单位职责")
    with pytest.raises(PermissionDenied):
        flow.accept_objection(s.id, UNIT)
    with pytest.raises(PermissionDenied):
        flow.reject_objection(s.id, UNIT_HEAD, reason="x")
    assert stored(flow, s.id).version == before.row.version + 1


# --- reopen -----------------------------------------------------------------------------------------

def test_reopen_after_dissatisfied_then_handle_again_then_no_second_reopen() -> None:
    flow = make_flow()
    s = drive_to(flow, State.RATED, rating=Rating.DISSATISFIED)
    assert s.closed_at is not None
    drain(flow.store)
    clock = fake_clock(flow)
    clock.set(shanghai(2024, 9, 2, 9))  # Monday

    again = flow.reopen(s.id, OFFICE, reason="建议人不满意")
    assert again.state is State.TRANSFERRED
    assert again.reopen_count == 1
    assert again.lead_unit == LEAD_UNIT
    cleared = (again.rating, again.rating_comment, again.outcome, again.outcome_reason, again.adopted_part,
               again.reply, again.replied_at, again.closed_at)
    assert cleared == (None,) * 8
    # research due again: 09-02 + 60 = 11-01 (a Friday, a working day)
    assert (again.due_step, again.due_at, again.extended) == (Step.RESEARCH, end_of(dt.date(2024, 11, 1)), False)
    assert [m.recipient for m in drain(flow.store)] == [f"unit:{LEAD_UNIT}"]

    for step in ("research", "decline", "reply"):
        STEPS[step](flow, s.id)
    rated = flow.rate(s.id, PROPOSER, rating=Rating.DISSATISFIED, comment="仍不满意")
    assert rated.state is State.RATED and rated.reopen_count == 1

    before = snapshot(flow, s.id)
    with pytest.raises(InvalidTransition) as info:
        flow.reopen(s.id, OFFICE, reason="再次不满意")
    err = info.value
    assert (err.command, err.state) == ("reopen", "rated")
    assert "'reopen'" in str(err) and "'rated'" in str(err)
    assert_unchanged(flow, s.id, before)
    assert flow.verify_history(s.id) == []


@pytest.mark.parametrize("rating", [Rating.SATISFIED, Rating.BASICALLY_SATISFIED])
def test_reopen_refused_unless_dissatisfied(rating: Rating) -> None:
    flow = make_flow()
    s = drive_to(flow, State.RATED, rating=rating)
    before = snapshot(flow, s.id)
    with pytest.raises(InvalidTransition) as info:
        flow.reopen(s.id, OFFICE, reason="想重新办理")
    assert (info.value.command, info.value.state) == ("reopen", "rated")
    assert_unchanged(flow, s.id, before)


def test_reopen_needs_a_reason() -> None:
    flow = make_flow()
    s = drive_to(flow, State.RATED)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.reopen(s.id, OFFICE, reason="")
    assert info.value.field == "reason"
    assert_unchanged(flow, s.id, before)


def test_rating_dissatisfied_notifies_the_lead_unit_and_satisfied_notifies_nobody() -> None:
    flow = make_flow()
    unhappy = drive_to(flow, State.REPLIED)
    happy = drive_to(flow, State.REPLIED)
    drain(flow.store)
    flow.rate(happy.id, PROPOSER, rating="satisfied")
    assert drain(flow.store) == []
    flow.rate(unhappy.id, PROPOSER, rating=Rating.DISSATISFIED)
    assert [(m.topic, m.recipient) for m in drain(flow.store)] == [("rate", f"unit:{LEAD_UNIT}")]
    assert stored(flow, happy.id).rating is Rating.SATISFIED


def test_rate_refuses_an_unknown_rating() -> None:
    flow = make_flow()
    s = drive_to(flow, State.REPLIED)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.rate(s.id, PROPOSER, rating="great")
    assert info.value.field == "rating"
    assert_unchanged(flow, s.id, before)


@pytest.mark.parametrize(
    ("outcome", "kwargs", "field"),
    [
        (Outcome.DECLINED, {}, "reason"),
        (Outcome.DECLINED, {"reason": "  "}, "reason"),
        (Outcome.PARTIALLY_ADOPTED, {}, "adopted_part"),
        (Outcome.PARTIALLY_ADOPTED, {"adopted_part": ""}, "adopted_part"),
        (Outcome.ADOPTED, {"adopted_part": "第一条"}, "adopted_part"),
        (Outcome.DECLINED, {"reason": "x", "adopted_part": "第一条"}, "adopted_part"),
        ("maybe", {}, "outcome"),
    ],
)
def test_decide_validation(outcome: Any, kwargs: dict[str, Any], field: str) -> None:
    flow = make_flow()
    s = drive_to(flow, State.RESEARCHED)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.decide(s.id, UNIT, outcome=outcome, **kwargs)
    assert info.value.field == field
    assert_unchanged(flow, s.id, before)


def test_decide_records_outcome_reason_and_part() -> None:
    flow = make_flow()
    a = drive_to(flow, State.RESEARCHED)
    b = drive_to(flow, State.RESEARCHED)
    declined = flow.decide(a.id, UNIT, outcome="declined", reason="条件不具备")
    assert (declined.state, declined.outcome, declined.outcome_reason) == (
        State.DECLINED, Outcome.DECLINED, "条件不具备")
    assert stored_history(flow, a.id)[-1].payload == {}
    partial = flow.decide(b.id, UNIT, outcome=Outcome.PARTIALLY_ADOPTED, adopted_part="加密班次")
    assert (partial.state, partial.adopted_part, partial.outcome_reason) == (
        State.PARTIALLY_ADOPTED, "加密班次", None)


def test_research_and_reply_record_how() -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    r = flow.research(s.id, UNIT, findings="召开听证会", method="hearing")
    assert (r.research_method, r.research_notes) == (ResearchMethod.HEARING, "召开听证会")
    flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED)
    replied = flow.reply(s.id, UNIT, text="已采纳", form="sms")
    assert replied.reply_form is ReplyForm.SMS
    for bad, field in ((lambda: flow.research(drive_to(flow, State.TRANSFERRED).id, UNIT, findings="x",
                                              method="séance"), "method"),
                       (lambda: flow.reply(drive_to(flow, State.ADOPTED).id, UNIT, text="x", form="pigeon"),
                        "form")):
        with pytest.raises(ValidationError) as info:
            bad()
        assert info.value.field == field


# --- extensions: the lead unit asks, its head decides ----------------------------------------------

def test_an_extension_is_requested_by_the_unit_and_approved_by_its_head_once_per_step() -> None:
    flow = make_flow()
    s = drive_to(flow, State.ADOPTED)  # decided Wed 08-21: reply due 08-21 + 15 = Thu 09-05
    assert s.due_at == end_of(dt.date(2024, 9, 5))
    drain(flow.store)
    asked = flow.request_extension(s.id, UNIT, days=10, reason="需会商")
    assert asked.due_at == s.due_at and not asked.extended  # nothing moves until the head approves
    assert asked.extension_request is not None
    assert (asked.extension_request.days, asked.extension_request.reason,
            asked.extension_request.requested_by) == (10, "需会商", UNIT.key)
    requested = stored_history(flow, s.id)[-1]
    assert (requested.kind, requested.payload, requested.reason) == ("request_extension", {"days": 10}, "需会商")

    out = flow.approve_extension(s.id, UNIT_HEAD, note="同意")
    # 09-05 + 10 = Sun 09-15, in the Mid-Autumn holiday (09-15..09-17): moves to Wed 09-18
    assert (out.due_at, out.extended, out.extension_days, out.extension_request, out.state, out.due_step) == (
        end_of(dt.date(2024, 9, 18)), True, 10, None, State.ADOPTED, Step.REPLY)
    event = stored_history(flow, s.id)[-1]
    assert (event.kind, event.from_state, event.to_state) == ("approve_extension", State.ADOPTED, State.ADOPTED)
    assert event.payload == {"days": 10, "approver": UNIT_HEAD.key}
    assert event.reason == "同意"
    assert sorted(m.recipient for m in drain(flow.store)) == sorted([f"proposer:{s.id}", f"unit:{LEAD_UNIT}"])

    before = snapshot(flow, s.id)
    with pytest.raises(InvalidTransition) as info:
        flow.request_extension(s.id, UNIT, days=1, reason="再延一天")
    assert (info.value.command, info.value.state) == ("request_extension", "adopted")
    assert "already extended" in str(info.value)
    assert_unchanged(flow, s.id, before)

    # the reply step is a new step: it may be extended once again, by up to 30 days
    replied = flow.reply(s.id, UNIT, text="已采纳", form=ReplyForm.WRITTEN)
    assert replied.extended is False
    # replied Wed 08-21: rating window 08-21 + 30 = Fri 09-20; + 30 more = Sun 10-20 -> Mon 10-21
    assert replied.due_at == end_of(dt.date(2024, 9, 20))
    with pytest.raises(InvalidTransition):  # the rating window is the proposer's, not the unit's
        flow.request_extension(s.id, UNIT, days=30, reason="x")


def test_an_extension_of_the_reply_step_moves_it_by_up_to_30_days() -> None:
    flow = make_flow()
    s = drive_to(flow, State.ADOPTED)
    fake_clock(flow).set(shanghai(2024, 9, 2, 9))
    assert extend(flow, s.id, 30).due_at == end_of(dt.date(2024, 10, 8))  # 09-05 + 30 = Sat 10-05 -> Tue 10-08


def test_a_refused_extension_leaves_the_deadline_and_may_be_asked_again() -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    drain(flow.store)
    flow.request_extension(s.id, UNIT, days=5, reason="需会商")
    before_pending = snapshot(flow, s.id)
    with pytest.raises(InvalidTransition) as info:  # one request at a time
        flow.request_extension(s.id, UNIT, days=6, reason="再多一天")
    assert "waiting" in str(info.value)
    assert_unchanged(flow, s.id, before_pending)
    out = flow.reject_extension(s.id, UNIT_HEAD, reason="理由不足")
    assert (out.due_at, out.extended, out.extension_request) == (s.due_at, False, None)
    assert [m.recipient for m in drain(flow.store)] == [f"unit:{LEAD_UNIT}"]
    for command in (lambda: flow.approve_extension(s.id, UNIT_HEAD),
                    lambda: flow.reject_extension(s.id, UNIT_HEAD, reason="x")):
        with pytest.raises(InvalidTransition) as info:
            command()
        assert "no extension request" in str(info.value)
    assert extend(flow, s.id, 5).extended


def test_registration_is_never_extended() -> None:
    """信访工作条例 Art. 22 allows no extension of the 15 days to register and route."""
    flow = make_flow()
    for state in (State.RECEIVED, State.REGISTERED, State.RETURNED, State.OBJECTED):
        s = drive_to(flow, state)
        with pytest.raises((InvalidTransition, NotFound)):  # the unit may not even see it before the transfer
            flow.request_extension(s.id, UNIT, days=5, reason="x")
        trusted = make_flow(flow.store, fake_clock(flow), permissions=ALLOW_ALL)
        with pytest.raises(InvalidTransition):
            trusted.request_extension(s.id, UNIT, days=5, reason="x")


def test_the_office_no_longer_extends_and_the_unit_cannot_approve_its_own_request() -> None:
    """The office-only ``extend`` is gone: the unit asks, the head of that unit decides (default table)."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    before = snapshot(flow, s.id)
    with pytest.raises(PermissionDenied):
        flow.request_extension(s.id, OFFICE, days=5, reason="x")
    flow.request_extension(s.id, UNIT, days=5, reason="x")
    for approver in (UNIT, OFFICE, Actor("head-9", "handling_unit_head", unit=CO_UNIT)):
        with pytest.raises(PermissionDenied):
            flow.approve_extension(s.id, approver)
    assert stored(flow, s.id).version == before.row.version + 1
    assert flow.approve_extension(s.id, UNIT_HEAD).extended


def test_extend_within_a_step_survives_research() -> None:
    """research keeps the research deadline, so an extension in transferred counts for researched."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    extend(flow, s.id, 5)
    STEPS["research"](flow, s.id)
    with pytest.raises(InvalidTransition):
        flow.request_extension(s.id, UNIT, days=5, reason="x")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": 31}, "days"),
        ({"days": 0}, "days"),
        ({"days": -3}, "days"),
        ({"days": True}, "days"),
        ({"days": 2.5}, "days"),
        ({"days": "10"}, "days"),
        ({"reason": ""}, "reason"),
        ({"reason": " "}, "reason"),
    ],
)
def test_extension_request_validation(kwargs: dict[str, Any], field: str) -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    before = snapshot(flow, s.id)
    args: dict[str, Any] = {"days": 10, "reason": "需会商", **kwargs}
    with pytest.raises(ValidationError) as info:
        flow.request_extension(s.id, UNIT, **args)
    assert info.value.field == field
    assert_unchanged(flow, s.id, before)


# --- tick ------------------------------------------------------------------------------------------

def test_tick_closes_an_unrated_reply_after_the_rating_window() -> None:
    flow = make_flow()
    s = drive_to(flow, State.REPLIED)  # replied Wed 08-21: rating window ends Fri 09-20
    assert s.due_at == end_of(dt.date(2024, 9, 20))
    before = snapshot(flow, s.id)

    assert flow.tick(shanghai(2024, 9, 20, 23, 59, 59)) == []
    assert_unchanged(flow, s.id, before)

    at = shanghai(2024, 9, 21, 0, 0, 0)
    (event,) = flow.tick(at)
    closed = stored(flow, s.id)
    assert closed.state is State.UNRATED
    assert closed.rating is None and closed.rating is not Rating.SATISFIED
    assert (closed.closed_at, closed.due_at, closed.due_step) == (at, None, None)
    assert (event.kind, event.from_state, event.to_state, event.actor, event.at) == (
        "close_unrated", State.REPLIED, State.UNRATED, SYSTEM_ACTOR, at)

    after_first = snapshot(flow, s.id)
    assert flow.tick(at) == []
    assert flow.tick(at + dt.timedelta(days=100)) == []
    assert_unchanged(flow, s.id, after_first)

    fake_clock(flow).set(at)
    with pytest.raises(InvalidTransition) as info:
        flow.rate(s.id, PROPOSER, rating=Rating.SATISFIED)
    assert info.value.state == "unrated"


def test_tick_flags_overdue_once_per_due_time() -> None:
    flow = make_flow()
    s = receive(flow)  # received Wed 08-21: registration due Thu 09-05
    assert s.due_at == end_of(dt.date(2024, 9, 5))
    drain(flow.store)

    assert flow.tick(end_of(dt.date(2024, 9, 5))) == []  # due at that instant, not past it
    at = shanghai(2024, 9, 6, 9)
    (flag,) = flow.tick(at)
    assert (flag.kind, flag.from_state, flag.to_state, flag.at) == ("flag_overdue", State.RECEIVED,
                                                                     State.RECEIVED, at)
    assert flag.payload == {"due_step": "register"}
    row = stored(flow, s.id)
    assert row.overdue_flagged_at == s.due_at
    assert (row.state, row.due_at) == (State.RECEIVED, s.due_at)
    assert [(m.topic, m.recipient) for m in drain(flow.store)] == [("flag_overdue", "office")]

    flagged = snapshot(flow, s.id)
    assert flow.tick(at) == []
    assert flow.tick(shanghai(2024, 9, 30, 9)) == []
    assert_unchanged(flow, s.id, flagged)

    # a new due time is flagged again (once): transfer -> research due Mon 10-21 (10-20 is a Sunday)
    fake_clock(flow).set(shanghai(2024, 9, 6, 10))
    flow.register(s.id, OFFICE)
    moved = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT)
    # transferred Fri 09-06: 09-06 + 60 = Tue 11-05
    assert moved.due_at == end_of(dt.date(2024, 11, 5))
    drain(flow.store)
    assert flow.tick(shanghai(2024, 11, 5, 12)) == []
    (again,) = flow.tick(shanghai(2024, 11, 6, 0))
    assert again.payload == {"due_step": "research"}
    assert stored(flow, s.id).overdue_flagged_at == moved.due_at
    assert [m.recipient for m in drain(flow.store)] == [f"unit:{LEAD_UNIT}"]
    assert flow.tick(shanghai(2024, 11, 7, 0)) == []

    # extending moves the due time: once it passes, one more flag
    fake_clock(flow).set(shanghai(2024, 11, 7, 9))
    ext = extend(flow, s.id, 3)
    assert ext.due_at == end_of(dt.date(2024, 11, 8))  # 11-05 + 3 = Fri 11-08
    assert flow.tick(shanghai(2024, 11, 8, 23)) == []
    assert [e.kind for e in flow.tick(shanghai(2024, 11, 9, 0))] == ["flag_overdue"]
    assert flow.tick(shanghai(2024, 11, 9, 1)) == []
    assert flow.verify_history(s.id) == []


def test_tick_handles_many_suggestions_and_leaves_closed_ones_alone() -> None:
    flow = make_flow()
    open_ids = [drive_to(flow, State.RECEIVED).id for _ in range(3)]
    replied = drive_to(flow, State.REPLIED).id
    closed = drive_to(flow, State.WITHDRAWN).id
    written = flow.tick(shanghai(2024, 12, 31))
    assert sorted((e.suggestion_id, e.kind) for e in written) == sorted(
        [(sid, "flag_overdue") for sid in open_ids] + [(replied, "close_unrated")]
    )
    assert len(stored_history(flow, closed)) == 2
    assert flow.tick(shanghai(2024, 12, 31)) == []


class _QueryBudget:
    """A store that fails loudly instead of letting a looping caller hang the test run."""

    def __init__(self, inner: Store, budget: int) -> None:
        self.inner = inner
        self.budget = budget

    def query(self, query: Query) -> list[Suggestion]:
        self.budget -= 1
        if self.budget < 0:
            raise AssertionError("tick kept querying the same rows: it does not terminate")
        return self.inner.query(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize(("rows", "batch"), [(1, 1), (2, 1), (3, 2)])
def test_tick_terminates_when_a_batch_is_full_of_rows_with_one_due_time(rows: int, batch: int) -> None:
    """Suggestions received the same day share a due time (end of day).  tick pages with
    ``due_after=<last due time>`` (inclusive) and flag_overdue leaves ``due_at`` unchanged,
    so a full batch of already-flagged rows with one due time is fetched again forever."""
    inner = MemoryStore()
    flow = make_flow(store=_QueryBudget(inner, budget=50))  # type: ignore[arg-type]
    ids = [receive(flow).id for _ in range(rows)]
    written = flow.tick(shanghai(2024, 9, 6), batch=batch)
    assert sorted(e.suggestion_id for e in written) == ids
    assert flow.tick(shanghai(2024, 9, 6), batch=batch) == []


def test_tick_refuses_a_naive_time() -> None:
    flow = make_flow()
    with pytest.raises(ValidationError) as info:
        flow.tick(dt.datetime(2024, 9, 6))
    assert info.value.field == "now"

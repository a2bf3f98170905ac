"""``Flow.available_commands`` (issue 23 item 2) says exactly what running the commands would do.

For a matrix of situations — every state, a pending extension, an evaluated adoption, a
suggestion reported upward, one filed by an information officer or recommended by a unit —
× actors of every role (involved or not) × moments (the implementation phase, after the
objection window, the summary phase, after the campaign), the answer is checked by
*executing* every command with valid arguments:

* every command offered runs (one new event, by that actor);
* every command listed as unavailable raises exactly the error it carries (same class, same
  message) and writes nothing;
* every command left out is one the actor's role may never run: it raises PermissionDenied (or
  PhaseClosed: the campaign's phases are checked before the permission table);
* an actor who may not see the suggestion is told NotFound, and so is every command it tries.

The flow runs under the default permission table and the Yongchuan 2024 campaign's phase
guard, so campaign phases, the permission table, the workflow and the commands' own rules
(windows, "once only"...) all take part.  One source of truth: nothing here restates them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from helpers import (
    CO_UNIT,
    CO_UNIT_ACTOR,
    EVALUATOR,
    LEAD_UNIT,
    OFFICE,
    OFFICER,
    OTHER_PROPOSER,
    OTHER_UNIT_ACTOR,
    PROPOSER,
    REC_UNIT,
    START,
    UNIT,
    UNIT_HEAD,
    drive_to,
    make_draft,
    make_flow,
    receive,
    shanghai,
    stored,
    stored_history,
)
from jianyi_flow import (
    PROPOSER_PSEUDONYM,
    Actor,
    Availability,
    FakeClock,
    Flow,
    JianyiFlowError,
    MemoryStore,
    NotFound,
    Outcome,
    PermissionDenied,
    PermissionTable,
    PhaseClosed,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    WindowClosed,
)
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.service.campaign_flow import PhaseGuard
from jianyi_flow.service.commands import ARGUMENTS

CAMPAIGN = yongchuan_2024()

Run = Callable[[Flow, str, Actor], object]
RUN: dict[str, tuple[dict[str, Any], Run]] = {}


def _command(name: str, **args: Any) -> None:
    RUN[name] = (args, lambda f, sid, a: getattr(f, name)(sid, a, **args))


_command("register")
_command("not_accept", reason="属个人诉求")
_command("transfer", lead_unit=LEAD_UNIT, co_units=(CO_UNIT,))
_command("object_transfer", reason="不属本单位职责")
_command("accept_objection")
_command("reject_objection", reason="属本单位职责")
_command("research", findings="调研", method=ResearchMethod.FORUM)
_command("decide", outcome=Outcome.ADOPTED)
_command("reply", text="答复", form=ReplyForm.WRITTEN)
_command("rate", rating="satisfied")
_command("withdraw")
_command("reopen", reason="建议人不满意")
_command("request_extension", days=5, reason="需会商")
_command("approve_extension")
_command("reject_extension", reason="理由不足")
_command("report_upward", form=ReportForm.ORIGINAL)
_command("forward_to_city")
_command("evaluate", quality=8, value=7, effect=6, evaluator="李评委")
_command("nominate_reward", tier=RewardTier.SECOND)
_command("record_adoption", adopted_into="区交通局文件")
_command("mark_typical")
_command("erase_personal_data", reason="建议人申请删除个人信息")
"""Every command a portal offers, with valid arguments (the required ones, and no more)."""

LEADER = Actor("leader-1", Role.LEADERSHIP)
CITY = Actor("city-1", Role.MUNICIPAL_OFFICE)
REC_STAFF = Actor("rec-1", Role.RECOMMENDING_UNIT, unit=REC_UNIT)
ACTORS: dict[str, Actor] = {
    "office": OFFICE, "lead_unit": UNIT, "lead_head": UNIT_HEAD, "co_unit": CO_UNIT_ACTOR,
    "other_unit": OTHER_UNIT_ACTOR, "proposer": PROPOSER, "other_proposer": OTHER_PROPOSER, "officer": OFFICER,
    "recommending_unit": REC_STAFF, "leadership": LEADER, "municipal_office": CITY, "evaluator": EVALUATOR,
    "co_head": Actor("head-2", Role.HANDLING_UNIT_HEAD, unit=CO_UNIT),
}


def _then(state: State, *steps: Callable[[Flow, str], object]) -> Callable[[Flow], str]:
    def build(flow: Flow) -> str:
        s = drive_to(flow, state)
        for step in steps:
            step(flow, s.id)
        return s.id
    return build


SITUATIONS: dict[str, Callable[[Flow], str]] = {
    **{state.value: _then(state) for state in State},
    "extension_pending": _then(State.TRANSFERRED, lambda f, sid: f.request_extension(sid, UNIT, days=5,
                                                                                       reason="需会商")),
    "extended": _then(State.RESEARCHED, lambda f, sid: f.request_extension(sid, UNIT, days=5, reason="需会商"),
                      lambda f, sid: f.approve_extension(sid, UNIT_HEAD)),
    "adopted_evaluated": _then(State.ADOPTED, lambda f, sid: f.evaluate(sid, EVALUATOR, quality=5, value=5,
                                                                        effect=5, evaluator="李评委")),
    "declined_typical": _then(State.DECLINED, lambda f, sid: f.mark_typical(sid, OFFICE)),
    "reported_forwarded": _then(State.REGISTERED, lambda f, sid: f.report_upward(sid, OFFICE, form="excerpt"),
                                lambda f, sid: f.forward_to_city(sid, OFFICE)),
    "filed_by_officer": lambda f: receive(f, actor=OFFICER).id,
    "recommended": lambda f: f.transfer(
        f.register(receive(f, make_draft(recommending_unit=REC_UNIT)).id, OFFICE).id, OFFICE,
        lead_unit=LEAD_UNIT).id,
}
"""Situations a suggestion can be in, each built by allowed actors through Flow (no phase guard)."""

MOMENTS: dict[str, dt.datetime] = {
    "implementation": START + dt.timedelta(hours=1),
    "objection_closed": shanghai(2024, 9, 2, 10),
    "summary": shanghai(2024, 12, 2, 10),
    "after_campaign": shanghai(2025, 1, 6, 10),
}
"""When the question is asked (never before the suggestion's last event)."""


def _world(situation: str, moment: str) -> tuple[Flow, str]:
    """The situation, built at START without the phase guard; then a guarded flow at the moment."""
    store, clock = MemoryStore(), FakeClock(START)
    sid = SITUATIONS[situation](make_flow(store, clock))
    last = stored(make_flow(store, clock), sid).updated_at
    clock.set(max(MOMENTS[moment], last + dt.timedelta(minutes=1)))
    return make_flow(store, clock, guards=[PhaseGuard(CAMPAIGN)]), sid


def _outcome(flow: Flow, sid: str, actor: Actor, command: str) -> JianyiFlowError | None:
    """Run ``command``; the error it raised (with nothing written), or ``None`` if it ran."""
    before = (stored(flow, sid), len(stored_history(flow, sid)))
    try:
        RUN[command][1](flow, sid, actor)
    except JianyiFlowError as exc:
        assert (stored(flow, sid), len(stored_history(flow, sid))) == before, f"{command} wrote and raised"
        return exc
    events = stored_history(flow, sid)
    # a proposer acting on a vaulted suggestion is recorded by a pseudonym (the account lives in the vault)
    recorded = Actor(PROPOSER_PSEUDONYM, Role.PROPOSER) if actor.role is Role.PROPOSER else actor
    assert len(events) == before[1] + 1 and events[-1].kind == command and events[-1].actor == recorded
    return None


def test_the_commands_here_are_every_command_a_portal_offers() -> None:
    assert set(RUN) == set(ARGUMENTS)
    for command, arguments in ARGUMENTS.items():
        required = {a.name for a in arguments if a.required}
        assert required <= set(RUN[command][0]) <= {a.name for a in arguments}, command


@pytest.mark.parametrize("moment", sorted(MOMENTS))
@pytest.mark.parametrize("situation", sorted(SITUATIONS))
def test_the_answer_is_what_running_each_command_does(situation: str, moment: str) -> None:
    offered_somewhere = 0
    for who, actor in ACTORS.items():
        flow, sid = _world(situation, moment)
        try:
            answer = flow.available_commands(actor, sid)
        except NotFound:
            for command in RUN:
                assert isinstance(_outcome(flow, sid, actor, command), NotFound), (who, command)
            continue
        assert isinstance(answer, Availability)
        listed = [c.command for c in answer.available] + [u.command for u in answer.unavailable]
        assert len(listed) == len(set(listed)), f"{who}: a command listed twice"
        assert answer.commands == tuple(c.command for c in answer.available)
        for unavailable in answer.unavailable:
            raised = _outcome(flow, sid, actor, unavailable.command)
            assert raised is not None, f"{who}: {unavailable.command} was not offered but ran ({unavailable.code})"
            assert type(raised) is type(unavailable.error), (who, unavailable.command, raised, unavailable.error)
            assert str(raised) == unavailable.message == str(unavailable.error)
            assert unavailable.code == type(raised).__name__ or unavailable.code == getattr(raised, "code", None)
        for command in RUN.keys() - set(listed):
            raised = _outcome(flow, sid, actor, command)
            # refused by the table, or earlier by the phase guard (phases are checked before permissions)
            assert isinstance(raised, (PermissionDenied, PhaseClosed)), f"{who}: {command} left out, but {raised!r}"
            assert not PermissionTable.default().allows_role(actor.role, command)
        for offered in answer.available:
            assert offered.arguments == ARGUMENTS[offered.command]
            fresh, same = _world(situation, moment)
            assert _outcome(fresh, same, actor, offered.command) is None, f"{who}: {offered.command} offered"
            offered_somewhere += 1
    if situation not in (State.NOT_ACCEPTED.value, State.WITHDRAWN.value):
        assert offered_somewhere or moment == "after_campaign" or situation == State.UNRATED.value, (
            "nobody may do anything: the situation tests nothing")


def test_the_matrix_meets_every_kind_of_refusal() -> None:
    """The situations above reach phases, windows, the table and the workflow alike."""
    seen: set[str] = set()
    for situation, moment, actor in (("transferred", "objection_closed", UNIT),
                                     ("registered", "implementation", OFFICE),
                                     ("transferred", "implementation", CO_UNIT_ACTOR),
                                     ("received", "implementation", OFFICE)):
        flow, sid = _world(situation, moment)
        seen |= {type(u.error).__name__ for u in flow.available_commands(actor, sid).unavailable}
    assert {WindowClosed.__name__, PhaseClosed.__name__, PermissionDenied.__name__, "InvalidTransition"} <= seen


def test_what_the_lead_unit_may_do_on_a_fresh_transfer_and_after_the_window() -> None:
    """A worked example of the matrix: the buttons a unit's page shows."""
    flow, sid = _world("transferred", "implementation")
    answer = flow.available_commands(UNIT, sid)
    assert set(answer.commands) == {"object_transfer", "research", "request_extension"}
    why = {u.command: u for u in answer.unavailable}
    assert why["decide"].code == "invalid_transition"
    assert why["record_adoption"].code == "phase_closed"  # a summary-phase command
    flow, sid = _world("transferred", "objection_closed")
    answer = flow.available_commands(UNIT, sid)
    assert set(answer.commands) == {"research", "request_extension"}
    closed = {u.command: u for u in answer.unavailable}["object_transfer"]
    assert isinstance(closed.error, WindowClosed)
    assert closed.error.closed_at == stored(flow, sid).objection_due_at


def test_a_suggestion_object_or_its_id_give_the_same_answer() -> None:
    flow, sid = _world("registered", "implementation")
    by_id = flow.available_commands(OFFICE, sid)
    by_row = flow.available_commands(OFFICE, stored(flow, sid))
    assert by_id.commands == by_row.commands
    assert [(u.command, u.message) for u in by_id.unavailable] == [(u.command, u.message) for u in by_row.unavailable]


def test_an_unknown_id_and_an_invisible_one_are_answered_alike() -> None:
    flow, sid = _world("transferred", "implementation")
    unknown = "z" * len(sid)
    for actor in (OTHER_UNIT_ACTOR, OTHER_PROPOSER):
        with pytest.raises(NotFound) as theirs:
            flow.available_commands(actor, sid)
        with pytest.raises(NotFound) as nothing:
            flow.available_commands(actor, unknown)
        assert str(theirs.value).replace(sid, "?") == str(nothing.value).replace(unknown, "?")


def test_a_clock_behind_the_last_event_offers_nothing_that_would_raise() -> None:
    store, clock = MemoryStore(), FakeClock(START)
    sid = drive_to(make_flow(store, clock), State.RECEIVED).id
    clock.set(START - dt.timedelta(minutes=5))  # another server's clock, behind this suggestion's receipt
    flow = make_flow(store, clock)
    for command in flow.available_commands(OFFICE, sid).commands:
        assert _outcome(flow, sid, OFFICE, command) is None, command

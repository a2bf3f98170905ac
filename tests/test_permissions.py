"""Permissions, visibility and masking, through a real Flow.

Every (role, command) pair is run: the pairs come from :class:`Role` × the command list,
and the expected answer comes from :data:`EXPECTED`, written out here by hand from the
issues ("Trust: permissions, confidentiality, input validation"; issue 20: the table is on
by default) rather than read from :mod:`jianyi_flow.service.permissions`, so a wrong default
table fails here instead of being copied into the test.  Each suggestion is first driven,
by allowed actors, to a state where the command is legal and visible to every role that
could ever run it; the actor under test then runs the command: it must succeed (one new
event, by that actor) or be refused with nothing written (same row and version, same
history, no outbox message) — :class:`PermissionDenied` when the actor may see the
suggestion, :class:`NotFound` worded exactly as for an unknown id when it may not (so a
refusal never tells an actor that a suggestion exists).

The worlds use a plain ``Flow(store, clock)``: the default table is what every Flow runs
under unless told otherwise (``permissions=`` a table, or ``ALLOW_ALL`` for trusted jobs).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import itertools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from jianyi_flow import (
    ALLOW_ALL,
    SHANGHAI,
    Actor,
    FakeClock,
    Flow,
    MemoryStore,
    NotFound,
    OutboxMessage,
    Outcome,
    PermissionDenied,
    Proposer,
    ProposerKind,
    Query,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Store,
    Suggestion,
    SuggestionDraft,
    ValidationError,
)
from jianyi_flow.domain.model import SYSTEM_ACTOR, Event
from jianyi_flow.service.guards import CommandContext
from jianyi_flow.service.permissions import (
    COMMANDS,
    ROLE_COMMANDS,
    PermissionGuard,
    PermissionTable,
    Rule,
    Scope,
    can_see,
    history_for,
    view_for,
)

ROOT = Path(__file__).resolve().parents[1]
START = dt.datetime(2024, 8, 21, 9, 0, tzinfo=SHANGHAI)
"""A Wednesday far from any holiday."""

REC_UNIT = "street_xq"
LEAD = "u_traffic"
CO = "u_env"
OTHER = "u_housing"
ACCUSED = "u_police"
OFFICE_UNIT = "zjb"
ACCOUNT = "wx_zhangsan"
PHONE = "13812345678"
ADDRESS = "重庆市沙坪坝区新桥正街12号"

R = Role
ACTORS: Mapping[Role, Actor] = {
    R.PROPOSER: Actor(ACCOUNT, R.PROPOSER, name="张三"),
    R.INFORMATION_OFFICER: Actor("io-1", R.INFORMATION_OFFICER, unit=REC_UNIT),
    R.RECOMMENDING_UNIT: Actor("rec-1", R.RECOMMENDING_UNIT, unit=REC_UNIT),
    R.COLLECTION_OFFICE: Actor("office-1", R.COLLECTION_OFFICE, unit=OFFICE_UNIT),
    R.HANDLING_UNIT: Actor("unit-1", R.HANDLING_UNIT, unit=LEAD),
    R.HANDLING_UNIT_HEAD: Actor("head-1", R.HANDLING_UNIT_HEAD, unit=LEAD),
    R.LEADERSHIP: Actor("leader-1", R.LEADERSHIP),
    R.MUNICIPAL_OFFICE: Actor("city-1", R.MUNICIPAL_OFFICE),
    R.EVALUATOR: Actor("judge-1", R.EVALUATOR, name="李评委"),
    R.SYSTEM: SYSTEM_ACTOR,
}
"""For each role, the actor best placed to run commands: the proposer of the test
suggestion, the officer who submitted it, its recommending unit, its lead unit and that
unit's head..."""

OFFICE = ACTORS[R.COLLECTION_OFFICE]
LEAD_ACTOR = ACTORS[R.HANDLING_UNIT]
HEAD = ACTORS[R.HANDLING_UNIT_HEAD]
CO_ACTOR = Actor("unit-2", R.HANDLING_UNIT, unit=CO)
OTHER_ACTOR = Actor("unit-3", R.HANDLING_UNIT, unit=OTHER)
OFFICER = ACTORS[R.INFORMATION_OFFICER]
PROPOSER = ACTORS[R.PROPOSER]
EVALUATOR = ACTORS[R.EVALUATOR]

EXPECTED: Mapping[str, frozenset[Role]] = {
    "receive": frozenset({R.PROPOSER, R.INFORMATION_OFFICER, R.RECOMMENDING_UNIT, R.COLLECTION_OFFICE}),
    "register": frozenset({R.COLLECTION_OFFICE}),
    "not_accept": frozenset({R.COLLECTION_OFFICE}),
    "transfer": frozenset({R.COLLECTION_OFFICE}),
    "object_transfer": frozenset({R.HANDLING_UNIT}),
    "accept_objection": frozenset({R.COLLECTION_OFFICE}),
    "reject_objection": frozenset({R.COLLECTION_OFFICE}),
    "research": frozenset({R.HANDLING_UNIT}),
    "decide": frozenset({R.HANDLING_UNIT}),
    "reply": frozenset({R.HANDLING_UNIT}),
    "rate": frozenset({R.PROPOSER}),
    "withdraw": frozenset({R.PROPOSER, R.INFORMATION_OFFICER}),
    "reopen": frozenset({R.COLLECTION_OFFICE}),
    "request_extension": frozenset({R.HANDLING_UNIT}),
    "approve_extension": frozenset({R.HANDLING_UNIT_HEAD}),
    "reject_extension": frozenset({R.HANDLING_UNIT_HEAD}),
    "report_upward": frozenset({R.COLLECTION_OFFICE}),
    "forward_to_city": frozenset({R.COLLECTION_OFFICE}),
    "evaluate": frozenset({R.EVALUATOR}),
    "nominate_reward": frozenset({R.EVALUATOR, R.COLLECTION_OFFICE}),
    "record_adoption": frozenset({R.HANDLING_UNIT, R.COLLECTION_OFFICE}),
    "mark_typical": frozenset({R.COLLECTION_OFFICE, R.LEADERSHIP}),
    "close_unrated": frozenset({R.SYSTEM}),
    "flag_overdue": frozenset({R.SYSTEM}),
    "retime": frozenset({R.SYSTEM}),
    "migrate_state": frozenset({R.SYSTEM}),
    "erase_personal_data": frozenset({R.COLLECTION_OFFICE}),
    "vault_personal_data": frozenset({R.SYSTEM}),
}
"""Who may run what under the default table, written out from the issues."""

TICK_COMMANDS = ("close_unrated", "flag_overdue")
SYSTEM_ONLY = (*TICK_COMMANDS, "retime", "migrate_state", "vault_personal_data")
"""Commands no portal calls: the flow runs them as the system (``tick``, ``retime``, ``migrate``)."""
READERS = {"get", "history", "list_suggestions", "overdue", "due_soon", "available_commands"}
"""Flow methods that take an actor but change nothing."""
BATCHES = {"erase_expired"}
"""Flow methods that run one of the commands above on many suggestions (``erase_personal_data``)."""
VAULTED = {"erase_personal_data"}
"""Commands that need a flow keeping personal data in its store's vault."""


# --- builders ---------------------------------------------------------------------------------


def make_proposer(**overrides: Any) -> Proposer:
    fields: dict[str, Any] = {"name": "张三丰", "kind": ProposerKind.CITIZEN, "phone": PHONE, "address": ADDRESS,
                              "account": ACCOUNT}
    fields.update(overrides)
    return Proposer(**fields)


def make_draft(**overrides: Any) -> SuggestionDraft:
    fields: dict[str, Any] = {
        "title": "关于优化新桥公交线路的建议",
        "subject": "新桥片区公交线路调整",
        "problem": "早高峰班次间隔过长。",
        "measures": "早高峰加密班次。",
        "area": "xinqiao",
        "proposer": make_proposer(),
        "recommending_unit": REC_UNIT,
        "accused_units": (ACCUSED,),
    }
    fields.update(overrides)
    return SuggestionDraft(**fields)


@attrs.define
class World:
    flow: Flow
    store: MemoryStore
    clock: FakeClock
    guard: PermissionGuard
    """A guard with the flow's table, for asking it directly (the Flow builds its own)."""


def make_world(table: PermissionTable | None = None, *, vault: bool = False) -> World:
    """A Flow under ``table`` (the default table when ``None``: what ``Flow(store, clock)`` runs)."""
    store = MemoryStore()
    clock = FakeClock(START)
    counter = itertools.count(1)
    ids = lambda: f"s{next(counter):04d}"  # noqa: E731
    flow = Flow(store, clock, ids=ids, vault=vault) if table is None else Flow(store, clock, permissions=table,
                                                                              ids=ids, vault=vault)
    return World(flow, store, clock, PermissionGuard(table or PermissionTable.default(), store=store))


Step = Callable[[Flow, str], Suggestion]
SETUP: Mapping[str, Step] = {
    "register": lambda f, sid: f.register(sid, OFFICE),
    "boost": lambda f, sid: f.forward_to_city(f.report_upward(sid, OFFICE, form=ReportForm.ORIGINAL).id, OFFICE),
    "report": lambda f, sid: f.report_upward(sid, OFFICE, form=ReportForm.ORIGINAL),
    "transfer": lambda f, sid: f.transfer(sid, OFFICE, lead_unit=LEAD, co_units=(CO,)),
    "object": lambda f, sid: f.object_transfer(sid, LEAD_ACTOR, reason="不属本单位职责"),
    "request": lambda f, sid: f.request_extension(sid, LEAD_ACTOR, days=10, reason="需多部门会商"),
    "research": lambda f, sid: f.research(sid, LEAD_ACTOR, findings="实地调研三次", method=ResearchMethod.FIELD_VISIT),
    "adopt": lambda f, sid: f.decide(sid, LEAD_ACTOR, outcome=Outcome.ADOPTED),
    "reply": lambda f, sid: f.reply(sid, LEAD_ACTOR, text="已采纳，下月起加密班次。", form=ReplyForm.WRITTEN),
    "rate": lambda f, sid: f.rate(sid, PROPOSER, rating=Rating.DISSATISFIED),
    "evaluate": lambda f, sid: f.evaluate(sid, EVALUATOR, quality=8, value=7, effect=6, evaluator="李评委"),
}
"""Steps by allowed actors.  ``boost`` reports upward and forwards to the city, so that
leadership and the municipal office can see the suggestion too."""

_ROUTED = ("register", "boost", "transfer")
_ADOPTED = (*_ROUTED, "research", "adopt")
PREP: Mapping[str, tuple[str, ...]] = {
    "register": (),
    "not_accept": (),
    "transfer": ("register", "boost"),
    "object_transfer": _ROUTED,
    "accept_objection": (*_ROUTED, "object"),
    "reject_objection": (*_ROUTED, "object"),
    "research": _ROUTED,
    "request_extension": _ROUTED,
    "approve_extension": (*_ROUTED, "request"),
    "reject_extension": (*_ROUTED, "request"),
    "withdraw": ("register", "boost"),
    "decide": (*_ROUTED, "research"),
    "reply": _ADOPTED,
    "rate": (*_ADOPTED, "reply"),
    "reopen": (*_ADOPTED, "reply", "rate"),
    "report_upward": ("register", "boost"),
    "forward_to_city": ("register", "report"),
    "evaluate": _ADOPTED,
    "nominate_reward": (*_ADOPTED, "evaluate"),
    "record_adoption": _ADOPTED,
    "mark_typical": _ADOPTED,
    "close_unrated": (*_ADOPTED, "reply"),
    "flag_overdue": _ROUTED,
    "retime": _ROUTED,
    "migrate_state": _ROUTED,
    "erase_personal_data": _ADOPTED,
    "vault_personal_data": _ROUTED,
}
"""For each command, the steps after ``receive`` that make it legal."""

Run = Callable[[Flow, str, Actor], Suggestion]
RUN: Mapping[str, Run] = {
    "register": lambda f, sid, a: f.register(sid, a),
    "not_accept": lambda f, sid, a: f.not_accept(sid, a, reason="属个人诉求"),
    "transfer": lambda f, sid, a: f.transfer(sid, a, lead_unit=LEAD, co_units=(CO,)),
    "object_transfer": lambda f, sid, a: f.object_transfer(sid, a, reason="不属本单位职责"),
    "accept_objection": lambda f, sid, a: f.accept_objection(sid, a, note="异议成立"),
    "reject_objection": lambda f, sid, a: f.reject_objection(sid, a, reason="属本单位职责"),
    "research": lambda f, sid, a: f.research(sid, a, findings="召开座谈会一次", method=ResearchMethod.FORUM),
    "decide": lambda f, sid, a: f.decide(sid, a, outcome=Outcome.ADOPTED),
    "reply": lambda f, sid, a: f.reply(sid, a, text="感谢您的建议。", form=ReplyForm.PHONE),
    "rate": lambda f, sid, a: f.rate(sid, a, rating=Rating.SATISFIED),
    "withdraw": lambda f, sid, a: f.withdraw(sid, a, reason="问题已解决"),
    "reopen": lambda f, sid, a: f.reopen(sid, a, reason="建议人不满意"),
    "request_extension": lambda f, sid, a: f.request_extension(sid, a, days=10, reason="需多部门会商"),
    "approve_extension": lambda f, sid, a: f.approve_extension(sid, a, note="同意"),
    "reject_extension": lambda f, sid, a: f.reject_extension(sid, a, reason="理由不足"),
    "report_upward": lambda f, sid, a: f.report_upward(sid, a, form=ReportForm.EXCERPT),
    "forward_to_city": lambda f, sid, a: f.forward_to_city(sid, a),
    "evaluate": lambda f, sid, a: f.evaluate(sid, a, quality=9, value=9, effect=8, evaluator="李评委"),
    "nominate_reward": lambda f, sid, a: f.nominate_reward(sid, a, tier=RewardTier.FIRST),
    "record_adoption": lambda f, sid, a: f.record_adoption(sid, a, adopted_into="区交通局2024年第3号通知"),
    "mark_typical": lambda f, sid, a: f.mark_typical(sid, a),
    "erase_personal_data": lambda f, sid, a: f.erase_personal_data(sid, a, reason="建议人要求删除个人信息"),
}
"""The command under test, run by the actor under test with valid arguments."""


def prepare(world: World, command: str) -> Suggestion:
    """A new suggestion, submitted by the information officer, walked to where ``command`` is legal."""
    s = world.flow.receive(make_draft(), OFFICER)
    for step in PREP[command]:
        SETUP[step](world.flow, s.id)
    return world.store.load(s.id)


def drain(store: Store) -> list[OutboxMessage]:
    messages = store.claim(1_000_000, START, dt.timedelta(seconds=1))
    store.mark_sent([m.id for m in messages if m.id is not None], START)
    return messages


@attrs.frozen
class Snapshot:
    row: Suggestion
    history: tuple[Event, ...]


def snapshot(world: World, sid: str) -> Snapshot:
    drain(world.store)
    return Snapshot(world.store.load(sid), tuple(world.store.history(sid)))


def assert_unchanged(world: World, sid: str, before: Snapshot) -> None:
    after = world.store.load(sid)
    assert after == before.row
    assert after.version == before.row.version
    assert tuple(world.store.history(sid)) == before.history
    assert drain(world.store) == []


def sees(world: World, actor: Actor, sid: str) -> bool:
    """Whether the flow shows ``actor`` the suggestion at all (its read, not the guard's)."""
    try:
        world.flow.get(sid, actor)
    except NotFound:
        return False
    return True


def unknown_id_message(world: World, actor: Actor, sid: str) -> str:
    """What the flow answers ``actor`` about an id that does not exist, with ``sid``'s length."""
    ghost = "x" * len(sid)
    with pytest.raises(NotFound) as caught:
        world.flow.get(ghost, actor)
    return str(caught.value).replace(ghost, sid)


def assert_denied(world: World, sid: str, actor: Actor, command: str, run: Callable[[], object]) -> PermissionDenied:
    """Refused as not allowed; the actor may see the suggestion, so it is told why."""
    assert sees(world, actor, sid), f"{actor} cannot see {sid}: a refusal would be NotFound"
    before = snapshot(world, sid)
    with pytest.raises(PermissionDenied) as caught:
        run()
    assert caught.value.actor == str(actor)
    assert caught.value.command == command
    assert caught.value.reason
    assert_unchanged(world, sid, before)
    return caught.value


def assert_hidden(world: World, sid: str, actor: Actor, run: Callable[[], object]) -> NotFound:
    """Refused as if the suggestion did not exist: the same error and message as for an unknown id."""
    assert not sees(world, actor, sid)
    before = snapshot(world, sid)
    with pytest.raises(NotFound) as caught:
        run()
    assert type(caught.value) is NotFound
    assert str(caught.value) == unknown_id_message(world, actor, sid)
    assert_unchanged(world, sid, before)
    return caught.value


def assert_refused(world: World, sid: str, actor: Actor, command: str, run: Callable[[], object]) -> None:
    """:func:`assert_denied` if the actor may see the suggestion, else :func:`assert_hidden`."""
    if sees(world, actor, sid):
        assert_denied(world, sid, actor, command, run)
    else:
        assert_hidden(world, sid, actor, run)


def assert_done(world: World, before: Suggestion, after: Suggestion, actor: Actor, command: str) -> None:
    assert after.version == before.version + 1
    history = world.store.history(before.id)
    assert len(history) == before.version + 1
    assert history[-1].actor == actor and history[-1].kind == command


# --- the full (role, command) matrix ---------------------------------------------------------


def test_the_expected_table_names_every_command_flow_has() -> None:
    """A new Flow command must be added to EXPECTED (and the permission table) to be tested."""
    flow_commands = {
        name for name, method in inspect.getmembers(Flow, inspect.isfunction)
        if not name.startswith("_") and "actor" in inspect.signature(method).parameters
    }
    assert READERS <= flow_commands
    # run_command runs the commands a deployment adds to its workflow: the table names those itself
    assert (flow_commands - READERS - BATCHES - {"run_command"}) | set(SYSTEM_ONLY) == set(EXPECTED)
    assert set(COMMANDS) == set(EXPECTED)


def test_role_commands_matrix_matches_the_expected_table() -> None:
    assert dict(ROLE_COMMANDS) == {(role, c): role in EXPECTED[c] for role in Role for c in COMMANDS}


def test_a_plain_flow_runs_under_the_default_table() -> None:
    """Issue 20 defect 7: the table is on unless a Flow is told otherwise."""
    flow = Flow(MemoryStore(), FakeClock(START))
    assert flow.permissions == PermissionTable.default()
    assert Flow(MemoryStore(), FakeClock(START), permissions=ALLOW_ALL).permissions is ALLOW_ALL
    with pytest.raises(ValidationError) as caught:
        Flow(MemoryStore(), FakeClock(START), permissions="off")  # type: ignore[arg-type]
    assert caught.value.field == "permissions"


@pytest.mark.parametrize("command", [c for c in EXPECTED if c not in ("receive", *SYSTEM_ONLY)])
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_role_and_command(role: Role, command: str) -> None:
    world = make_world(vault=command in VAULTED)
    s = prepare(world, command)
    actor = ACTORS[role]
    if role in EXPECTED[command]:
        after = RUN[command](world.flow, s.id, actor)
        assert_done(world, s, after, actor, command)
    else:
        assert_refused(world, s.id, actor, command, lambda: RUN[command](world.flow, s.id, actor))


def test_the_matrix_refuses_both_ways() -> None:
    """Some refusals in the matrix are PermissionDenied and some NotFound: both paths are exercised."""
    world = make_world()
    s = prepare(world, "register")
    assert_denied(world, s.id, ACTORS[R.RECOMMENDING_UNIT], "register",
                  lambda: world.flow.register(s.id, ACTORS[R.RECOMMENDING_UNIT]))
    assert_hidden(world, s.id, LEAD_ACTOR, lambda: world.flow.register(s.id, LEAD_ACTOR))


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_role_receiving(role: Role) -> None:
    """Each role files the draft best placed for it: its own account, naming its own unit as recommender."""
    world = make_world()
    actor = ACTORS[role]
    draft = make_draft(recommending_unit=actor.unit)
    if role in EXPECTED["receive"]:
        s = world.flow.receive(draft, actor)
        assert s.version == 1 and world.store.history(s.id)[0].actor == actor
    else:
        with pytest.raises(PermissionDenied) as caught:
            world.flow.receive(draft, actor)
        assert caught.value.command == "receive" and caught.value.actor == str(actor)
        assert world.store.count(Query()) == 0
        assert drain(world.store) == []


def _past_due(world: World, sid: str) -> None:
    due = world.store.load(sid).due_at
    assert due is not None
    world.clock.set(due + dt.timedelta(seconds=1))


@pytest.mark.parametrize("command", SYSTEM_ONLY)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_role_and_system_command(role: Role, command: str) -> None:
    """``tick`` runs these as the system actor; Flow has no entry point that takes another actor.

    So the system's pair goes through ``tick`` (``retime`` is asked of the guard: it has no
    entry point of its own yet); for every other role the guard is asked directly with the
    real row, as Flow would ask it, and must refuse.
    """
    world = make_world()
    s = prepare(world, command)
    _past_due(world, s.id)
    actor = ACTORS[role]
    ctx = CommandContext(command, actor, world.clock.now(), suggestion=world.store.load(s.id))
    if role in EXPECTED[command]:
        world.guard.check(ctx)
        if command in TICK_COMMANDS:
            events = world.flow.tick()
            assert [(e.kind, e.actor) for e in events] == [(command, actor)]
            assert_done(world, s, world.store.load(s.id), actor, command)
    else:
        before = snapshot(world, s.id)
        with pytest.raises(PermissionDenied) as caught:
            world.guard.check(ctx)
        assert caught.value.command == command and caught.value.actor == str(actor)
        assert_unchanged(world, s.id, before)


# --- units, proposers and scopes -------------------------------------------------------------


@pytest.mark.parametrize("command", ["research", "object_transfer", "request_extension"])
def test_a_co_handling_unit_sees_but_may_not_act_as_lead(command: str) -> None:
    world = make_world()
    s = prepare(world, command)
    assert world.guard.can_see(CO_ACTOR, s)
    run = RUN[command]
    denied = assert_denied(world, s.id, CO_ACTOR, command, lambda: run(world.flow, s.id, CO_ACTOR))
    assert "lead unit" in denied.reason and LEAD in denied.reason


def test_only_the_head_of_the_lead_unit_decides_its_extension() -> None:
    world = make_world()
    s = prepare(world, "approve_extension")
    co_head = Actor("head-2", R.HANDLING_UNIT_HEAD, unit=CO)
    denied = assert_denied(world, s.id, co_head, "approve_extension",
                           lambda: world.flow.approve_extension(s.id, co_head))
    assert "lead unit" in denied.reason
    other_head = Actor("head-3", R.HANDLING_UNIT_HEAD, unit=OTHER)
    assert_hidden(world, s.id, other_head, lambda: world.flow.approve_extension(s.id, other_head))
    assert world.flow.approve_extension(s.id, HEAD).extended


def test_a_unit_not_involved_can_neither_see_nor_act() -> None:
    world = make_world()
    s = prepare(world, "research")
    assert not world.guard.can_see(OTHER_ACTOR, s)
    assert_hidden(world, s.id, OTHER_ACTOR,
                  lambda: world.flow.research(s.id, OTHER_ACTOR, findings="x", method=ResearchMethod.OTHER))
    ctx = CommandContext("research", OTHER_ACTOR, START, suggestion=s)
    with pytest.raises(PermissionDenied) as caught:  # the guard, asked directly, says why
        world.guard.check(ctx)
    assert "not visible" in caught.value.reason
    with pytest.raises(PermissionDenied):
        view_for(OTHER_ACTOR, s)


def test_a_handling_unit_without_a_unit_is_refused() -> None:
    world = make_world()
    s = prepare(world, "research")
    nowhere = Actor("unit-9", R.HANDLING_UNIT)
    assert_hidden(world, s.id, nowhere,
                  lambda: world.flow.research(s.id, nowhere, findings="x", method=ResearchMethod.OTHER))


def test_a_lead_unit_whose_objection_was_accepted_stops_seeing_it() -> None:
    world = make_world()
    s = prepare(world, "accept_objection")
    s = world.flow.accept_objection(s.id, OFFICE)
    assert s.state is State.RETURNED
    assert not can_see(LEAD_ACTOR, s)
    assert_hidden(world, s.id, LEAD_ACTOR,
                  lambda: world.flow.record_adoption(s.id, LEAD_ACTOR, adopted_into="x"))


def test_a_proposer_may_not_rate_or_withdraw_someone_elses_suggestion() -> None:
    world = make_world()
    other = Actor("wx_lisi", R.PROPOSER)
    s = prepare(world, "rate")
    assert not can_see(other, s)
    assert_hidden(world, s.id, other, lambda: world.flow.rate(s.id, other, rating=Rating.SATISFIED))
    s2 = prepare(world, "withdraw")
    assert_hidden(world, s2.id, other, lambda: world.flow.withdraw(s2.id, other))


def test_a_proposer_without_an_account_cannot_be_impersonated() -> None:
    """``account=None`` must not match an actor whose id happens to be anything at all."""
    world = make_world()
    s = world.flow.receive(make_draft(proposer=make_proposer(account=None)), OFFICE)
    s = world.flow.register(s.id, OFFICE)
    who = Actor("None", R.PROPOSER)
    assert_hidden(world, s.id, who, functools.partial(world.flow.withdraw, s.id, who))
    blank = Actor("", R.PROPOSER)  # a blank id is not an actor at all: refused before any rule is asked
    before = world.store.load(s.id)
    with pytest.raises(ValidationError) as caught:
        world.flow.withdraw(s.id, blank)
    assert caught.value.field == "actor.id"
    assert world.store.load(s.id) == before


def test_only_the_officer_who_submitted_may_withdraw_for_the_proposer() -> None:
    world = make_world()
    s = prepare(world, "withdraw")
    colleague = Actor("io-2", R.INFORMATION_OFFICER, unit=REC_UNIT)
    assert not world.guard.can_see(colleague, s)
    assert_hidden(world, s.id, colleague, lambda: world.flow.withdraw(s.id, colleague))
    # an officer-shaped actor with the submitter's id but another role is someone else
    impostor = Actor(OFFICER.id, R.RECOMMENDING_UNIT, unit=OTHER)
    assert_hidden(world, s.id, impostor, lambda: world.flow.withdraw(s.id, impostor))
    done = world.flow.withdraw(s.id, OFFICER)
    assert done.state is State.WITHDRAWN


def test_the_submitted_scope_reads_the_row_and_fails_closed_without_it() -> None:
    """Who received a suggestion is on its row (``received_by``); a guard without a store finds it there.
    A row that does not say (written before the field existed) and no store to look in: refused."""
    world = make_world()
    s = prepare(world, "withdraw")
    assert s.received_by == OFFICER.ref
    ctx = CommandContext("withdraw", OFFICER, START, suggestion=s)
    PermissionGuard(PermissionTable.default(), store=None).check(ctx)  # allowed: the row names the officer
    legacy = attrs.evolve(ctx, suggestion=attrs.evolve(s, received_by=None))
    with pytest.raises(PermissionDenied):
        PermissionGuard(PermissionTable.default(), store=None).check(legacy)
    PermissionGuard(PermissionTable.default(), store=world.store).check(legacy)  # the receive event says
    unknown = attrs.evolve(legacy, suggestion=attrs.evolve(legacy.suggestion, id="not-stored"))
    with pytest.raises(PermissionDenied):  # a store that does not hold the row names no submitter
        PermissionGuard(PermissionTable.default(), store=world.store).check(unknown)


@pytest.mark.parametrize(
    ("actor", "draft_changes", "allowed"),
    [
        (PROPOSER, {"recommending_unit": None}, True),
        (PROPOSER, {"recommending_unit": None, "proposer": make_proposer(account="wx_lisi")}, False),
        (PROPOSER, {"recommending_unit": REC_UNIT}, False),
        (ACTORS[R.RECOMMENDING_UNIT], {"recommending_unit": REC_UNIT}, True),
        (ACTORS[R.RECOMMENDING_UNIT], {"recommending_unit": OTHER}, False),
        (ACTORS[R.RECOMMENDING_UNIT], {"recommending_unit": None}, False),
        (OFFICER, {"recommending_unit": None}, True),
        (OFFICER, {"recommending_unit": OTHER}, False),
        (OFFICE, {"recommending_unit": OTHER}, True),
    ],
    ids=["proposer-own", "proposer-other-account", "proposer-claims-unit", "unit-own", "unit-other",
         "unit-unnamed", "officer-none", "officer-other-unit", "office-any"],
)
def test_who_may_file_which_draft(actor: Actor, draft_changes: dict[str, Any], allowed: bool) -> None:
    """Naming a recommending unit counts towards its quota: only that unit or the office may."""
    world = make_world()
    draft = make_draft(**draft_changes)
    if allowed:
        assert world.flow.receive(draft, actor).version == 1
    else:
        with pytest.raises(PermissionDenied):
            world.flow.receive(draft, actor)
        assert world.store.count(Query()) == 0


# --- Art. 30: never transfer to the accused ---------------------------------------------------


def assert_refused_as_accused(world: World, sid: str, run: Callable[[], object], field: str) -> None:
    before = snapshot(world, sid)
    with pytest.raises(ValidationError) as caught:
        run()
    assert caught.value.field == field
    assert caught.value.code == "accused_unit" and caught.value.details == {"value": ACCUSED}
    assert ACCUSED in caught.value.rule and "Art. 30" in caught.value.rule
    assert_unchanged(world, sid, before)


@pytest.mark.parametrize(
    ("lead", "co", "field"),
    [(ACCUSED, (CO,), "lead_unit"), (LEAD, (ACCUSED,), "co_units"), (LEAD, (CO, ACCUSED), "co_units")],
    ids=["lead", "co", "second-co"],
)
def test_a_transfer_to_an_accused_unit_is_refused(lead: str, co: tuple[str, ...], field: str) -> None:
    """The same ValidationError as Flow's own check, raised by the guard before anything is computed."""
    world = make_world()
    s = prepare(world, "transfer")
    assert s.accused_units == (ACCUSED,)
    ctx = CommandContext("transfer", OFFICE, START, suggestion=s, args={"lead_unit": lead, "co_units": co})
    with pytest.raises(ValidationError) as from_guard:
        world.guard.check(ctx)
    assert from_guard.value.field == field
    assert_refused_as_accused(world, s.id, lambda: world.flow.transfer(s.id, OFFICE, lead_unit=lead, co_units=co),
                              field)
    assert world.flow.transfer(s.id, OFFICE, lead_unit=LEAD, co_units=(CO,)).state is State.TRANSFERRED


def test_the_accused_unit_rule_fails_the_same_way_without_permissions() -> None:
    counter = itertools.count(1)
    bare = Flow(MemoryStore(), FakeClock(START), permissions=ALLOW_ALL, ids=lambda: f"s{next(counter):04d}")
    guarded = make_world()
    refusals = []
    for flow in (bare, guarded.flow):
        s = flow.register(flow.receive(make_draft(), OFFICE).id, OFFICE)
        with pytest.raises(ValidationError) as caught:
            flow.transfer(s.id, OFFICE, lead_unit=ACCUSED)
        refusals.append(caught.value.to_dict())
        assert caught.value.field == "lead_unit"
        assert flow.store.load(s.id).state is State.REGISTERED
    assert refusals[0] == refusals[1] and refusals[0]["code"] == "accused_unit"


def test_no_table_override_lifts_the_accused_unit_rule() -> None:
    table = PermissionTable.from_mapping({c: list(Role) for c in COMMANDS})
    world = make_world(table)
    s = prepare(world, "transfer")
    assert_refused_as_accused(world, s.id, lambda: world.flow.transfer(s.id, OFFICE, lead_unit=ACCUSED),
                              "lead_unit")


def test_an_accused_unit_never_sees_the_suggestion() -> None:
    """A unit the material accuses may not recommend it (Art. 30): such a draft is refused at intake,
    and a suggestion from an older store that names it anyway stays invisible to it."""
    world = make_world()
    with pytest.raises(ValidationError) as caught:
        world.flow.receive(make_draft(recommending_unit=ACCUSED), OFFICE)
    assert caught.value.code == "accused_unit" and caught.value.field == "recommending_unit"
    s = world.flow.receive(make_draft(), OFFICE)
    old = attrs.evolve(s, recommending_unit=ACCUSED)
    assert not can_see(Actor("rec-9", R.RECOMMENDING_UNIT, unit=ACCUSED), old)


# --- visibility by role ------------------------------------------------------------------------


def test_leadership_city_and_evaluators_see_only_what_reached_them() -> None:
    world = make_world()
    s = world.flow.register(world.flow.receive(make_draft(), OFFICER).id, OFFICE)
    leader, city = ACTORS[R.LEADERSHIP], ACTORS[R.MUNICIPAL_OFFICE]
    assert not can_see(leader, s) and not can_see(city, s) and not can_see(EVALUATOR, s)
    s = world.flow.report_upward(s.id, OFFICE, form=ReportForm.ANALYSIS)
    assert can_see(leader, s) and not can_see(city, s)
    s = world.flow.forward_to_city(s.id, OFFICE)
    assert can_see(city, s) and not can_see(EVALUATOR, s)
    for step in ("transfer", "research", "adopt"):
        s = SETUP[step](world.flow, s.id)
    assert can_see(EVALUATOR, world.store.load(s.id))


def test_the_office_and_the_system_see_everything_and_a_recommending_unit_its_own() -> None:
    world = make_world()
    s = world.store.load(world.flow.receive(make_draft(), OFFICER).id)
    assert can_see(OFFICE, s) and can_see(SYSTEM_ACTOR, s)
    assert can_see(ACTORS[R.RECOMMENDING_UNIT], s)
    assert not can_see(Actor("rec-2", R.RECOMMENDING_UNIT, unit=OTHER), s)
    # the submitter is found by the guard (on the row or in the store), not by can_see alone
    assert world.guard.can_see(OFFICER, s) and not can_see(OFFICER, s)


# --- masking -----------------------------------------------------------------------------------


def test_a_confidential_proposer_is_masked_for_units_and_shown_to_the_office() -> None:
    world = make_world()
    s = world.flow.receive(make_draft(proposer=make_proposer(confidential=True)), OFFICER)
    for step in ("register", "transfer"):
        s = SETUP[step](world.flow, s.id)
    assert s == world.store.load(s.id)  # the office's own view is the row
    for viewer in (LEAD_ACTOR, CO_ACTOR, ACTORS[R.RECOMMENDING_UNIT]):
        p = view_for(viewer, s).proposer
        assert (p.name, p.phone, p.address) == ("张**", "138******78", "***")
        assert p.account is None and p.confidential  # the account may be a phone: never shown
    assert view_for(OFFICE, s) == s
    assert view_for(PROPOSER, s) == s
    assert world.guard.view_for(OFFICER, s).proposer.phone == "138******78"
    assert world.store.load(s.id).proposer.phone == PHONE  # the view never touches the store


def test_a_proposer_who_did_not_ask_for_confidentiality_keeps_their_name_but_not_their_phone() -> None:
    world = make_world()
    s = world.flow.receive(make_draft(), OFFICER)
    s = world.flow.transfer(world.flow.register(s.id, OFFICE).id, OFFICE, lead_unit=LEAD)
    p = view_for(LEAD_ACTOR, s).proposer
    assert (p.name, p.phone, p.address) == ("张三丰", "138******78", "***")


def test_a_proposer_s_own_details_are_scrubbed_from_free_text_in_views() -> None:
    """Proposers write their number into the text; hiding the field alone would hide nothing."""
    world = make_world()
    draft = make_draft(problem=f"请联系我 {PHONE}，住 {ADDRESS}。", measures="张三丰建议加密班次",
                       proposer=make_proposer(confidential=True))
    s = world.flow.receive(draft, OFFICER)
    s = world.flow.register(s.id, OFFICE)
    s = world.flow.transfer(s.id, OFFICE, lead_unit=LEAD, note=f"建议人电话 {PHONE}")
    shown = view_for(LEAD_ACTOR, s)
    assert shown.problem == "请联系我 ***********，住 ***。"
    assert shown.measures == "张**建议加密班次"
    assert view_for(OFFICE, s).problem == draft.problem
    events = history_for(LEAD_ACTOR, s, world.store.history(s.id))
    assert events[0].changes["problem"] == shown.problem
    assert events[-1].reason == "建议人电话 ***********"
    assert PHONE not in str(events) and ADDRESS not in str(events)


def test_a_one_character_name_is_not_scrubbed_from_text() -> None:
    world = make_world()
    s = world.flow.receive(make_draft(proposer=make_proposer(name="李", confidential=True)), OFFICER)
    s = world.flow.transfer(world.flow.register(s.id, OFFICE).id, OFFICE, lead_unit=LEAD)
    shown = view_for(LEAD_ACTOR, s)
    assert shown.title == s.title and shown.proposer.name == "李*"


def test_repr_of_a_proposer_never_shows_phone_or_address() -> None:
    text = repr(make_proposer()) + repr(make_world().flow.receive(make_draft(), OFFICE))
    assert PHONE not in text and ADDRESS not in text


def test_history_for_masks_the_proposer_in_events() -> None:
    world = make_world()
    s = world.flow.receive(make_draft(proposer=make_proposer(confidential=True)), OFFICER)
    s = world.flow.transfer(world.flow.register(s.id, OFFICE).id, OFFICE, lead_unit=LEAD)
    raw = world.store.history(s.id)
    assert PHONE in str(raw[0].changes)
    shown = history_for(LEAD_ACTOR, s, raw)
    assert PHONE not in str(shown) and ADDRESS not in str(shown) and "张三丰" not in str(shown)
    assert [e.kind for e in shown] == [e.kind for e in raw]
    assert history_for(OFFICE, s, raw) == raw
    with pytest.raises(PermissionDenied):
        history_for(OTHER_ACTOR, s, raw)


def test_flow_reads_give_each_actor_its_own_view() -> None:
    """``get`` and ``history`` take the actor and return what it may see: masked for a unit, whole for
    the office and the proposer; the store keeps everything."""
    world = make_world()
    s = world.flow.receive(make_draft(proposer=make_proposer(confidential=True),
                                      problem=f"请回电 {PHONE}"), OFFICER)
    s = world.flow.transfer(world.flow.register(s.id, OFFICE).id, OFFICE, lead_unit=LEAD)
    row = world.store.load(s.id)
    for viewer in (LEAD_ACTOR, ACTORS[R.RECOMMENDING_UNIT], OFFICER):
        shown = world.flow.get(s.id, viewer)
        assert shown == view_for(viewer, row, submitter=OFFICER)
        assert PHONE not in repr(attrs.asdict(shown)) and "张三丰" not in repr(attrs.asdict(shown))
        assert shown.proposer.account is None
        events = world.flow.history(s.id, viewer)
        assert [e.kind for e in events] == ["receive", "register", "transfer"]
        assert PHONE not in repr([attrs.asdict(e) for e in events])
    for whole in (OFFICE, PROPOSER):
        assert world.flow.get(s.id, whole) == row
        assert world.flow.history(s.id, whole) == world.store.history(s.id)


# --- the table as data, and portal overrides ---------------------------------------------------


def test_a_portal_can_let_the_office_withdraw_for_offline_proposers() -> None:
    world = make_world()
    s = prepare(world, "withdraw")
    assert_denied(world, s.id, OFFICE, "withdraw", lambda: world.flow.withdraw(s.id, OFFICE))
    table = PermissionTable.default().with_rule("withdraw", Rule(R.COLLECTION_OFFICE))
    assert PermissionTable.default().allows_role(R.COLLECTION_OFFICE, "withdraw") is False  # the default is untouched
    world = make_world(table)
    s = prepare(world, "withdraw")
    assert world.flow.withdraw(s.id, OFFICE).state is State.WITHDRAWN


def test_a_portal_can_take_a_right_away() -> None:
    world = make_world(PermissionTable.default().without_role("mark_typical", R.LEADERSHIP))
    s = prepare(world, "mark_typical")
    leader = ACTORS[R.LEADERSHIP]
    assert_denied(world, s.id, leader, "mark_typical", lambda: world.flow.mark_typical(s.id, leader))
    assert world.flow.mark_typical(s.id, OFFICE).typical_case


def test_a_table_from_plain_data_replaces_the_default() -> None:
    table = PermissionTable.from_mapping(
        {
            "receive": ["collection_office"],
            "register": [("collection_office", "any")],
            "transfer": [{"role": "collection_office"}],
            "research": [{"role": "handling_unit", "scope": "handling_unit"}],
        }
    )
    assert table.rules_for("research") == (Rule(R.HANDLING_UNIT, Scope.HANDLING_UNIT),)
    world = make_world(table)
    s = world.flow.receive(make_draft(), OFFICE)
    s = world.flow.transfer(world.flow.register(s.id, OFFICE).id, OFFICE, lead_unit=LEAD, co_units=(CO,))
    assert world.flow.research(s.id, CO_ACTOR, findings="协办单位调研",
                               method=ResearchMethod.FORUM).state is State.RESEARCHED
    denied = assert_denied(world, s.id, LEAD_ACTOR, "decide",
                           lambda: world.flow.decide(s.id, LEAD_ACTOR, outcome=Outcome.ADOPTED))
    assert "no rule" in denied.reason


def test_a_portal_can_close_a_command_and_the_table_round_trips_through_plain_data() -> None:
    table = PermissionTable.default().with_rules("mark_typical", [])
    assert table.rules_for("mark_typical") == ()
    world = make_world(table)
    s = prepare(world, "mark_typical")
    denied = assert_denied(world, s.id, OFFICE, "mark_typical", lambda: world.flow.mark_typical(s.id, OFFICE))
    assert "no rule" in denied.reason
    data = json.loads(json.dumps(PermissionTable.default().to_mapping()))
    assert PermissionTable.from_mapping(data) == PermissionTable.default()
    assert data["withdraw"] == [{"role": "proposer", "scope": "own_suggestion"},
                                {"role": "information_officer", "scope": "submitted"}]


def test_rules_of_gives_each_roles_rules_in_the_tables_order_and_follows_every_copy() -> None:
    table = PermissionTable.default()
    for command in COMMANDS:
        for role in R:
            assert table.rules_of(command, role) == tuple(r for r in table.rules_for(command) if r.role is role)
    widened = table.with_rule("withdraw", Rule(R.COLLECTION_OFFICE), Rule(R.PROPOSER, Scope.ANY))
    assert widened.rules_of("withdraw", R.PROPOSER) == (Rule(R.PROPOSER, Scope.OWN_SUGGESTION),
                                                         Rule(R.PROPOSER, Scope.ANY))
    assert widened.rules_of("withdraw", R.COLLECTION_OFFICE) == (Rule(R.COLLECTION_OFFICE),)
    assert table.rules_of("withdraw", R.COLLECTION_OFFICE) == ()  # the table it was copied from is untouched
    assert table.without_role("mark_typical", R.LEADERSHIP).rules_of("mark_typical", R.LEADERSHIP) == ()
    assert table.with_rules("register", []).rules_of("register", R.COLLECTION_OFFICE) == ()
    assert attrs.evolve(widened, added=frozenset()).rules_of("withdraw", R.COLLECTION_OFFICE) == \
        (Rule(R.COLLECTION_OFFICE),)
    assert widened == PermissionTable.from_mapping(widened.to_mapping())  # the index is not part of equality


def test_an_empty_table_refuses_everything() -> None:
    world = make_world(PermissionTable.from_mapping({}))
    with pytest.raises(PermissionDenied):
        world.flow.receive(make_draft(), OFFICE)


@pytest.mark.parametrize(
    "mapping",
    [
        {"regster": ["collection_office"]},
        {"register": ["collection_ofice"]},
        {"register": [{"role": "collection_office", "scope": "everyone"}]},
        {"register": [{"role": "collection_office", "unit": "zjb"}]},
        {"register": "collection_office"},
        {"register": [42]},
    ],
    ids=["command", "role", "scope", "extra-key", "not-a-list", "not-a-rule"],
)
def test_a_typo_in_a_portal_table_fails_when_it_is_built(mapping: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        PermissionTable.from_mapping(mapping)
    assert caught.value.field.startswith("permissions")


def test_a_denial_names_the_actor_the_command_and_the_reason() -> None:
    world = make_world()
    s = prepare(world, "register")
    with pytest.raises(PermissionDenied) as caught:
        world.flow.register(s.id, ACTORS[R.RECOMMENDING_UNIT])
    assert str(caught.value) == (
        "recommending_unit:rec-1@street_xq may not register: only collection_office may register"
    )


def test_docs_security_md_shows_the_default_table() -> None:
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert PermissionTable.default().to_markdown() in page, (
        "docs/security.md is stale: paste PermissionTable.default().to_markdown() into it"
    )

"""Rules change while suggestions are in flight: versioned workflow and deadline policy (issue 26).

Half a campaign runs under v1 (the library's workflow and default deadlines).  Then the
district deploys v2: the research period becomes 45 days, a 补充材料 step (asking the proposer
for more material) is added, and the state 'returned' is retired into 'registered' with a
declared migration.  The campaign finishes under v2.  Every history verifies against the
definition each event was written under, replay equals the stored rows, due times set under
v1 stand, and the report shows both versions.
"""

from __future__ import annotations

import datetime as dt

import pytest

from jianyi_flow import (
    DEFAULT_POLICY,
    SHANGHAI,
    WORKFLOW,
    Actor,
    CalendarDays,
    FakeClock,
    Flow,
    InvalidTransition,
    MemoryStore,
    MigrationMissing,
    Outcome,
    PermissionTable,
    Proposer,
    Rating,
    ReplyForm,
    ResearchMethod,
    Role,
    State,
    Step,
    SuggestionDraft,
    ValidationError,
    Workflow,
)
from jianyi_flow.domain.codec import replay
from jianyi_flow.domain.personal import pseudonymous_row
from jianyi_flow.domain.workflow import TRANSITIONS
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.report import build_report
from jianyi_flow.service.campaign_flow import make_flow
from jianyi_flow.service.permissions import Rule, Scope

OFFICE = Actor("office-1", Role.COLLECTION_OFFICE, unit="XFB")
START = dt.datetime(2024, 9, 2, 9, tzinfo=SHANGHAI)


def _unit(code: str) -> Actor:
    return Actor(f"staff-{code}", Role.HANDLING_UNIT, unit=code)


def _without_returned(states: object) -> object:
    if isinstance(states, list):
        return [s for s in states if s is not State.RETURNED]
    return states


def _v2_transitions() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for edge in TRANSITIONS:
        e = dict(edge)
        e["source"] = _without_returned(e["source"])
        if e["trigger"] == "accept_objection":
            e["dest"] = State.REGISTERED  # back with the office, registered, to be routed again
        out.append(e)
    out.append({"trigger": "request_materials", "source": [State.REGISTERED, State.TRANSFERRED, State.RESEARCHED],
                "dest": None})
    return out


V2 = Workflow("suggestion", _v2_transitions(), migrations={State.RETURNED: State.REGISTERED})
POLICY_V2 = DEFAULT_POLICY.with_step(Step.RESEARCH, CalendarDays(45), "test: the district's 2024 rule")
PERMISSIONS_V2 = PermissionTable.default().with_command(
    "request_materials", [Rule(Role.COLLECTION_OFFICE), Rule(Role.HANDLING_UNIT, Scope.LEAD_UNIT)])


def _draft(n: int) -> SuggestionDraft:
    return SuggestionDraft(title=f"建议{n}", subject="公共服务", problem="问题。", measures="措施。", area="A4",
                           topic="T15", proposer=Proposer("张三", account=f"wx_{n}"))


def _first_half(clock: FakeClock) -> tuple[MemoryStore, dict[str, list[str]]]:
    store = MemoryStore()
    flow = make_flow(yongchuan_2024(), store, clock)
    ids: dict[str, list[str]] = {"received": [], "returned": [], "transferred": [], "replied": []}
    for n in range(24):
        clock.advance(minutes=7)
        s = flow.receive(_draft(n), OFFICE)
        kind = ("received", "returned", "transferred", "replied")[n % 4]
        ids[kind].append(s.id)
        if kind == "received":
            continue
        flow.register(s.id, OFFICE)
        if kind == "returned":
            flow.transfer(s.id, OFFICE, lead_unit="FGW")
            flow.object_transfer(s.id, _unit("FGW"), reason="不属本单位职责")
            flow.accept_objection(s.id, OFFICE)
            continue
        flow.transfer(s.id, OFFICE, lead_unit="JTJ")
        if kind == "replied":
            flow.research(s.id, _unit("JTJ"), findings="属实", method=ResearchMethod.FORUM)
            flow.decide(s.id, _unit("JTJ"), outcome=Outcome.ADOPTED)
            flow.reply(s.id, _unit("JTJ"), text="已采纳", form=ReplyForm.WRITTEN)
    assert all(store.load(sid).state is State.RETURNED for sid in ids["returned"])
    return store, ids


def _v2(store: MemoryStore, clock: FakeClock) -> Flow:
    return make_flow(yongchuan_2024(), store, clock, workflow=V2, policy=POLICY_V2,
                     previous_workflows=[WORKFLOW], permissions=PERMISSIONS_V2)


def test_versions_are_names_and_digests_recorded_on_every_event() -> None:
    assert WORKFLOW.version.startswith("suggestion@") and V2.version.startswith("suggestion@")
    assert WORKFLOW.version != V2.version and DEFAULT_POLICY.version != POLICY_V2.version
    assert Workflow("suggestion", TRANSITIONS).version == WORKFLOW.version  # a digest of the content
    clock = FakeClock(START)
    store, ids = _first_half(clock)
    for sid in ids["transferred"]:
        s = store.load(sid)
        assert (s.workflow, s.policy) == (WORKFLOW.version, DEFAULT_POLICY.version)
        assert all((e.workflow, e.policy) == (WORKFLOW.version, DEFAULT_POLICY.version) for e in store.history(sid))


def test_a_workflow_without_a_migration_for_stored_states_is_refused_when_opened() -> None:
    clock = FakeClock(START)
    store, ids = _first_half(clock)
    no_migration = Workflow("suggestion", _v2_transitions())
    with pytest.raises(MigrationMissing) as caught:
        Flow(store, clock, workflow=no_migration)
    assert caught.value.value == "returned" and caught.value.suggestion_id in ids["returned"]


def test_half_a_campaign_under_v1_then_v2_verifies_replays_and_reports_both() -> None:
    clock = FakeClock(START)
    store, ids = _first_half(clock)
    v1_due = {sid: store.load(sid).due_at for sid in ids["transferred"]}

    clock.set(dt.datetime(2024, 10, 8, 9, tzinfo=SHANGHAI))
    flow = _v2(store, clock)
    returned = ids["returned"][0]
    with pytest.raises(InvalidTransition):  # not migrated yet: v2 has no 'returned'
        flow.transfer(returned, OFFICE, lead_unit="JTJ")
    moved = flow.migrate("v2 retires 'returned': such suggestions are registered again")
    assert sorted(e.suggestion_id for e in moved) == sorted(ids["returned"])
    assert all(e.kind == "migrate_state" and e.workflow == V2.version for e in moved)
    assert flow.migrate("again") == []

    # due times set under v1 stand; steps started now follow v2
    assert {sid: store.load(sid).due_at for sid in ids["transferred"]} == v1_due
    for sid in ids["received"]:
        flow.register(sid, OFFICE)
    for sid in ids["returned"] + ids["received"]:
        s = flow.transfer(sid, OFFICE, lead_unit="JTJ")
        assert s.due_at == flow.policy.due_for(Step.RESEARCH, clock.now(), flow.calendar)
        assert (s.policy, store.load(sid).policy) == (POLICY_V2.version, POLICY_V2.version)
        assert (s.due_at - clock.now()).days < 50  # 45 days, rolled to a working day
        flow.run_command("request_materials", sid, OFFICE, args={"what": "现场照片"},
                         reason="请补充现场照片")
    with pytest.raises(ValidationError):
        flow.run_command("not_a_command", ids["received"][0], OFFICE)

    # finish everything under v2
    unit = _unit("JTJ")
    for sid in ids["returned"] + ids["received"] + ids["transferred"]:
        flow.research(sid, unit, findings="属实", method=ResearchMethod.FIELD_VISIT)
        flow.decide(sid, unit, outcome=Outcome.PARTIALLY_ADOPTED, adopted_part="部分")
        flow.reply(sid, unit, text="已部分采纳", form=ReplyForm.PHONE)
    for n, sid in enumerate(ids["replied"]):
        flow.rate(sid, Actor(f"wx_{4 * n + 3}", Role.PROPOSER), rating=Rating.SATISFIED)

    assert flow.verify_all() == []
    for sid in (s for group in ids.values() for s in group):
        assert replay(store.history(sid)) == pseudonymous_row(store.load(sid))
        kinds = {e.workflow for e in store.history(sid)}
        assert kinds <= {WORKFLOW.version, V2.version}
    # a flow that only knows v1 cannot vouch for v2's events
    only_v1 = Flow(store, clock, workflow=V2, policy=POLICY_V2)  # v2 running, v1 not declared as known
    problems = only_v1.verify_all()
    assert problems and all("not known here" in p.problem for p in problems)

    report = build_report(yongchuan_2024(), store, clock.now())
    assert report.versions.split
    assert {row.version for row in report.versions.workflow} == {WORKFLOW.version, V2.version}
    assert {row.version for row in report.versions.policy} >= {DEFAULT_POLICY.version, POLICY_V2.version}
    under_v2 = build_report(yongchuan_2024(), store, clock.now(), workflow_version=V2.version)
    assert under_v2.suggestions == report.suggestions  # every suggestion's latest event is now v2's


def test_a_step_an_older_definition_never_had_is_reported_by_verification() -> None:
    clock = FakeClock(START)
    store, ids = _first_half(clock)
    flow = _v2(store, clock)
    flow.migrate("v2")
    sid = ids["received"][0]
    flow.register(sid, OFFICE)
    flow.run_command("request_materials", sid, OFFICE, reason="请补充")
    event = store.history(sid)[-1]
    assert WORKFLOW.explain(event) is not None  # v1 has no request_materials
    assert V2.explain(event) is None

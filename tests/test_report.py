"""The campaign report: every number checked against the hand-built campaign of report_fixtures.

The expected values below are worked out by hand from the dates in report_fixtures.py (the
comments there say which step of which suggestion is late and why), not read back from the
report.  Cross-checks against independent computations (store histories, quota.py, Flow's
own overdue query) cover the simulator-sized campaign.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

import attrs
import pytest

import report_fixtures as rf
from jianyi_flow import (
    SHANGHAI,
    Actor,
    FakeClock,
    Flow,
    MemoryStore,
    PermissionDenied,
    Proposer,
    Role,
    State,
    SuggestionDraft,
    ValidationError,
    replay,
)
from jianyi_flow.domain.calendar import CalendarOverrides, default_calendar, strict_calendar
from jianyi_flow.domain.deadlines import Step
from jianyi_flow.domain.model import Event
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.quota import quota_report_from_store
from jianyi_flow.report import CampaignReport, build_report, history_digest
from jianyi_flow.storage.base import Change, Store, iter_events, iter_suggestions


@pytest.fixture(scope="module")
def built() -> rf.Built:
    return rf.build()


@pytest.fixture(scope="module")
def report(built: rf.Built) -> CampaignReport:
    return build_report(built.campaign, built.store, rf.NOW)


def independent_digest(store: Store) -> str:
    """The digest as the issue defines it, computed straight from each suggestion's history."""
    lines = []
    for s in sorted(iter_suggestions(store), key=lambda s: s.id):
        lines += [f"{e.suggestion_id}:{e.version}:{e.hash}\n" for e in store.history(s.id)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# --- counts --------------------------------------------------------------------------------------


def test_counts_by_state_and_outcome(report: CampaignReport) -> None:
    assert report.suggestions == 30
    assert {k: v for k, v in report.by_state.items() if v} == {
        "registered": 1, "transferred": 2, "researched": 1, "declined": 1, "replied": 1, "rated": 21,
        "not_accepted": 1, "withdrawn": 1, "unrated": 1,
    }
    assert report.by_outcome == {"adopted": 14, "partially_adopted": 2, "declined": 8}
    assert report.decided == 24
    assert report.adoption_rate == pytest.approx(16 / 24)


def test_counts_by_phase_area_topic_channel_and_unit(report: CampaignReport) -> None:
    assert {p.code: p.count for p in report.by_phase} == {
        "before": 0, "launch": 2, "implementation": 28, "summary": 0, "after": 0}
    areas = {a.code: (a.suggestions, a.adopted, a.partially_adopted, a.declined, a.undecided) for a in report.by_area}
    assert areas == {"A1": (7, 4, 0, 2, 1), "A2": (4, 1, 1, 1, 1), "A3": (5, 2, 0, 1, 2), "A4": (5, 2, 1, 1, 1),
                     "A5": (3, 2, 0, 1, 0), "A6": (3, 2, 0, 1, 0), "A7": (3, 1, 0, 1, 1)}
    assert report.by_area[0].name == "产业发展"
    assert next(a for a in report.by_area if a.code == "A7").adoption_rate == pytest.approx(0.5)
    topics = {t.code: t.count for t in report.by_topic}
    assert topics[None] == 12 and len(topics) == 19 and set(topics.values()) == {1, 12}
    # the 15 recommended suggestions came on their unit's 推荐表; the other 15 by the citizen's own channel
    assert report.by_channel == {"online_portal": 13, "wechat": 1, "douyin": 0, "email": 0, "letter": 0,
                                 "on_site": 0, "circuit_visit": 0, "phone": 1, "recommendation_form": 15}
    assert {c.code: c.count for c in report.by_recommending_unit} == {
        "ZSL": 2, "SLL": 3, "QF": 2, "STHJ": 2, "JL": 2, "CS": 2, "CGJ": 1, "WHLY": 1, None: 15}
    assert {c.code: c.count for c in report.by_lead_unit} == {
        "FGW": 3, "JXW": 2, "SWW": 2, "CGJ": 2, "NYNC": 1, "STHJ": 2, "JTJ": 1, "SLL": 1, "WHLY": 1, "MZJ": 12}
    weeks = {w.week_start: w.count for w in report.arrivals_by_week}
    assert sum(weeks.values()) == 30
    assert weeks[dt.date(2024, 8, 5)] == 1  # s01 on Monday 08-05
    assert min(weeks) == dt.date(2024, 7, 29)  # the week holding launch day 08-01


# --- timeliness ----------------------------------------------------------------------------------


def test_on_time_per_step(report: CampaignReport) -> None:
    steps = {s.step: (s.judged, s.on_time, s.late, s.open_overdue, s.pending) for s in report.on_time_by_step}
    # register: 18 steps of s-suggestions (s12 twice: before its objection and after it was accepted; s11
    #           withdrawn in time not judged) + 12 plain; s09 open late
    # objection: s12 accepted 10-14 and s13 refused 11-28, both within the office's 15 days
    # research: s04 and reopened s04 twice; JTJ's research of s12 and SWW's first one of s13 ended by an
    #           objection before their due time, not judged; s08 open late (its extension refused), s14 late;
    #           s06 on time against its extended due time; s13 (again from the refusal) and s17 pending
    # reply: s04 twice, s05 late (due 10-08 after the National Day holiday), s18 pending
    assert steps == {
        "register": (30, 29, 1, 1, 0),
        "objection": (2, 2, 0, 0, 0),
        "research": (26, 24, 2, 1, 2),
        "reply": (24, 23, 1, 0, 1),
    }
    assert [s.step for s in report.on_time_by_step] == ["register", "objection", "research", "reply"]
    assert report.on_time_rate == pytest.approx(78 / 82)
    assert all((s.provisional_judged, s.provisional_pending) == (0, 0) for s in report.on_time_by_step)


def test_on_time_per_unit(report: CampaignReport) -> None:
    units = {u.unit: (u.judged, u.on_time) for u in report.on_time_by_unit}
    assert units == {"FGW": (6, 6), "JXW": (3, 3), "SWW": (2, 2), "CGJ": (4, 3), "NYNC": (2, 2), "STHJ": (4, 3),
                     "JTJ": (1, 0), "SLL": (2, 2), "WHLY": (2, 2), "MZJ": (24, 24)}
    # research and reply steps only: register-and-route and objection decisions are the office's
    assert sum(u.judged for u in report.on_time_by_unit) == 26 + 24


def test_an_approved_extension_moves_the_due_time_a_step_is_judged_against(
        built: rf.Built, report: CampaignReport) -> None:
    history = built.store.history("s06")
    transfer = next(e for e in history if e.kind == "transfer")
    decide = next(e for e in history if e.kind == "decide")
    original_due = dt.datetime.fromisoformat(transfer.changes["due_at"])
    assert decide.at > original_due  # late against the original due time...
    nync = next(u for u in report.on_time_by_unit if u.unit == "NYNC")
    assert (nync.judged, nync.on_time) == (2, 2)  # ...on time against the extended one


def test_extensions_requested_approved_and_refused(report: CampaignReport) -> None:
    ex = report.extensions
    # s06: asked for 20 days and approved; s08: asked for 10 days and refused
    assert (ex.requested, ex.approved, ex.rejected, ex.pending, ex.days) == (2, 1, 1, 0, 20)
    assert [(d.days, d.count) for d in ex.by_days] == [(20, 1)]
    assert ex.by_step == {"register": 0, "research": 1, "reply": 0}
    assert [(u.unit, u.requested, u.approved, u.rejected, u.days) for u in ex.by_unit] == [
        ("JTJ", 1, 0, 1, 0), ("NYNC", 1, 1, 0, 20)]
    assert report.legacy_events == {"return_transfer": 0, "extend": 0}


def test_an_extension_waiting_for_its_approver_is_pending() -> None:
    campaign = yongchuan_2024()
    clock = FakeClock(rf.at(9, 2))
    ids = rf.ChosenIds()
    flow = Flow(MemoryStore(), clock, campaign=campaign.code, ids=ids)
    me = rf.proposer_actor(1)
    ids.queue.append("x1")
    flow.receive(SuggestionDraft(title="t", subject="s", problem="p", measures="m", area="A1",
                                 proposer=Proposer(name="王五", account=me.id)), me)
    flow.register("x1", rf.OFFICE)
    flow.transfer("x1", rf.OFFICE, lead_unit="FGW")
    clock.set(rf.at(9, 20))
    flow.request_extension("x1", rf.unit_actor("FGW"), days=15, reason="需会商")
    report = build_report(campaign, flow.store, rf.at(9, 21))
    assert (report.extensions.requested, report.extensions.approved, report.extensions.pending) == (1, 0, 1)


def test_objections_accepted_and_refused(report: CampaignReport) -> None:
    ob = report.objections
    assert (ob.objected, ob.accepted, ob.rejected, ob.pending) == (2, 1, 1, 0)
    assert [(u.unit, u.objected, u.accepted, u.rejected) for u in ob.by_unit] == [
        ("SWW", 1, 0, 1), ("JTJ", 1, 1, 0)]  # in the campaign's unit order


def test_an_objection_the_office_has_not_decided_is_pending_and_can_be_overdue(built: rf.Built) -> None:
    campaign = yongchuan_2024()
    clock = FakeClock(rf.at(9, 2))
    ids = rf.ChosenIds()
    flow = Flow(MemoryStore(), clock, campaign=campaign.code, ids=ids)
    me = rf.proposer_actor(1)
    ids.queue.append("x1")
    flow.receive(SuggestionDraft(title="t", subject="s", problem="p", measures="m", area="A1",
                                 proposer=Proposer(name="王五", account=me.id)), me)
    flow.register("x1", rf.OFFICE)
    flow.transfer("x1", rf.OFFICE, lead_unit="FGW")
    clock.set(rf.at(9, 4))
    flow.object_transfer("x1", rf.unit_actor("FGW"), reason="不属本单位职责")
    # the office's 15 days run from the objection: due 09-19; at 09-13 pending (and due within a week),
    # at 09-30 overdue
    early = build_report(campaign, flow.store, rf.at(9, 13))
    assert early.objections.pending == 1 and early.by_state["objected"] == 1
    step = next(s for s in early.on_time_by_step if s.step == "objection")
    assert (step.judged, step.pending) == (0, 1)
    assert [(d.id, d.due_step) for d in early.due_soon] == [("x1", "objection")]
    late = build_report(campaign, flow.store, rf.at(9, 30))
    assert [(o.id, o.due_step, o.lead_unit) for o in late.overdue] == [("x1", "objection", "FGW")]
    step = next(s for s in late.on_time_by_step if s.step == "objection")
    assert (step.judged, step.late, step.open_overdue) == (1, 1, 1)


def test_a_step_interrupted_after_its_due_time_is_late_and_before_it_is_not_judged() -> None:
    campaign = yongchuan_2024()
    clock = FakeClock(rf.at(9, 2))
    ids = rf.ChosenIds()
    flow = Flow(MemoryStore(), clock, campaign=campaign.code, ids=ids)
    me = rf.proposer_actor(1)

    def draft() -> SuggestionDraft:
        return SuggestionDraft(title="t", subject="s", problem="p", measures="m", area="A1",
                               proposer=Proposer(name="王五", account=me.id))

    ids.queue.append("early")
    flow.receive(draft(), me)
    ids.queue.append("late")
    flow.receive(draft(), me)
    clock.set(rf.at(9, 3))
    flow.withdraw("early", me)  # register due 09-17: withdrawn in time
    clock.set(rf.at(9, 30))
    flow.withdraw("late", me)  # after the due time: the office was already late
    report = build_report(campaign, flow.store, rf.at(10, 1))
    register = next(s for s in report.on_time_by_step if s.step == Step.REGISTER.value)
    assert (register.judged, register.on_time, register.late, register.open_overdue) == (1, 0, 1, 0)
    assert report.overdue == ()


def end_of(month: int, day: int) -> dt.datetime:
    return rf.at(month, day).replace(hour=23, minute=59, second=59, microsecond=999999)


def test_overdue_list(report: CampaignReport, built: rf.Built) -> None:
    rows = [(o.id, o.due_step, o.due_at, o.provisional, o.lead_unit, o.working_days_overdue, o.state)
            for o in report.overdue]
    assert rows == [
        # research due 11-23 (a Saturday) → Monday 11-25; 11-26..11-29 and three December weeks = 19
        ("s08", "research", end_of(11, 25), False, "JTJ", 19, "transferred"),
        # register due 12-13 (received 11-28 + 15 days); 12-16..12-20 = 5
        ("s09", "register", end_of(12, 13), False, None, 5, "registered"),
    ]
    assert report.overdue[0].lead_unit_name == "区交通运输局"
    assert report.overdue[0].registration_number == built.flow.get("s08", rf.OFFICE).registration_number
    # Flow's own overdue query agrees, once the rating windows (not a unit's deadline) are left out
    flows = [s.id for s in built.flow.overdue(rf.OFFICE, rf.NOW) if s.due_step is not Step.RATE]
    assert flows == ["s08", "s09"]


def test_due_soon_list(report: CampaignReport, built: rf.Built) -> None:
    assert report.due_soon_until == rf.NOW + dt.timedelta(days=7)
    # s18's reply, due Wednesday 12-25: 12-23, 12-24 and 12-25 are the working days left.  s06's rating
    # window (due 12-22) is the proposer's, not a step: left out, as from the overdue list
    assert [(d.id, d.due_step, d.due_at, d.provisional, d.lead_unit, d.working_days_left) for d in report.due_soon] \
        == [("s18", "reply", end_of(12, 25), False, "JXW", 3)]
    flows = [s.id for s in built.flow.due_soon(rf.OFFICE, dt.timedelta(days=7), rf.NOW)
             if s.due_step is not Step.RATE]
    assert flows == ["s18"]
    wider = build_report(built.campaign, built.store, rf.NOW, due_within=dt.timedelta(days=60))
    assert [d.id for d in wider.due_soon] == ["s18", "s17", "s13"]  # 12-25, then 2025-01-20 and 2025-01-27
    assert build_report(built.campaign, built.store, rf.NOW, due_within=dt.timedelta(0)).due_soon == ()


# --- what was done: research methods, reply forms, adoption forms -----------------------------------


def test_research_methods_reply_forms_and_adoption_forms(report: CampaignReport) -> None:
    # researched: s01 on site, s16 by hearing, s17 by experts; the other 10 s-suggestions and the 12 plain
    # ones by written consultation (s04 counts once, by its latest research)
    assert {k: n for k, n in report.by_research_method.items() if n} == {
        "field_visit": 1, "hearing": 1, "expert_review": 1, "written_consultation": 22}
    assert list(report.by_research_method)[-1] == "unrecorded"
    # replied: s04 in person (its latest reply), s06 by phone, s12 online, the plain ones by SMS, 8 in writing
    assert {k: n for k, n in report.by_reply_form.items() if n} == {
        "written": 8, "phone": 1, "online": 1, "in_person": 1, "sms": 12}
    assert {k: n for k, n in report.by_adoption_form.items() if n} == {"policy": 1, "mechanism": 1}
    assert [(b.id, b.adoption_form) for b in report.summary_phase.adoptions] == [
        ("s01", "policy"), ("s03", "mechanism")]


# --- quota, satisfaction, summary phase, award ----------------------------------------------------


def test_quota_is_quota_py_over_the_store(report: CampaignReport, built: rf.Built) -> None:
    expected = quota_report_from_store(built.campaign, built.store)
    assert [(q.unit, q.recommended, q.required, q.met) for q in report.quota] == [
        (r.unit, r.recommended, r.required, r.met) for r in expected]
    assert {q.unit for q in report.quota if q.met} == {"ZSL", "SLL", "QF", "STHJ", "JL", "CS"}
    assert len(report.quota) == 43  # every street, town and department but the two organisers


def test_satisfaction_and_reopens(report: CampaignReport) -> None:
    s = report.satisfaction
    assert (s.satisfied, s.basically_satisfied, s.dissatisfied, s.rated, s.unrated, s.awaiting) == (18, 2, 1, 21, 1, 1)
    assert s.rate == pytest.approx(20 / 21)
    assert report.reopens == 1


def test_summary_phase(report: CampaignReport) -> None:
    sp = report.summary_phase
    assert sp.upward_reports == {"original": 1, "excerpt": 3, "analysis": 1}
    assert [b.id for b in sp.originals] == ["s03"]
    assert sp.not_adopted == {"reward_candidates": 0, "originals": 0, "typical_cases": 0}
    assert sp.forwarded_to_city == 1
    ev = sp.evaluations
    assert ev.count == 3
    assert (ev.mean_quality, ev.mean_value, ev.mean_effect, ev.mean_total) == pytest.approx(
        (23 / 3, 8.0, 7.0, 68 / 3))
    assert [(b.id, b.reward_tier, b.evaluation_total) for b in sp.reward_candidates] == [
        ("s04", "special", 27), ("s01", "first", 24)]
    assert sp.reward_tiers == {"special": 1, "first": 1, "second": 0, "third": 0, "encouragement": 0}
    assert [(b.id, b.adopted_into) for b in sp.adoptions] == [
        ("s01", "《永川区科技创新服务平台建设实施方案》"), ("s03", "区商务委2025年开放通道工作要点")]
    assert [b.id for b in sp.typical_cases] == ["s02"]
    # the excerpt report's content: excerpts and reward candidates, best tier first
    assert [x.brief.id for x in sp.selected] == ["s04", "s01", "s02"]
    assert sp.selected[1].brief.forwarded_to_city and sp.selected[1].brief.upward_reports == ("excerpt",)


def test_highlights_prefer_typical_then_rewarded_then_scored(report: CampaignReport) -> None:
    a1 = next(h for h in report.highlights if h.area == "A1")
    assert [b.id for b in a1.items] == ["s02", "s01", "b08"]
    assert all(len(h.items) <= 3 for h in report.highlights)
    assert all(b.outcome in ("adopted", "partially_adopted") for h in report.highlights for b in h.items)


def test_organisation_award(report: CampaignReport) -> None:
    # STHJ met its quota with an adopted suggestion but is 75% on time as lead; JL and CS had none adopted;
    # CGJ and WHLY recommended one each (quota 2)
    assert [(a.rank, a.unit, a.adopted, a.recommended, a.on_time_rate) for a in report.organisation_award] == [
        (1, "SLL", 3, 3, 1.0), (2, "QF", 2, 2, None), (3, "ZSL", 2, 2, None)]


# --- the digest ----------------------------------------------------------------------------------


def test_events_and_digest_match_the_store(report: CampaignReport, built: rf.Built) -> None:
    assert report.events == sum(len(built.store.history(s.id)) for s in iter_suggestions(built.store)) == 211
    assert report.history_digest == independent_digest(built.store)


def test_digest_equal_for_identical_runs_and_differs_when_one_event_differs(report: CampaignReport) -> None:
    again = rf.build()
    assert build_report(again.campaign, again.store, rf.NOW).history_digest == report.history_digest
    variant = rf.build(variant=True)
    other = build_report(variant.campaign, variant.store, rf.NOW)
    assert other.events == report.events
    assert other.history_digest != report.history_digest


def test_digest_does_not_depend_on_the_order_rows_come_in() -> None:
    rows = [(f"s{i:02d}", v, hashlib.sha256(f"{i}-{v}".encode()).hexdigest()) for i in range(20) for v in (1, 2, 10)]
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    assert history_digest(shuffled) == history_digest(rows)
    # version 10 sorts after 2 (numbers, not text)
    text = "".join(f"{s}:{v}:{h}\n" for s, v, h in rows)
    assert history_digest(rows) == hashlib.sha256(text.encode()).hexdigest()


def test_the_same_log_in_another_store_gives_the_same_report(report: CampaignReport, built: rf.Built) -> None:
    copy = MemoryStore()
    ids = sorted((s.id for s in iter_suggestions(built.store)), reverse=True)  # inserted in another order
    for sid in ids:
        events = built.store.history(sid)
        for i, event in enumerate(events):
            row = replay(events[: i + 1])
            assert row is not None
            copy.commit(Change(row, event, i))
    assert build_report(built.campaign, copy, rf.NOW).to_dict() == report.to_dict()


def test_the_same_campaign_on_sqlite_gives_the_same_report(report: CampaignReport) -> None:
    from jianyi_flow.sql import SqlStore

    with SqlStore.open("sqlite://") as store:
        on_sql = rf.build(store=store)
        assert build_report(on_sql.campaign, store, rf.NOW).to_dict() == report.to_dict()


def test_only_the_campaigns_suggestions_are_reported() -> None:
    b = rf.build()
    before = build_report(b.campaign, b.store, rf.NOW)
    ids = rf.ChosenIds()
    other = Flow(b.store, FakeClock(rf.at(9, 1)), campaign="OTHER2024", ids=ids)
    me = rf.proposer_actor(99)
    ids.queue.append("s00")
    other.receive(SuggestionDraft(title="t", subject="s", problem="p", measures="m", area="A1",
                                  proposer=Proposer(name="赵六", phone="13700000000", account=me.id)), me)
    after = build_report(b.campaign, b.store, rf.NOW)
    assert after.to_dict() == before.to_dict()


def test_a_report_as_of_an_earlier_time_leaves_later_events_out(built: rf.Built) -> None:
    then = rf.at(9, 1, 9)  # before s02's decision at 10:00 that day
    report = build_report(built.campaign, built.store, then)
    # received by then: s01 (rated 08-30), s02, s07 and s14 (transferred)
    assert report.suggestions == 4
    assert {k: v for k, v in report.by_state.items() if v} == {"rated": 1, "transferred": 3}
    assert report.summary_phase.forwarded_to_city == 0 and report.reopens == 0
    # the same as the report of a store that holds only the events up to then
    cut = MemoryStore()
    for s in iter_suggestions(built.store):
        events = [e for e in built.store.history(s.id) if e.at <= then]
        for i, event in enumerate(events):
            row = replay(events[: i + 1])
            assert row is not None
            cut.commit(Change(row, event, i))
    assert build_report(built.campaign, cut, then).to_dict() == report.to_dict()
    assert report.events == sum(len(cut.history(s.id)) for s in iter_suggestions(cut))


# --- masking -------------------------------------------------------------------------------------


def test_default_report_has_no_phone_address_or_confidential_name(report: CampaignReport, built: rf.Built) -> None:
    text = json.dumps(report.to_dict(), ensure_ascii=False)
    for secret in (*built.phones, *built.addresses, rf.CONFIDENTIAL_NAME):
        assert secret not in text
    assert report.masked and report.viewer is None
    s04 = next(x for x in report.summary_phase.selected if x.brief.id == "s04")
    assert s04.proposer.name == "李**" and s04.proposer.address == "***"
    assert "建议人：李**。" in s04.problem  # the confidential proposer's signature in the text is masked
    s01 = next(x for x in report.summary_phase.selected if x.brief.id == "s01")
    assert "*" * 11 in s01.problem  # the phone the proposer typed into the text is scrubbed


def test_unmasked_report_for_the_collection_office(built: rf.Built) -> None:
    full = build_report(built.campaign, built.store, rf.NOW, unmasked=True, actor=rf.OFFICE)
    text = json.dumps(full.to_dict(), ensure_ascii=False)
    for n in (1, 2, 4):  # the selected suggestions carry their proposers
        assert rf.phone_of(n) in text and rf.address_of(n) in text
    assert rf.CONFIDENTIAL_NAME in text
    assert not full.masked and full.viewer == str(rf.OFFICE)


@pytest.mark.parametrize("actor", [None, Actor("u-1", Role.HANDLING_UNIT, unit="FGW"),
                                   Actor("l-1", Role.LEADERSHIP), Actor("p-1", Role.PROPOSER)])
def test_unmasked_needs_the_collection_office(built: rf.Built, actor: Actor | None) -> None:
    with pytest.raises(PermissionDenied):
        build_report(built.campaign, built.store, rf.NOW, unmasked=True, actor=actor)


@pytest.mark.parametrize(("name", "value"), [
    ("page", 0), ("due_within", dt.timedelta(days=-1)), ("due_within", 7),
    ("workflow_version", 3), ("policy_version", ""),
])
def test_bad_arguments(built: rf.Built, name: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        build_report(built.campaign, built.store, rf.NOW, **{name: value})  # type: ignore[arg-type]
    assert caught.value.field == name


def test_a_naive_now_is_refused(built: rf.Built) -> None:
    with pytest.raises(ValidationError):
        build_report(built.campaign, built.store, dt.datetime(2024, 12, 20))


def test_json_has_the_required_keys(report: CampaignReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    for key in ("suggestions", "by_state", "by_outcome", "by_area", "on_time_rate", "overdue", "due_soon", "quota",
                "satisfaction", "events", "history_digest", "calendar_mode", "provisional_note", "versions",
                "objections", "extensions", "by_research_method", "by_reply_form", "by_adoption_form"):
        assert key in data
    assert data["overdue"][0]["due_at"] == "2024-11-25T23:59:59.999999+08:00"
    assert data["overdue"][0]["provisional"] is False
    assert (data["calendar_mode"], data["provisional_note"]) == ("provisional", None)
    assert data["generated_at"] == rf.NOW.isoformat()


# --- provisional deadlines (暂定) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def provisional(built: rf.Built) -> CampaignReport:
    return build_report(built.campaign, rf.provisional(built.store), rf.NOW)


def test_provisional_deadlines_are_marked_where_the_report_shows_them(provisional: CampaignReport) -> None:
    assert [(o.id, o.provisional) for o in provisional.overdue] == [("s08", True), ("s09", False)]
    assert [(d.id, d.provisional) for d in provisional.due_soon] == [("s18", True)]
    steps = {s.step: (s.provisional_judged, s.provisional_pending) for s in provisional.on_time_by_step}
    # s08's overdue research is judged (late) against a provisional due time; s13's research and s18's reply
    # are pending on one
    assert steps == {"register": (0, 0), "objection": (0, 0), "research": (1, 1), "reply": (0, 1)}
    assert provisional.provisional_deadlines == 3  # open: s08 overdue, s13 and s18 pending
    assert provisional.provisional_years == (2024, 2025)  # s13's research is due 2025-01-27
    assert provisional.calendar_mode == "provisional"
    # the report's calendar has the official 2024 and 2025 schedules: those deadlines wait to be re-timed
    note = provisional.provisional_note
    assert note == "标“暂定”的期限：2024年、2025年的正式安排已载入日历，这些期限尚待按正式安排重新计算。"


def test_marking_deadlines_provisional_changes_nothing_else(report: CampaignReport,
                                                            provisional: CampaignReport) -> None:
    ignored = {"provisional_deadlines", "provisional_years", "provisional_note", "overdue", "due_soon",
               "on_time_by_step", "history_digest"}
    left = {k: v for k, v in report.to_dict().items() if k not in ignored}
    right = {k: v for k, v in provisional.to_dict().items() if k not in ignored}
    assert left == right
    assert provisional.history_digest != report.history_digest  # three events differ


def test_the_calendar_mode_is_the_one_of_the_calendar_the_report_was_built_with(
        built: rf.Built, report: CampaignReport) -> None:
    assert report.calendar_mode == "provisional"  # default_calendar(), the mode Flow runs in by default
    strict = build_report(built.campaign, built.store, rf.NOW, calendar=strict_calendar())
    assert strict.calendar_mode == "strict" and strict.provisional_note is None


NOTICE_2027 = {
    "source": "国务院办公厅关于2027年部分节假日安排的通知（测试用，虚构）",
    "covered_years": [2027],
    "holidays": {"2027-01-01": "元旦", **{f"2027-02-{d:02d}": "春节" for d in range(6, 13)}},
    "working_days": {"2027-02-13": "春节", "2027-02-14": "春节"},
}
"""A made-up 2027 notice (a few of its days are enough here): it declares 2027 covered."""


def test_a_campaign_into_a_year_without_a_schedule_is_marked_until_the_notice_is_loaded() -> None:
    """Issue 22: deployed in December 2026, deadlines reach into 2027; then the 2027 notice arrives."""
    campaign = yongchuan_2024()
    clock = FakeClock(dt.datetime(2026, 12, 7, 10, tzinfo=SHANGHAI))
    ids = rf.ChosenIds()
    flow = Flow(MemoryStore(), clock, campaign=campaign.code, ids=ids)
    me = rf.proposer_actor(1)

    def received(sid: str) -> None:
        ids.queue.append(sid)
        flow.receive(SuggestionDraft(title=sid, subject="s", problem="p", measures="m", area="A1",
                                     proposer=Proposer(name="王五", account=me.id)), me)

    for sid in ("x1", "x2"):
        received(sid)
        flow.register(sid, rf.OFFICE)
        flow.transfer(sid, rf.OFFICE, lead_unit="FGW")  # research due in February 2027: provisional
    clock.set(dt.datetime(2026, 12, 20, 10, tzinfo=SHANGHAI))
    received("x3")  # registration due 2027-01-04: provisional
    before = build_report(campaign, flow.store, clock.now(), due_within=dt.timedelta(days=16))
    assert before.calendar_mode == "provisional"
    assert (before.provisional_deadlines, before.provisional_years) == (3, (2027,))
    assert before.provisional_note == (
        "标“暂定”的期限：国务院办公厅2027年部分节假日安排尚未发布，期限按《全国年节及纪念日放假办法》推算（未计调休），"
        "正式安排发布后重新计算。")
    assert [(d.id, d.due_step, d.provisional) for d in before.due_soon] == [("x3", "register", True)]
    steps = {s.step: s.provisional_pending for s in before.on_time_by_step}
    assert steps == {"register": 1, "objection": 0, "research": 2, "reply": 0}

    # x1 is decided on a provisional deadline; the notice is loaded and not yet applied; then re-timed
    clock.set(dt.datetime(2027, 1, 6, 10, tzinfo=SHANGHAI))
    flow.research("x1", rf.unit_actor("FGW"), findings="f", method="forum")
    flow.decide("x1", rf.unit_actor("FGW"), outcome="adopted")
    official = default_calendar().with_overrides(CalendarOverrides.from_mapping(NOTICE_2027))
    waiting = build_report(campaign, flow.store, clock.now(), calendar=official)
    assert waiting.provisional_note == "标“暂定”的期限：2027年的正式安排已载入日历，这些期限尚待按正式安排重新计算。"
    clock.set(dt.datetime(2027, 1, 7, 10, tzinfo=SHANGHAI))
    flow.retime("国务院办公厅2027年节假日安排通知已发布", calendar=official)
    after = build_report(campaign, flow.store, clock.now(), calendar=official)
    assert after.provisional_deadlines == 0 and after.provisional_note is None
    assert [(o.id, o.provisional) for o in after.overdue] == [("x3", False)]  # registration due 01-04
    research = next(s for s in after.on_time_by_step if s.step == "research")
    # x1's research was judged (on time) against the provisional due time in force when it was decided
    assert (research.judged, research.on_time, research.provisional_judged, research.provisional_pending) \
        == (1, 1, 1, 0)
    assert flow.verify_all() == []


# --- versions ------------------------------------------------------------------------------------


def test_one_version_when_one_flow_wrote_everything(report: CampaignReport, built: rf.Built) -> None:
    events = [e for s in iter_suggestions(built.store) for e in built.store.history(s.id)]
    (workflow,) = report.versions.workflow
    (policy,) = report.versions.policy
    assert (workflow.version, workflow.suggestions, workflow.events) == (built.flow.workflow.version, 30, 211)
    assert (policy.version, policy.suggestions) == (built.flow.policy_version, 30)
    assert policy.events == sum(1 for e in events if e.policy == built.flow.policy_version) > 0
    assert workflow.first_event_at == rf.at(8, 5)
    assert not report.versions.split
    assert (report.workflow_version, report.policy_version) == (None, None)


def test_a_store_written_under_two_versions_is_split_and_can_be_reported_per_version() -> None:
    t = rf.two_versions()
    campaign, store, now, v1, v2 = t.campaign, t.store, t.now, t.v1, t.v2
    assert v1.workflow.version != v2.workflow.version and v1.policy_version != v2.policy_version

    report = build_report(campaign, store, now)
    assert report.versions.split
    workflow = {r.version: (r.suggestions, r.events) for r in report.versions.workflow}
    assert workflow == {v1.workflow.version: (1, 3), v2.workflow.version: (2, 2)}
    policy = {r.version: (r.suggestions, r.events) for r in report.versions.policy}
    # every event records the policy of the flow that wrote it, as it records the workflow
    assert policy == {v1.policy_version: (1, 3), v2.policy_version: (2, 2)}
    assert [r.version for r in report.versions.workflow] == [v1.workflow.version, v2.workflow.version]

    only_v1 = build_report(campaign, store, now, workflow_version=v1.workflow.version)
    assert only_v1.suggestions == 1 and only_v1.workflow_version == v1.workflow.version
    assert {k for k, n in only_v1.by_state.items() if n} == {"received"}  # x2
    assert only_v1.events == len(store.history("x2"))
    only_v2 = build_report(campaign, store, now, workflow_version=v2.workflow.version)
    assert only_v2.suggestions == 2 and only_v2.events == len(store.history("x1")) + len(store.history("x3"))
    # x1's events written under v1 are in the v2 report: it runs under v2 now
    assert {r.version: r.events for r in only_v2.versions.workflow} == {
        v1.workflow.version: 2, v2.workflow.version: 2}
    by_policy = build_report(campaign, store, now, policy_version=v2.policy_version)
    assert sorted(s for s, n in by_policy.by_state.items() for _ in range(n)) == ["received", "transferred"]
    assert build_report(campaign, store, now, workflow_version="no-such-version").suggestions == 0


# --- stores written by earlier versions -------------------------------------------------------------


def as_written_by_an_earlier_version(history: list[Event]) -> list[Event]:
    """``history`` as a version before objections, extension requests and versions wrote it.

    s12's objection and the office's agreement become one ``return_transfer`` by the unit;
    s06's request and approval one ``extend`` by the office, with an approver in its payload;
    no event records a workflow or policy version.
    """
    kinds = {e.kind for e in history}
    out: list[Event] = []
    for e in history:
        changes = {k: v for k, v in e.changes.items() if k != "policy"}
        e = attrs.evolve(e, workflow=None, policy=None, changes=changes, notices=())
        if e.kind == "object_transfer" and "accept_objection" in kinds:
            continue  # folded into the return below
        if e.kind == "accept_objection":
            objected = next(x for x in history if x.kind == "object_transfer")
            e = attrs.evolve(e, kind="return_transfer", from_state=State.TRANSFERRED, actor=objected.actor,
                             at=objected.at, reason=objected.reason,
                             changes={**changes, "objection_due_at": None})
        if e.kind == "request_extension" and "approve_extension" in kinds:
            continue  # folded into the extend below
        if e.kind == "approve_extension":
            e = attrs.evolve(e, kind="extend", actor=rf.OFFICE, payload={"days": 20, "approver": "区政府办"},
                             changes={"due_at": changes["due_at"], "extended": True})
        out.append(e)
    return out


def test_an_earlier_version_s_returns_and_extensions_are_counted(built: rf.Built, report: CampaignReport) -> None:
    old = build_report(built.campaign, rf.rewrite(built.store, as_written_by_an_earlier_version), rf.NOW)
    assert old.legacy_events == {"return_transfer": 1, "extend": 1}
    # the return counts as an objection the office accepted; s13's refused objection is as before
    ob = old.objections
    assert (ob.objected, ob.accepted, ob.rejected) == (2, 1, 1)
    assert [(u.unit, u.objected, u.accepted, u.rejected) for u in ob.by_unit] == [
        ("SWW", 1, 0, 1), ("JTJ", 1, 1, 0)]
    # the extend counts as requested and approved, for its days; s08's refusal is as before
    ex = old.extensions
    assert (ex.requested, ex.approved, ex.rejected, ex.days) == (2, 1, 1, 20)
    assert [(u.unit, u.requested, u.approved, u.days) for u in ex.by_unit] == [("JTJ", 1, 0, 0), ("NYNC", 1, 1, 20)]
    # timeliness: s06 still on time against its extended due time; s12's return ended JTJ's research
    # before its due time (not judged) and there is no separate objection step to judge for it
    steps = {s.step: (s.judged, s.on_time) for s in old.on_time_by_step}
    assert steps == {"register": (30, 29), "objection": (1, 1), "research": (26, 24), "reply": (24, 23)}
    assert {u.unit: (u.judged, u.on_time) for u in old.on_time_by_unit} == {
        u.unit: (u.judged, u.on_time) for u in report.on_time_by_unit}
    assert [(r.version, r.suggestions, r.events) for r in old.versions.workflow] == [("unversioned", 30, 209)]
    assert [(r.version, r.suggestions) for r in old.versions.policy] == [("unversioned", 30)]


# --- a simulated campaign, cross-checked against independent computations --------------------------


def test_simulated_campaign_agrees_with_the_rows() -> None:
    from jianyi_flow.simulation import CampaignSimulator, SimulationConfig

    campaign = yongchuan_2024()
    store = MemoryStore()
    # no handling tail: the run stops when the summary phase ends, with slow units' steps still open
    sim = CampaignSimulator(campaign, store, seed=7, suggestions=300, config=SimulationConfig(tail_days=0))
    now = sim.run().ended
    report = build_report(campaign, store, now)
    rows = list(iter_suggestions(store))
    assert report.suggestions == len(rows) == 300
    assert report.events == sum(1 for _ in iter_events(store))
    assert report.history_digest == independent_digest(store)
    assert report.by_state == {s.value: sum(1 for r in rows if r.state is s) for s in State}
    assert sum(report.by_outcome.values()) == report.decided == sum(1 for r in rows if r.outcome is not None)
    assert report.satisfaction.rated == sum(1 for r in rows if r.rating is not None)
    assert report.reopens == sum(r.reopen_count for r in rows)
    events = list(iter_events(store))
    assert report.extensions.approved == sum(1 for e in events if e.kind == "approve_extension")
    assert report.extensions.requested == sum(1 for e in events if e.kind == "request_extension")
    assert report.objections.objected == sum(1 for e in events if e.kind == "object_transfer")
    assert {a.code: a.suggestions for a in report.by_area} == {
        code: sum(1 for r in rows if r.area == code) for code in campaign.area_codes}
    overdue = [s.id for s in sim.flow.overdue(rf.OFFICE, now) if s.due_step is not Step.RATE]
    assert [o.id for o in report.overdue] == overdue
    assert overdue, "the run should leave some steps overdue"
    for step in report.on_time_by_step:
        assert step.judged == step.on_time + step.late
        assert step.open_overdue == sum(1 for o in report.overdue if o.due_step == step.step)

"""The campaign report: every number checked against the hand-built campaign of report_fixtures.

The expected values below are worked out by hand from the dates in report_fixtures.py (the
comments there say which step of which suggestion is late and why), not read back from the
report.  Cross-checks against independent computations (store histories, quota.py, Flow's
own overdue query) cover the simulator-sized campaign.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import random

import pytest

import report_fixtures as rf
from jianyi_flow import (
    Actor,
    FakeClock,
    Flow,
    MemoryStore,
    PermissionDenied,
    Proposer,
    Query,
    Role,
    State,
    StoreError,
    Suggestion,
    SuggestionDraft,
    ValidationError,
    replay,
)
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
    assert report.by_channel == {"online_portal": 16, "wechat": 3, "douyin": 2, "email": 2, "letter": 2,
                                 "on_site": 2, "circuit_visit": 1, "phone": 2, "recommendation_form": 0}
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
    # register: 18 steps of s-suggestions (s12 twice, s11 withdrawn in time not judged) + 12 plain; s09 open late
    # research: s04 and reopened s04 twice, s12's returned transfer not judged, s08 open late, s14 late;
    #           s13 and s17 pending
    # reply: s04 twice, s05 late (due 10-08 after the National Day holiday), s18 pending
    assert steps == {
        "register": (30, 29, 1, 1, 0),
        "research": (26, 24, 2, 1, 2),
        "reply": (24, 23, 1, 0, 1),
    }
    assert report.on_time_rate == pytest.approx(76 / 80)


def test_on_time_per_unit(report: CampaignReport) -> None:
    units = {u.unit: (u.judged, u.on_time) for u in report.on_time_by_unit}
    assert units == {"FGW": (6, 6), "JXW": (3, 3), "SWW": (2, 2), "CGJ": (4, 3), "NYNC": (2, 2), "STHJ": (4, 3),
                     "JTJ": (1, 0), "SLL": (2, 2), "WHLY": (2, 2), "MZJ": (24, 24)}
    # research and reply steps only: register-and-route is the office's
    assert sum(u.judged for u in report.on_time_by_unit) == 26 + 24


def test_an_extension_moves_the_due_time_a_step_is_judged_against(built: rf.Built, report: CampaignReport) -> None:
    history = built.store.history("s06")
    transfer = next(e for e in history if e.kind == "transfer")
    decide = next(e for e in history if e.kind == "decide")
    original_due = dt.datetime.fromisoformat(transfer.changes["due_at"])
    assert decide.at > original_due  # late against the original due time...
    nync = next(u for u in report.on_time_by_unit if u.unit == "NYNC")
    assert (nync.judged, nync.on_time) == (2, 2)  # ...on time against the extended one
    assert report.extensions.count == 1
    assert report.extensions.by_step["research"] == 1
    assert [(c.code, c.count) for c in report.extensions.by_unit] == [("NYNC", 1)]


def test_a_step_interrupted_after_its_due_time_is_late_and_before_it_is_not_judged() -> None:
    campaign = yongchuan_2024()
    clock = FakeClock(rf.at(9, 2))
    flow = Flow(MemoryStore(), clock, campaign=campaign.code)

    def draft() -> SuggestionDraft:
        return SuggestionDraft(title="t", subject="s", problem="p", measures="m", area="A1",
                               proposer=Proposer(name="王五"))

    flow.receive(draft(), rf.PROPOSER, suggestion_id="early")
    flow.receive(draft(), rf.PROPOSER, suggestion_id="late")
    clock.set(rf.at(9, 3))
    flow.withdraw("early", rf.PROPOSER)  # register due 09-17: withdrawn in time
    clock.set(rf.at(9, 30))
    flow.withdraw("late", rf.PROPOSER)  # after the due time: the office was already late
    report = build_report(campaign, flow.store, rf.at(10, 1))
    register = next(s for s in report.on_time_by_step if s.step == Step.REGISTER.value)
    assert (register.judged, register.on_time, register.late, register.open_overdue) == (1, 0, 1, 0)
    assert report.overdue == ()


def test_overdue_list(report: CampaignReport, built: rf.Built) -> None:
    rows = [(o.id, o.due_step, o.due_at, o.lead_unit, o.working_days_overdue, o.state) for o in report.overdue]
    assert rows == [
        # research due 11-23 (a Saturday) → Monday 11-25; 11-26..11-29 and three December weeks = 19
        ("s08", "research", rf.at(11, 25).replace(hour=23, minute=59, second=59, microsecond=999999), "JTJ", 19,
         "transferred"),
        # register due 12-13 (received 11-28 + 15 days); 12-16..12-20 = 5
        ("s09", "register", rf.at(12, 13).replace(hour=23, minute=59, second=59, microsecond=999999), None, 5,
         "registered"),
    ]
    assert report.overdue[0].lead_unit_name == "区交通运输局"
    assert report.overdue[0].registration_number == built.flow.get("s08").registration_number
    # Flow's own overdue query agrees, once the rating windows (not a unit's deadline) are left out
    flows = [s.id for s in built.flow.overdue(rf.NOW) if s.due_step != Step.RATE.value]
    assert flows == ["s08", "s09"]


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
    assert report.events == sum(len(built.store.history(s.id)) for s in iter_suggestions(built.store)) == 205
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
    other = Flow(b.store, FakeClock(rf.at(9, 1)), campaign="OTHER2024")
    other.receive(SuggestionDraft(title="t", subject="s", problem="p", measures="m", area="A1",
                                  proposer=Proposer(name="赵六", phone="13700000000")), rf.PROPOSER,
                  suggestion_id="s00")
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


def test_bad_arguments(built: rf.Built) -> None:
    with pytest.raises(ValidationError):
        build_report(built.campaign, built.store, dt.datetime(2024, 12, 20))  # naive
    with pytest.raises(ValidationError):
        build_report(built.campaign, built.store, rf.NOW, page=0)


def test_the_garbage_collector_is_back_on_after_a_report_even_a_failed_one(built: rf.Built) -> None:
    class Broken(MemoryStore):
        def query(self, query: Query) -> list[Suggestion]:
            raise StoreError("connection lost")

        def export_events(self, after_id: str | None, limit: int) -> list[Event]:
            raise StoreError("connection lost")

    assert gc.isenabled()
    build_report(built.campaign, built.store, rf.NOW)
    assert gc.isenabled()
    with pytest.raises(StoreError):
        build_report(built.campaign, Broken(), rf.NOW)
    assert gc.isenabled()


def test_json_has_the_required_keys(report: CampaignReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    for key in ("suggestions", "by_state", "by_outcome", "by_area", "on_time_rate", "overdue", "quota",
                "satisfaction", "events", "history_digest"):
        assert key in data
    assert data["overdue"][0]["due_at"] == "2024-11-25T23:59:59.999999+08:00"
    assert data["generated_at"] == rf.NOW.isoformat()


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
    assert report.extensions.count == sum(1 for e in iter_events(store) if e.kind == "extend")
    assert {a.code: a.suggestions for a in report.by_area} == {
        code: sum(1 for r in rows if r.area == code) for code in campaign.area_codes}
    overdue = [s.id for s in sim.flow.overdue(now) if s.due_step != Step.RATE.value]
    assert [o.id for o in report.overdue] == overdue
    assert overdue, "the run should leave some steps overdue"
    for step in report.on_time_by_step:
        assert step.judged == step.on_time + step.late
        assert step.open_overdue == sum(1 for o in report.overdue if o.due_step == step.step)

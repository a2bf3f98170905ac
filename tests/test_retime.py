"""Deadlines counted over provisional days, and their re-timing when the official schedule arrives (issue 22).

A portal deployed in December keeps working: a deadline reaching into a year whose State
Council schedule is not published yet is counted on the provisional calendar and marked
so; loading the official year re-counts every such open deadline with a recorded event.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jianyi_flow import (
    ALLOW_ALL,
    SHANGHAI,
    Actor,
    CalendarNotCovered,
    FakeClock,
    Flow,
    MemoryStore,
    Proposer,
    ResearchMethod,
    Role,
    State,
    Step,
    SuggestionDraft,
    ValidationError,
)
from jianyi_flow.domain.calendar import CalendarOverrides, default_calendar, strict_calendar

OFFICE = Actor("office-1", Role.COLLECTION_OFFICE, unit="zjb")
UNIT = Actor("unit-1", Role.HANDLING_UNIT, unit="u_traffic")
NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)

# A made-up 2027 notice for the test: it declares 2027 covered, moves 春节 one day later than
# the 办法 derives and adds 调休 Saturdays, so re-counted deadlines must change.
NOTICE_2027 = """
source = "国务院办公厅关于2027年部分节假日安排的通知（测试用，虚构）"
covered_years = [2027]

[holidays]
"2027-01-01" = "元旦"
"2027-02-06" = "春节"
"2027-02-07" = "春节"
"2027-02-08" = "春节"
"2027-02-09" = "春节"
"2027-02-10" = "春节"
"2027-02-11" = "春节"
"2027-02-12" = "春节"
"2027-04-05" = "清明"
"2027-05-01" = "劳动节"
"2027-05-02" = "劳动节"
"2027-05-03" = "劳动节"
"2027-06-09" = "端午"
"2027-09-15" = "中秋"
"2027-10-01" = "国庆"
"2027-10-02" = "国庆"
"2027-10-03" = "国庆"
"2027-10-04" = "国庆"
"2027-10-05" = "国庆"
"2027-10-06" = "国庆"
"2027-10-07" = "国庆"

[working_days]
"2027-02-13" = "春节"
"2027-02-14" = "春节"
"2027-09-26" = "国庆"
"2027-10-09" = "国庆"
"""


def _draft(n: int) -> SuggestionDraft:
    return SuggestionDraft(title=f"建议{n}", subject="公共服务", problem="问题。", measures="措施。", area="a1",
                           proposer=Proposer("张三"))


def _transferred(flow: Flow, n: int) -> str:
    s = flow.receive(_draft(n), OFFICE)
    flow.register(s.id, OFFICE)
    return flow.transfer(s.id, OFFICE, lead_unit="u_traffic").id


@pytest.fixture
def notice(tmp_path: Path) -> CalendarOverrides:
    path = tmp_path / "2027.toml"
    path.write_text(NOTICE_2027, encoding="utf-8")
    return CalendarOverrides.from_file(path)


def test_a_portal_keeps_working_in_december_and_marks_provisional_deadlines() -> None:
    clock = FakeClock(NOW)
    flow = Flow(MemoryStore(), clock)
    sid = _transferred(flow, 1)
    s = flow.store.load(sid)
    # research is due 60 days after 2026-12-07: in 2027, counted over provisional days
    assert s.due_step is Step.RESEARCH and s.due_at is not None and s.due_at.year == 2027
    assert s.due_provisional
    events = flow.store.history(sid)
    assert events[-1].changes["due_provisional"] is True
    assert [x.id for x in flow.list_suggestions(OFFICE, provisional=True).items] == [sid]
    health = flow.calendar_health()
    assert health.provisional_deadlines == 1 and health.earliest_provisional_due == s.due_at
    assert health.calendar.official_until == dt.date(2026, 12, 31)


def test_strict_mode_still_refuses_a_year_without_a_schedule() -> None:
    flow = Flow(MemoryStore(), FakeClock(NOW), calendar=strict_calendar())
    s = flow.receive(_draft(1), OFFICE)
    flow.register(s.id, OFFICE)
    with pytest.raises(CalendarNotCovered):
        flow.transfer(s.id, OFFICE, lead_unit="u_traffic")
    assert flow.store.load(s.id).state is State.REGISTERED  # nothing written


def test_loading_the_official_year_re_times_every_provisional_deadline_by_an_event(
        notice: CalendarOverrides) -> None:
    clock = FakeClock(NOW)
    flow = Flow(MemoryStore(), clock)
    ids = [_transferred(flow, n) for n in range(3)]
    official = default_calendar().with_overrides(notice)
    clock.advance(days=2)
    before = {sid: flow.store.load(sid) for sid in ids}
    result = flow.retime("国务院办公厅2027年节假日安排通知已发布", calendar=official)
    assert flow.calendar is official
    assert sorted(e.suggestion_id for e in result.events) == sorted(ids) and result.skipped == ()
    for sid in ids:
        old, new = before[sid], flow.store.load(sid)
        expected = flow.policy.due_for(Step.RESEARCH, old.due_from, official)  # type: ignore[arg-type]
        assert new.due_at == expected and not new.due_provisional
        assert new.state is old.state and new.version == old.version + 1
        event = flow.store.history(sid)[-1]
        assert event.kind == "retime" and event.actor.role is Role.SYSTEM
        assert event.reason == "国务院办公厅2027年节假日安排通知已发布"
        assert event.payload["provisional"] is False
    assert flow.verify_all() == []
    assert flow.list_suggestions(OFFICE, provisional=True, with_total=True).total == 0
    # a second run finds nothing left to do
    assert flow.retime("again").events == ()


def test_the_notice_moves_a_deadline_and_the_event_says_by_how_much(notice: CalendarOverrides) -> None:
    """春节 one day later and two 调休 Saturdays: a 5-working-day objection window shifts."""
    clock = FakeClock(dt.datetime(2027, 2, 3, 10, tzinfo=SHANGHAI))  # early February 2027: provisional year
    flow = Flow(MemoryStore(), clock, permissions=ALLOW_ALL)
    sid = _transferred(flow, 1)
    old = flow.store.load(sid)
    assert old.objection_due_at is not None and old.due_provisional
    flow.retime("2027年通知", calendar=default_calendar().with_overrides(notice))
    new = flow.store.load(sid)
    assert new.objection_due_at != old.objection_due_at
    event = flow.store.history(sid)[-1]
    assert event.changes["objection_due_at"] != event.changes.get("due_at")


def test_a_deadline_moved_into_the_past_is_recorded_as_having_become_overdue(notice: CalendarOverrides) -> None:
    """Research transferred on 2026-12-07 ends 60 days later, on 2027-02-05.

    Provisionally that is 除夕, a holiday, so the period rolls to the next working day,
    2027-02-09.  The (test) notice starts 春节 a day later, so 02-05 is a working day and the
    deadline moves back to it.  Re-timed on 02-06, the suggestion becomes overdue — and the
    event says so.
    """
    clock = FakeClock(NOW)
    flow = Flow(MemoryStore(), clock)
    sid = _transferred(flow, 1)
    provisional = flow.store.load(sid).due_at
    assert provisional == dt.datetime(2027, 2, 9, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    clock.set(dt.datetime(2027, 2, 6, 10, tzinfo=SHANGHAI))
    flow.retime("2027年通知", calendar=default_calendar().with_overrides(notice))
    s = flow.store.load(sid)
    assert s.due_at == dt.datetime(2027, 2, 5, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    event = flow.store.history(sid)[-1]
    assert event.payload == {"old_due_at": "2027-02-09T15:59:59.999999+00:00",
                             "new_due_at": "2027-02-05T15:59:59.999999+00:00", "provisional": False,
                             "became_overdue": True}
    assert [x.id for x in flow.overdue(OFFICE)] == [sid]


def test_retime_refuses_bad_input_and_writes_nothing() -> None:
    flow = Flow(MemoryStore(), FakeClock(NOW))
    sid = _transferred(flow, 1)
    before = flow.store.history(sid)
    with pytest.raises(ValidationError):
        flow.retime("")
    with pytest.raises(ValidationError):
        flow.retime("x", calendar="2027")  # type: ignore[arg-type]
    assert flow.store.history(sid) == before


def test_research_in_a_provisional_year_keeps_the_mark_until_re_timed() -> None:
    clock = FakeClock(NOW)
    flow = Flow(MemoryStore(), clock)
    sid = _transferred(flow, 1)
    clock.advance(days=1)
    s = flow.research(sid, UNIT, findings="属实", method=ResearchMethod.FIELD_VISIT)
    assert s.due_provisional  # research keeps the research deadline, still provisional

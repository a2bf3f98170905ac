"""A campaign across the year boundary on a provisional calendar, re-timed when the notice arrives (issue 22).

The Yongchuan campaign, moved to run from November 2026 into 2027: in December 2026 the
State Council has not published 2027's holidays, so every deadline that reaches 2027 is
counted on the provisional calendar and marked.  On 2027-01-11 the (here: made-up) 2027
notice is loaded and ``Flow.retime`` re-counts every open provisional deadline, each as a
recorded event.  The campaign then finishes on the official calendar; every history
verifies, and the reports before and after say what was provisional.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Any

from jianyi_flow import SHANGHAI, Flow, MemoryStore, Query, Role
from jianyi_flow.domain.calendar import CalendarOverrides, default_calendar
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.report import build_report
from jianyi_flow.simulation import CampaignSimulator
from test_retime import NOTICE_2027

SHIFT = {"2024-08-01": "2026-11-02", "2024-08-20": "2026-11-20", "2024-08-21": "2026-11-21",
         "2024-11-30": "2027-02-26", "2024-12-01": "2027-03-01", "2024-12-30": "2027-03-30",
         "2024-08-08": "2026-11-06"}
NOTICE_DAY = dt.date(2027, 1, 11)


def _campaign() -> Campaign:
    """The Yongchuan preset with its dates moved to 2026-11 .. 2027-03 (code ``YC2026``)."""
    text = resources.files("jianyi_flow.presets").joinpath("yongchuan_2024.json").read_text(encoding="utf-8")
    for old, new in SHIFT.items():
        text = text.replace(old, new)
    data: dict[str, Any] = json.loads(text)
    data["code"] = "YC2026"
    return Campaign.from_dict(data)


def test_a_campaign_into_an_unpublished_year_is_re_timed_when_the_notice_arrives(tmp_path: Path) -> None:
    path = tmp_path / "2027.toml"
    path.write_text(NOTICE_2027, encoding="utf-8")
    official = default_calendar().with_overrides(CalendarOverrides.from_file(path))
    campaign = _campaign()
    store = MemoryStore()
    seen: dict[str, Any] = {}

    def operator(day: dt.date, flow: Flow) -> None:
        if day != NOTICE_DAY:
            return
        at = dt.datetime.combine(day, dt.time(8), tzinfo=SHANGHAI)
        seen["before"] = build_report(campaign, store, at, calendar=flow.calendar)
        seen["health"] = flow.calendar_health(at)
        seen["result"] = flow.retime("国务院办公厅关于2027年部分节假日安排的通知（测试用）", calendar=official, now=at)
        seen["after"] = build_report(campaign, store, at, calendar=flow.calendar)

    sim = CampaignSimulator(campaign, store, seed=5, suggestions=300, on_day=operator)
    sim.run()

    before, after, result = seen["before"], seen["after"], seen["result"]
    assert seen["health"].provisional_deadlines == before.provisional_deadlines > 0
    assert before.calendar_mode == "provisional" and before.provisional_note
    retimed = {e.suggestion_id for e in result.events}
    assert len(retimed) == before.provisional_deadlines and result.skipped == ()
    assert after.provisional_deadlines == 0 and not after.provisional_note
    for sid in retimed:
        event = next(e for e in store.history(sid) if e.kind == "retime")
        assert event.actor.role is Role.SYSTEM and event.reason and event.payload["provisional"] is False
    events = [e for s in store.query(Query()) for e in store.history(s.id)]
    assert sum(1 for e in events if e.kind == "retime") == len(retimed)
    assert any(e.changes.get("due_provisional") is True for e in events)  # what was provisional is on record
    assert sim.flow.calendar is official
    assert sim.flow.verify_all() == []
    final = build_report(campaign, store, sim.clock.now(), calendar=official)
    assert final.provisional_deadlines == 0

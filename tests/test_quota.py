"""The recommendation quota report (镇街、部门上报均应不少于2篇, notice 四（二）2)."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from jianyi_flow import (
    SHANGHAI,
    Actor,
    Channel,
    FakeClock,
    Flow,
    MemoryStore,
    Proposer,
    Query,
    Role,
    SuggestionDraft,
    ValidationError,
)
from jianyi_flow.domain.campaign import Campaign, UnitKind
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.quota import QuotaRow, quota_report, quota_report_from_store
from jianyi_flow.service.campaign_flow import make_flow

UTC = dt.UTC
PROPOSER = Actor(id="p-1", role=Role.PROPOSER)
OFFICE = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="XFB")


def filer(unit: str | None) -> Actor:
    """Who files a draft under the default permission table: the unit it names, else the proposer."""
    return PROPOSER if unit is None else Actor(id=f"rec-{unit}", role=Role.RECOMMENDING_UNIT, unit=unit)


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def draft(unit: str | None) -> SuggestionDraft:
    return SuggestionDraft(
        title="建议",
        subject="事项",
        problem="问题。",
        measures="措施。",
        area="A5",
        topic="T20",
        recommending_unit=unit,
        channel=Channel.RECOMMENDATION_FORM if unit is not None else Channel.ONLINE_PORTAL,
        proposer=Proposer(name="王五", account=PROPOSER.id),
    )


class Campaign2024:
    """A store filled through the guarded flow, plus an unguarded flow for late entries."""

    def __init__(self) -> None:
        self.campaign = yongchuan_2024()
        self.store = MemoryStore()
        self.clock = FakeClock(sh(2024, 8, 10, 9))
        self.flow = make_flow(self.campaign, self.store, self.clock)
        # The office may enter a suggestion after collection closed (e.g. a letter found
        # late) through a flow without the phase guard; the quota must still not count it.
        self.late_flow = Flow(self.store, self.clock, campaign=self.campaign.code)

    def receive(self, unit: str | None, at: dt.datetime, *, late: bool = False) -> None:
        self.clock.set(at)
        if late:
            self.late_flow.receive(draft(unit), OFFICE)
        else:
            self.flow.receive(draft(unit), filer(unit))


def rows_by_unit(rows: list[QuotaRow]) -> dict[str, QuotaRow]:
    return {r.unit: r for r in rows}


@pytest.fixture
def filled() -> Campaign2024:
    c = Campaign2024()
    # ZSL: 0; SLL: 1; NDJ: 2; CSZH: 3 (one on each phase boundary that still counts)
    c.receive("SLL", sh(2024, 9, 1, 10))
    c.receive("NDJ", sh(2024, 8, 1, 0, 0))
    c.receive("NDJ", sh(2024, 10, 8, 15))
    c.receive("CSZH", sh(2024, 8, 20, 23, 59))
    c.receive("CSZH", sh(2024, 8, 21, 0, 0))
    c.receive("CSZH", dt.datetime(2024, 11, 30, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    # schools recommend through 区教委 (JW): their suggestions name JW
    c.receive("JW", sh(2024, 9, 5, 9))
    c.receive("JW", sh(2024, 9, 6, 9))
    # not counted: after the implementation phase, by an organiser, by nobody
    c.receive("SLL", dt.datetime(2024, 11, 30, 16, 30, tzinfo=UTC), late=True)  # 2024-12-01 00:30 in Shanghai
    c.receive("SLL", sh(2024, 12, 20, 10), late=True)
    c.receive("XFB", sh(2024, 9, 2, 10))
    c.receive(None, sh(2024, 9, 3, 10))
    return c


def test_units_with_zero_one_two_and_three_recommendations(filled: Campaign2024) -> None:
    rows = rows_by_unit(quota_report_from_store(filled.campaign, filled.store))
    assert rows["ZSL"] == QuotaRow("ZSL", "中山路街道", UnitKind.STREET, recommended=0, required=2, met=False)
    assert rows["SLL"] == QuotaRow("SLL", "胜利路街道", UnitKind.STREET, recommended=1, required=2, met=False)
    assert rows["NDJ"] == QuotaRow("NDJ", "南大街街道", UnitKind.STREET, recommended=2, required=2, met=True)
    assert rows["CSZH"] == QuotaRow("CSZH", "茶山竹海街道", UnitKind.STREET, recommended=3, required=2, met=True)
    assert rows["JW"] == QuotaRow("JW", "区教委", UnitKind.DEPARTMENT, recommended=2, required=2, met=True)
    assert (rows["ZSL"].shortfall, rows["SLL"].shortfall, rows["NDJ"].shortfall, rows["CSZH"].shortfall) == (2, 1, 0, 0)


def test_recommendations_received_after_november_30_in_shanghai_do_not_count(filled: Campaign2024) -> None:
    late = filled.store.query(Query(campaign=filled.campaign.code, unit="SLL"))
    assert len(late) == 3  # stored, and handled like any other suggestion...
    assert rows_by_unit(quota_report(filled.campaign, late))["SLL"].recommended == 1  # ...but late for the quota


def test_every_street_town_and_department_but_the_organisers_gets_a_row_in_preset_order(
    filled: Campaign2024,
) -> None:
    c = filled.campaign
    rows = quota_report_from_store(c, filled.store)
    assert [r.unit for r in rows] == [u.code for u in c.units if u.code not in ("SHGZB", "XFB")]
    assert len(rows) == len(c.units) - 2
    assert sum(r.kind in (UnitKind.STREET, UnitKind.TOWN) for r in rows) == 23
    assert all(r.required == 2 for r in rows)
    assert {r.unit for r in rows if r.met} == {"NDJ", "CSZH", "JW"}


def test_suggestions_of_another_campaign_do_not_count(filled: Campaign2024) -> None:
    other = Flow(filled.store, FakeClock(sh(2024, 9, 1)), campaign="OTHER")
    other.receive(draft("ZSL"), filer("ZSL"))
    other.receive(draft("ZSL"), filer("ZSL"))
    everything = filled.store.query(Query())
    assert sum(s.recommending_unit == "ZSL" for s in everything) == 2
    assert rows_by_unit(quota_report(filled.campaign, everything))["ZSL"].recommended == 0


@pytest.mark.parametrize("page", [1, 2, 5, 1000])
def test_reading_from_the_store_in_pages_gives_the_same_report(filled: Campaign2024, page: int) -> None:
    expected = quota_report(filled.campaign, filled.store.query(Query(campaign=filled.campaign.code)))
    assert quota_report_from_store(filled.campaign, filled.store, page=page) == expected


@pytest.mark.parametrize("page", [0, -1, True])
def test_a_page_size_below_one_is_refused(page: int) -> None:
    with pytest.raises(ValidationError) as info:
        quota_report_from_store(yongchuan_2024(), MemoryStore(), page=page)
    assert info.value.field == "page"


def test_an_empty_campaign_owes_everything() -> None:
    rows = quota_report(yongchuan_2024(), [])
    assert rows and all(r.recommended == 0 and not r.met and r.shortfall == 2 for r in rows)


def test_the_rule_decides_who_owes_how_many() -> None:
    c: Campaign = attrs.evolve(
        yongchuan_2024(),
        recommendation=attrs.evolve(yongchuan_2024().recommendation, minimum=3, kinds=frozenset({UnitKind.TOWN})),
    )
    store = MemoryStore()
    flow = make_flow(c, store, FakeClock(sh(2024, 9, 1, 9)))
    for _ in range(3):
        flow.receive(draft("QF"), filer("QF"))
    flow.receive(draft("ZSL"), filer("ZSL"))
    rows = quota_report_from_store(c, store)
    assert {r.kind for r in rows} == {UnitKind.TOWN}
    assert len(rows) == 16
    qf = rows_by_unit(rows)["QF"]
    assert (qf.recommended, qf.required, qf.met) == (3, 3, True)

"""The campaign model: consistency checks, lookups, phases in Asia/Shanghai, and the phase guard.

The phase rules are driven through the Yongchuan 2024 preset with a FakeClock, as a
portal would meet them: receive open from launch to the end of implementation,
summary commands only in the summary phase, handling never closed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from jianyi_flow import (
    SHANGHAI,
    Actor,
    Channel,
    FakeClock,
    Flow,
    MemoryStore,
    NotFound,
    PermissionDenied,
    PhaseClosed,
    Proposer,
    Query,
    Role,
    State,
    SuggestionDraft,
    ValidationError,
)
from jianyi_flow.domain.campaign import (
    HANDLING_COMMANDS,
    SUMMARY_COMMANDS,
    Area,
    Campaign,
    Phase,
    PhaseRule,
    RecommendationRule,
    Topic,
    Unit,
    UnitKind,
)
from jianyi_flow.domain.model import ReportForm
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.service.campaign_flow import PhaseGuard, RecommendationGuard, flow_kwargs, make_flow
from jianyi_flow.service.guards import CommandContext

UTC = dt.UTC
OFFICE = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="XFB")
PROPOSER = Actor(id="p-1", role=Role.PROPOSER)


def recommender(unit: str) -> Actor:
    """Staff of a recommending unit: files the drafts that name it (permissions are on by default)."""
    return Actor(id=f"rec-{unit}", role=Role.RECOMMENDING_UNIT, unit=unit)


ZSL = recommender("ZSL")

RECEIVE_WINDOWS = "launch 启动阶段 2024-08-01..2024-08-20, implementation 实施阶段 2024-08-21..2024-11-30"
SUMMARY_WINDOWS = "summary 总结运用阶段 2024-12-01..2024-12-30"


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=SHANGHAI)


def draft(area: str = "A1", topic: str | None = "T01", unit: str | None = "ZSL") -> SuggestionDraft:
    return SuggestionDraft(
        title="完善园区公交接驳",
        subject="园区通勤",
        problem="园区与城区之间早晚高峰公交班次少。",
        measures="增开高峰时段接驳线路。",
        area=area,
        topic=topic,
        recommending_unit=unit,
        channel=Channel.RECOMMENDATION_FORM if unit is not None else Channel.ONLINE_PORTAL,
        proposer=Proposer(name="李四", account=PROPOSER.id),
    )


def small(**changes: Any) -> Campaign:
    """A minimal valid campaign; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "code": "C1",
        "theme": "主题",
        "areas": [Area("A1", "产业发展"), Area("A2", "扩大开放")],
        "topics": [Topic("T1", "A1", 1, "议题一。"), Topic("T2", "A2", 2, "议题二。")],
        "phases": [
            Phase("launch", "启动阶段", dt.date(2024, 8, 1), dt.date(2024, 8, 20)),
            Phase("implementation", "实施阶段", dt.date(2024, 8, 21), dt.date(2024, 11, 30)),
        ],
        "units": [Unit("U1", "甲镇", UnitKind.TOWN, "test"), Unit("U2", "区某局", UnitKind.DEPARTMENT, "test")],
        "recommendation": RecommendationRule(recommended_via={"school": "U2"}),
        "phase_rules": [PhaseRule("receive", ("launch", "implementation")), PhaseRule("register", None)],
    }
    fields.update(changes)
    return Campaign(**fields)


# --- construction -----------------------------------------------------------------------------------


def test_a_consistent_campaign_builds_and_keeps_its_order() -> None:
    c = small()
    assert c.area_codes == ("A1", "A2")
    assert c.topic_codes == ("T1", "T2")
    assert c.unit_codes == ("U1", "U2")
    assert c.phase_codes == ("launch", "implementation")
    assert isinstance(c.areas, tuple) and isinstance(c.units, tuple)


@pytest.mark.parametrize(
    ("changes", "field", "rule_part"),
    [
        ({"areas": [Area("A1", "x"), Area("A1", "y")]}, "areas", "'A1' is used more than once"),
        ({"areas": []}, "areas", "at least one area"),
        ({"areas": [Area("区域", "x")]}, "areas.code", "must be a code"),
        ({"topics": [Topic("T1", "A9", 1, "议题。")]}, "topics[T1].area", "unknown area 'A9'"),
        ({"topics": [Topic("T1", "A1", 1, "一。"), Topic("T1", "A2", 2, "二。")]}, "topics", "more than once"),
        ({"topics": [Topic("T1", "A1", 1, "一。"), Topic("T2", "A2", 1, "二。")]}, "topics[T2].number", "unique"),
        ({"topics": [Topic("T1", "A1", 1, " ")]}, "topics[T1].title", "blank"),
        (
            {"units": [Unit("U1", "甲", UnitKind.TOWN, ""), Unit("U1", "乙", UnitKind.TOWN, "")]},
            "units",
            "more than once",
        ),
        (
            {"phases": [Phase("a", "甲", dt.date(2024, 8, 10), dt.date(2024, 8, 1))]},
            "phases[a]",
            "ends (2024-08-01) before it starts",
        ),
        (
            {
                "phases": [
                    Phase("a", "甲", dt.date(2024, 8, 1), dt.date(2024, 8, 20)),
                    Phase("b", "乙", dt.date(2024, 8, 20), dt.date(2024, 9, 1)),
                ],
                "phase_rules": [],
                "recommendation": RecommendationRule(deadline_phase="b"),
            },
            "phases",
            "without overlap",
        ),
        (
            {
                "phases": [
                    Phase("b", "乙", dt.date(2024, 9, 1), dt.date(2024, 9, 30)),
                    Phase("a", "甲", dt.date(2024, 8, 1), dt.date(2024, 8, 20)),
                ],
                "phase_rules": [],
                "recommendation": RecommendationRule(deadline_phase="b"),
            },
            "phases",
            "in date order",
        ),
        (
            {"phases": [Phase("a", "甲", dt.datetime(2024, 8, 1, tzinfo=UTC), dt.date(2024, 8, 2))]},
            "phases[a].start",
            "not a datetime",
        ),
        ({"phase_rules": [PhaseRule("receive", ("summary",))]}, "phase_rules[receive].phases", "unknown phase"),
        ({"phase_rules": [PhaseRule("receive", ())]}, "phase_rules[receive].phases", "at least one phase"),
        ({"phase_rules": [PhaseRule("receive", None), PhaseRule("receive", None)]}, "phase_rules", "more than one"),
        (
            {"recommendation": RecommendationRule(recommended_via={"hospital": "NOPE"})},
            "recommendation.recommended_via[hospital]",
            "unknown unit 'NOPE'",
        ),
        ({"recommendation": RecommendationRule(deadline_phase="summary")}, "recommendation.deadline_phase", "summary"),
        ({"recommendation": RecommendationRule(minimum=-1)}, "recommendation.minimum", "at least 0"),
        ({"code": "YC 2024"}, "code", "must be a code"),
    ],
)
def test_an_inconsistent_campaign_is_refused_naming_the_field(
    changes: dict[str, Any], field: str, rule_part: str
) -> None:
    with pytest.raises(ValidationError) as info:
        small(**changes)
    assert info.value.field == field
    assert rule_part in info.value.rule


def test_a_unit_kind_must_be_street_town_or_department() -> None:
    assert Unit("U", "甲", "town", "").kind is UnitKind.TOWN
    with pytest.raises(ValidationError) as info:
        Unit("U", "甲", "village", "")
    assert info.value.field == "units.kind"


def test_evolve_rechecks_the_campaign() -> None:
    """Replacing the editable unit list goes through the same checks as construction."""
    c = small()
    replaced = attrs.evolve(c, units=[Unit("U9", "乙镇", UnitKind.TOWN, "ours")], recommendation=RecommendationRule())
    assert replaced.unit_codes == ("U9",)
    with pytest.raises(ValidationError):
        attrs.evolve(c, units=[Unit("U9", "乙镇", UnitKind.TOWN, "ours")])  # recommended_via still names U2


# --- lookups ----------------------------------------------------------------------------------------


def test_lookups_find_by_code_and_refuse_unknown_codes() -> None:
    c = small()
    assert c.area("A2").name == "扩大开放"
    assert c.topic("T1").title == "议题一。"
    assert c.unit("U2").kind is UnitKind.DEPARTMENT
    assert c.phase("launch").end == dt.date(2024, 8, 20)
    assert c.topics_of("A2") == (c.topic("T2"),)
    for lookup, code in ((c.area, "A9"), (c.topic, "T9"), (c.unit, "U9"), (c.phase, "summary"), (c.topics_of, "A9")):
        with pytest.raises(NotFound):
            lookup(code)


def test_phase_rule_lookup_returns_none_for_commands_the_table_does_not_name() -> None:
    c = small()
    receive_rule = c.phase_rule("receive")
    assert receive_rule is not None and receive_rule.restricted
    register_rule = c.phase_rule("register")
    assert register_rule is not None and not register_rule.restricted
    assert c.phase_rule("brand_new_command") is None
    assert c.windows("brand_new_command") == "always"


# --- phases and time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "phase"),
    [
        (dt.date(2024, 7, 31), None),
        (dt.date(2024, 8, 1), "launch"),
        (dt.date(2024, 8, 20), "launch"),
        (dt.date(2024, 8, 21), "implementation"),
        (dt.date(2024, 11, 30), "implementation"),
        (dt.date(2024, 12, 1), "summary"),
        (dt.date(2024, 12, 30), "summary"),
        (dt.date(2024, 12, 31), None),
    ],
)
def test_phase_on_uses_inclusive_windows(day: dt.date, phase: str | None) -> None:
    found = yongchuan_2024().phase_on(day)
    assert (found.code if found else None) == phase


@pytest.mark.parametrize(
    ("when", "phase"),
    [
        (dt.datetime(2024, 7, 31, 16, 30, tzinfo=UTC), "launch"),  # 2024-08-01 00:30 in Shanghai
        (dt.datetime(2024, 7, 31, 15, 59, 59, tzinfo=UTC), None),  # 2024-07-31 23:59:59 in Shanghai
        (dt.datetime(2024, 11, 30, 15, 59, 59, tzinfo=UTC), "implementation"),
        (dt.datetime(2024, 11, 30, 16, 0, tzinfo=UTC), "summary"),  # 2024-12-01 00:00 in Shanghai
        (dt.datetime(2024, 12, 30, 16, 0, tzinfo=UTC), None),  # 2024-12-31 00:00 in Shanghai
        (sh(2024, 12, 30, 23, 59, 59, 999999), "summary"),
    ],
)
def test_phase_at_converts_to_shanghai_first(when: dt.datetime, phase: str | None) -> None:
    found = yongchuan_2024().phase_at(when)
    assert (found.code if found else None) == phase


def test_phase_at_refuses_naive_datetimes_and_phase_on_refuses_datetimes() -> None:
    c = yongchuan_2024()
    with pytest.raises(ValidationError):
        c.phase_at(dt.datetime(2024, 8, 1, 9))
    with pytest.raises(ValidationError):
        c.phase_on(dt.datetime(2024, 8, 1, 9, tzinfo=UTC))


def test_phase_window_text() -> None:
    c = yongchuan_2024()
    assert c.phase("launch").window == "launch 启动阶段 2024-08-01..2024-08-20"
    assert c.windows("receive") == RECEIVE_WINDOWS
    assert c.windows("evaluate") == SUMMARY_WINDOWS
    assert c.windows("register") == "always"


# --- the phase guard on its own ---------------------------------------------------------------------


def ctx(command: str, now: dt.datetime) -> CommandContext:
    return CommandContext(command=command, actor=OFFICE, now=now)


@pytest.mark.parametrize("command", SUMMARY_COMMANDS)
@pytest.mark.parametrize(
    "now",
    [sh(2024, 12, 1), sh(2024, 12, 15, 10), sh(2024, 12, 30, 23, 59, 59), dt.datetime(2024, 11, 30, 16, tzinfo=UTC)],
)
def test_summary_commands_pass_the_guard_in_the_summary_phase(command: str, now: dt.datetime) -> None:
    PhaseGuard(yongchuan_2024()).check(ctx(command, now))


UPWARD = ("report_upward", "forward_to_city")
"""呈报 and 呈送: also open during implementation (notice 四（二）3)."""
UPWARD_WINDOWS = "implementation 实施阶段 2024-08-21..2024-11-30, summary 总结运用阶段 2024-12-01..2024-12-30"


@pytest.mark.parametrize("command", UPWARD)
@pytest.mark.parametrize("now", [sh(2024, 8, 21), sh(2024, 10, 8, 10), sh(2024, 11, 30, 23), sh(2024, 12, 30, 17)])
def test_reporting_upward_passes_the_guard_in_implementation_and_summary(command: str, now: dt.datetime) -> None:
    PhaseGuard(yongchuan_2024()).check(ctx(command, now))


@pytest.mark.parametrize("command", UPWARD)
@pytest.mark.parametrize("now", [sh(2024, 8, 20, 23, 59, 59), sh(2024, 12, 31)])
def test_reporting_upward_is_refused_before_implementation_and_after_summary(command: str, now: dt.datetime) -> None:
    with pytest.raises(PhaseClosed) as info:
        PhaseGuard(yongchuan_2024()).check(ctx(command, now))
    assert info.value.windows == UPWARD_WINDOWS


@pytest.mark.parametrize("command", [c for c in SUMMARY_COMMANDS if c not in UPWARD])
@pytest.mark.parametrize(
    ("now", "day"),
    [
        (sh(2024, 8, 1, 9), dt.date(2024, 8, 1)),
        (sh(2024, 11, 30, 23, 59, 59), dt.date(2024, 11, 30)),
        (dt.datetime(2024, 11, 30, 15, 59, tzinfo=UTC), dt.date(2024, 11, 30)),
        (sh(2024, 12, 31), dt.date(2024, 12, 31)),
        (sh(2025, 1, 6, 9), dt.date(2025, 1, 6)),
    ],
)
def test_summary_commands_are_refused_outside_the_summary_phase(command: str, now: dt.datetime, day: dt.date) -> None:
    with pytest.raises(PhaseClosed) as info:
        PhaseGuard(yongchuan_2024()).check(ctx(command, now))
    assert info.value.command == command
    assert info.value.day == day
    assert info.value.windows == SUMMARY_WINDOWS
    assert f"command {command!r} is not open on {day.isoformat()}: allowed {SUMMARY_WINDOWS}" == str(info.value)


@pytest.mark.parametrize("command", [*HANDLING_COMMANDS, "some_future_command"])
@pytest.mark.parametrize("now", [sh(2024, 7, 1), sh(2024, 9, 1), sh(2024, 12, 15), sh(2025, 1, 6), sh(2026, 3, 1)])
def test_handling_and_unlisted_commands_are_never_closed_by_phase(command: str, now: dt.datetime) -> None:
    PhaseGuard(yongchuan_2024()).check(ctx(command, now))


def test_the_guard_refuses_a_naive_clock() -> None:
    with pytest.raises(ValidationError):
        PhaseGuard(yongchuan_2024()).check(ctx("receive", dt.datetime(2024, 8, 1, 9)))


# --- the preset driven through its phases with Flow ------------------------------------------------


def test_flow_kwargs_name_the_campaign_codes_and_the_phase_guard() -> None:
    c = yongchuan_2024()
    kwargs = flow_kwargs(c)
    assert kwargs["campaign"] == "YC2024"
    assert kwargs["known_areas"] == frozenset(c.area_codes)
    assert kwargs["known_topics"] == frozenset(c.topic_codes)
    assert kwargs["known_units"] == frozenset(c.unit_codes)
    assert kwargs["guards"] == (PhaseGuard(c), RecommendationGuard(c))
    flow = Flow(MemoryStore(), FakeClock(sh(2024, 9, 1)), **kwargs)
    assert flow.campaign == "YC2024"


def written(store: MemoryStore) -> tuple[list[Any], list[Any]]:
    """Everything a refused command could have left behind: rows and undelivered messages."""
    return store.query(Query()), store.claim(100, sh(2030, 1, 1), dt.timedelta(seconds=1))


@pytest.mark.parametrize(
    "now", [sh(2024, 8, 1), sh(2024, 8, 20, 23, 59), sh(2024, 8, 21), sh(2024, 11, 30, 23, 59, 59)]
)
def test_receive_is_open_from_launch_through_implementation(now: dt.datetime) -> None:
    store = MemoryStore()
    flow = make_flow(yongchuan_2024(), store, FakeClock(now))
    s = flow.receive(draft(), ZSL)
    assert s.state is State.RECEIVED and s.campaign == "YC2024"
    assert flow.get(s.id, ZSL) == s  # the recommending unit's view of the stored row
    assert store.load(s.id).proposer.account == PROPOSER.id


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (sh(2024, 7, 31, 23, 59, 59), dt.date(2024, 7, 31)),
        (sh(2024, 12, 1), dt.date(2024, 12, 1)),
        (sh(2024, 12, 30, 12), dt.date(2024, 12, 30)),
        (dt.datetime(2024, 11, 30, 16, 30, tzinfo=UTC), dt.date(2024, 12, 1)),
    ],
)
def test_receive_outside_its_windows_is_refused_and_writes_nothing(now: dt.datetime, day: dt.date) -> None:
    store = MemoryStore()
    flow = make_flow(yongchuan_2024(), store, FakeClock(now))
    with pytest.raises(PhaseClosed) as info:
        flow.receive(draft(), ZSL, idempotency_key="k1")
    assert (info.value.command, info.value.day, info.value.windows) == ("receive", day, RECEIVE_WINDOWS)
    assert written(store) == ([], [])
    assert store.idempotency(ZSL.key, "k1") is None


def test_receive_just_after_utc_midnight_on_july_31_is_august_1_in_shanghai() -> None:
    store = MemoryStore()
    flow = make_flow(yongchuan_2024(), store, FakeClock(dt.datetime(2024, 7, 31, 16, 30, tzinfo=UTC)))
    s = flow.receive(draft(), ZSL)
    assert s.received_at == dt.datetime(2024, 8, 1, 0, 30, tzinfo=SHANGHAI)


def test_a_refused_receive_leaves_an_existing_store_unchanged() -> None:
    store = MemoryStore()
    clock = FakeClock(sh(2024, 9, 2, 9))
    flow = make_flow(yongchuan_2024(), store, clock)
    sid = flow.receive(draft(), ZSL).id
    kept = store.load(sid)
    before = (store.query(Query()), store.history(sid))
    clock.set(sh(2024, 12, 1, 9))
    with pytest.raises(PhaseClosed):
        flow.receive(draft(), ZSL)
    assert (store.query(Query()), store.history(sid)) == before
    assert store.load(sid) == kept


def test_the_campaign_runs_through_all_three_phases() -> None:
    """Launch: receive.  Implementation: receive and handle.  Summary: summary commands, no receive.
    After the campaign: handling continues, summary commands are closed."""
    store = MemoryStore()
    clock = FakeClock(sh(2024, 8, 5, 10))
    flow = make_flow(yongchuan_2024(), store, clock)

    early = flow.receive(draft(), OFFICE, suggestion_id="early")  # launch (the office may choose an id)
    clock.set(sh(2024, 9, 10, 10))  # implementation
    flow.register("early", OFFICE)
    with pytest.raises(PhaseClosed):
        flow.mark_typical("early", OFFICE)  # summary phase only; 呈报 is open already (notice 四（二）3)
    assert store.load("early").typical_case is False
    late = flow.receive(draft(area="A7", topic="T33", unit="JW"), OFFICE, suggestion_id="late")

    clock.set(sh(2024, 12, 2, 10))  # summary
    reported = flow.report_upward("early", OFFICE, form=ReportForm.EXCERPT)
    assert reported.upward_reports == (ReportForm.EXCERPT,)
    with pytest.raises(PhaseClosed):
        flow.receive(draft(), ZSL)
    flow.register("late", OFFICE)  # handling goes on in the summary phase

    clock.set(sh(2025, 1, 6, 10))  # after the campaign: Monday, a working day
    moved = flow.transfer("late", OFFICE, lead_unit="FGW")
    assert moved.state is State.TRANSFERRED and moved.lead_unit == "FGW"
    flow.transfer("early", OFFICE, lead_unit="KJJ")
    with pytest.raises(PhaseClosed) as info:
        flow.forward_to_city("early", OFFICE)
    assert info.value.day == dt.date(2025, 1, 6)
    assert store.load("early").forwarded_to_city_at is None
    assert [e.kind for e in store.history("early")] == ["receive", "register", "report_upward", "transfer"]
    assert early.received_at.date() == dt.date(2024, 8, 5) and late.state is State.RECEIVED


def test_register_and_transfer_still_work_after_the_campaign_ends() -> None:
    store = MemoryStore()
    clock = FakeClock(sh(2024, 11, 30, 22))
    flow = make_flow(yongchuan_2024(), store, clock)
    flow.receive(draft(), OFFICE, suggestion_id="s1")
    clock.set(sh(2025, 1, 6, 9))
    assert flow.register("s1", OFFICE).state is State.REGISTERED
    assert flow.transfer("s1", OFFICE, lead_unit="CGJ", co_units=["JTJ"]).state is State.TRANSFERRED


def test_make_flow_checks_codes_against_the_campaign() -> None:
    flow = make_flow(yongchuan_2024(), MemoryStore(), FakeClock(sh(2024, 9, 1)))
    for bad, field in (
        (draft(area="A8"), "area"),
        (draft(topic="T34"), "topic"),
        (draft(unit="NOPE"), "recommending_unit"),
    ):
        with pytest.raises(ValidationError) as info:
            flow.receive(bad, recommender(bad.recommending_unit or "ZSL"))
        assert info.value.field == field


class _RefuseAll:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def check(self, ctx: CommandContext) -> None:
        self.seen.append(ctx.command)
        raise PermissionDenied(str(ctx.actor), ctx.command, "test guard")


def test_make_flow_runs_extra_guards_after_the_phase_guard() -> None:
    extra = _RefuseAll()
    clock = FakeClock(sh(2024, 7, 1))
    flow = make_flow(yongchuan_2024(), MemoryStore(), clock, guards=[extra])
    with pytest.raises(PhaseClosed):
        flow.receive(draft(), ZSL)
    assert extra.seen == []  # the phase guard refused first
    clock.set(sh(2024, 9, 1))
    with pytest.raises(PermissionDenied):
        flow.receive(draft(), ZSL)
    assert extra.seen == ["receive"]
    assert len(flow.guards) == 3  # the phase guard, the recommendation guard, then the extra one


def test_make_flow_passes_other_options_and_refuses_a_different_campaign_code() -> None:
    flow = make_flow(yongchuan_2024(), MemoryStore(), FakeClock(sh(2024, 9, 1)), ids=lambda: "fixed")
    assert flow.receive(draft(), ZSL).id == "fixed"
    with pytest.raises(ValidationError) as info:
        make_flow(yongchuan_2024(), MemoryStore(), FakeClock(sh(2024, 9, 1)), campaign="OTHER")
    assert info.value.field == "campaign"


# --- loading from data ------------------------------------------------------------------------------


def minimal_data() -> dict[str, Any]:
    return {
        "code": "C1",
        "theme": "主题",
        "areas": [{"code": "A1", "name": "产业发展"}],
        "topics": [{"code": "T1", "area": "A1", "number": 1, "title": "议题。"}],
        "phases": [{"code": "implementation", "name_zh": "实施阶段", "start": "2024-08-21", "end": "2024-11-30"}],
        "units": [{"code": "U1", "name": "甲镇", "kind": "town", "source": "test"}],
        "recommendation": {"minimum": 2, "kinds": ["town"], "deadline_phase": "implementation"},
        "phase_rules": [{"command": "receive", "phases": ["implementation"]}, {"command": "register", "phases": None}],
    }


def test_from_dict_builds_a_campaign_with_defaults() -> None:
    c = Campaign.from_dict(minimal_data())
    assert c.unit("U1") == Unit("U1", "甲镇", UnitKind.TOWN, "test", editable=False, organiser=False)
    assert c.recommendation.kinds == frozenset({UnitKind.TOWN})
    assert dict(c.recommendation.recommended_via) == {}
    assert c.phase_rule("register") == PhaseRule("register", None)
    assert c.notice is None and c.notes == ()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(colour="red"), "campaign"),
        (lambda d: d.pop("theme"), "campaign.theme"),
        (lambda d: d["phases"][0].update(start="2024/08/21"), "campaign.phases[0].start"),
        (lambda d: d["units"][0].update(kind="village"), "campaign.units[0].kind"),
        (lambda d: d["units"][0].update(editable="yes"), "campaign.units[0].editable"),
        (lambda d: d["topics"][0].update(number="1"), "campaign.topics[0].number"),
        (lambda d: d["topics"][0].update(area="A9"), "topics[T1].area"),
        (lambda d: d["phase_rules"][0].pop("phases"), "campaign.phase_rules[0].phases"),
        (lambda d: d["recommendation"].update(recommended_via=["JW"]), "campaign.recommendation.recommended_via"),
        (lambda d: d.update(areas={"A1": "产业发展"}), "campaign.areas"),
    ],
)
def test_from_dict_names_the_path_of_a_bad_value(edit: Any, field: str) -> None:
    data = minimal_data()
    edit(data)
    with pytest.raises(ValidationError) as info:
        Campaign.from_dict(data)
    assert info.value.field == field


# --- recommendations: the 推荐表, and schools and hospitals through their commissions ---------------


def _recommended(**overrides: Any) -> SuggestionDraft:
    fields: dict[str, Any] = {"title": "建议", "subject": "事项", "problem": "问题", "measures": "措施", "area": "A4",
                              "topic": "T15", "proposer": Proposer("王老师"), "channel": Channel.RECOMMENDATION_FORM}
    fields.update(overrides)
    return SuggestionDraft(**fields)


def test_a_unit_files_its_recommendation_on_the_recommendation_form() -> None:
    store = MemoryStore()
    flow = make_flow(yongchuan_2024(), store, FakeClock(sh(2024, 9, 2, 10)))
    zsl = Actor("rec-zsl", Role.RECOMMENDING_UNIT, unit="ZSL")
    with pytest.raises(ValidationError) as caught:
        flow.receive(_recommended(channel=Channel.LETTER, recommending_unit="ZSL"), zsl)
    assert caught.value.field == "channel"
    with pytest.raises(ValidationError) as caught:
        flow.receive(_recommended(), OFFICE)  # a 推荐表 names its unit
    assert caught.value.field == "recommending_unit"
    s = flow.receive(_recommended(recommending_unit="ZSL"), zsl)
    assert s.channel is Channel.RECOMMENDATION_FORM and s.recommending_unit == "ZSL"
    assert store.count(Query()) == 1


@pytest.mark.parametrize(("institution", "unit"), [("school", "JW"), ("hospital", "WJW")])
def test_schools_and_hospitals_are_recommended_through_their_commission(institution: str, unit: str) -> None:
    store = MemoryStore()
    flow = make_flow(yongchuan_2024(), store, FakeClock(sh(2024, 9, 2, 10)))
    other = Actor("rec-zsl", Role.RECOMMENDING_UNIT, unit="ZSL")
    with pytest.raises(ValidationError) as caught:
        flow.receive(_recommended(recommending_unit="ZSL", institution=institution), other)
    assert caught.value.field == "recommending_unit" and caught.value.details["allowed"] == [unit]
    with pytest.raises(ValidationError):
        flow.receive(_recommended(recommending_unit=None, institution=institution, channel=Channel.LETTER), OFFICE)
    assert store.count(Query()) == 0
    commission = Actor(f"rec-{unit}", Role.RECOMMENDING_UNIT, unit=unit)
    s = flow.receive(_recommended(recommending_unit=unit, institution=institution), commission)
    assert (s.institution, s.recommending_unit) == (institution, unit)
    with pytest.raises(ValidationError) as caught:
        flow.receive(_recommended(recommending_unit=unit, institution="factory"), commission)
    assert caught.value.field == "institution"

"""A campaign a 信访办 director would believe: invariants over a whole simulated campaign.

:func:`check_simulation` reads what a run left in its store — every event and every row —
and lists each invariant that does not hold, with a count and a few examples.  The
invariants (issue 25, "The simulation"):

* ``office-hours`` — the office, the units, their heads and the evaluators act only on
  working days of the flow's calendar (调休 Saturdays count, 2024-09-17 中秋节 does not),
  within the campaign's office hours;
* ``citizens-any-time`` — citizens' on-line submissions are not squeezed into office hours;
* ``same-second`` — no two events by different actors share a timestamp;
* ``intake`` — letters, e-mail, calls, on-site and circuit visits are entered by the
  collection office; a 推荐表 (``recommendation_form``) by its recommending unit's actor,
  and only a 推荐表 names a recommending unit; on-line submissions by the proposer or an
  information officer;
* ``recommendation-window`` — 推荐表 arrive after the notice date, within the quota's phase;
* ``quota`` — every unit meets its quota except the configured few, and none sends more
  than the quota plus the configured maximum extra;
* ``institutions`` — a school's suggestion is recommended by 区教委, a hospital's by 区卫健委
  (the campaign's ``recommended_via``);
* ``after-reply`` — evaluations, upward reports (呈报), forwarding (呈送), reward
  nominations, typical cases and adoption records come after the unit's reply;
* ``upward-phases`` — 呈报 and 呈送 happen both during implementation and in the summary phase;
* ``chosen-by-score`` — reward nominees, 原件 reports and typical cases are adopted or
  partially adopted, evaluated first, and the best-scored of the evaluated adopted
  suggestions; reward tiers follow the scores (equal scores, equal tiers);
* ``misroute`` — every misroute objection is ruled on by the office (accepted: routed
  again to another unit; refused: the unit keeps it);
* ``extension`` — every extension request is approved or refused by the head of the
  requesting unit before the step ends, for at most 30 days;
* ``recorded-forms`` — research records its method, a reply its form, an adoption record its form;
* ``closed`` — nothing is left open and every history verifies.

The checker can fail: the tests at the end run deliberately broken simulators through it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import pytest

from jianyi_flow import MemoryStore
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.domain.clock import SHANGHAI, local_date
from jianyi_flow.domain.model import Channel, Event, Outcome, ReportForm, RewardTier, Role, State, Suggestion
from jianyi_flow.domain.workflow import OPEN_STATES
from jianyi_flow.quota import quota_report_from_store
from jianyi_flow.simulation import OFFICE_CHANNELS, CampaignSimulator, SimulationConfig
from jianyi_flow.storage.base import iter_events, iter_suggestions

WORKERS = frozenset({Role.COLLECTION_OFFICE, Role.HANDLING_UNIT, Role.HANDLING_UNIT_HEAD, Role.RECOMMENDING_UNIT,
                     Role.EVALUATOR, Role.LEADERSHIP, Role.MUNICIPAL_OFFICE})
"""Roles that work office hours."""
ONLINE = frozenset({Channel.ONLINE_PORTAL, Channel.WECHAT, Channel.DOUYIN})
AFTER_REPLY = ("evaluate", "report_upward", "forward_to_city", "nominate_reward", "mark_typical", "record_adoption")
ADOPTED = frozenset({Outcome.ADOPTED.value, Outcome.PARTIALLY_ADOPTED.value})
TIER_ORDER = {tier.value: i for i, tier in enumerate(RewardTier)}  # special first


class Problems:
    """Failed invariants: a count and the first few examples of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, invariant: str, example: str) -> None:
        self.counts[invariant] += 1
        if len(self.examples[invariant]) < 3:
            self.examples[invariant].append(example)

    def lines(self) -> list[str]:
        return [f"{name}: {n} ({'; '.join(self.examples[name])})" for name, n in sorted(self.counts.items())]


def _histories(events: Iterable[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        out[e.suggestion_id].append(e)
    return out


def in_office_hours(campaign: Campaign, sim: CampaignSimulator, at: dt.datetime) -> bool:
    local = at.astimezone(SHANGHAI)
    if not sim.calendar.is_working_day(local.date()):
        return False
    return any(start <= local.time() < end for start, end in campaign.office_hours)


def check_simulation(sim: CampaignSimulator) -> list[str]:
    """Every invariant of the module docstring that the run in ``sim.store`` breaks (empty: all hold)."""
    c, store = sim.campaign, sim.store
    p = Problems()
    histories = _histories(iter_events(store))
    rows = {s.id: s for s in iter_suggestions(store)}
    by_second: dict[dt.datetime, set[str]] = defaultdict(set)
    online, online_outside = 0, 0
    upward_phases: Counter[str] = Counter()
    for sid, events in histories.items():
        row = rows[sid]
        replied = False
        evaluated = False
        fields: dict[str, object] = {}  # the fields as they stand after each event (changes hold what changed)
        for i, e in enumerate(events):
            fields.update(e.changes)
            by_second[e.at].add(e.actor.key)
            role = e.actor.role
            if role in WORKERS and not in_office_hours(c, sim, e.at):
                local = e.at.astimezone(SHANGHAI)
                p.add("office-hours", f"{e.kind} of {sid} by {role.value} at {local:%a %Y-%m-%d %H:%M:%S}")
            if e.kind == "reply":
                replied = True
                if not fields.get("reply_form"):
                    p.add("recorded-forms", f"reply of {sid} without a form")
            if e.kind == "research" and not fields.get("research_method"):
                p.add("recorded-forms", f"research of {sid} without a method")
            if e.kind == "record_adoption" and not fields.get("adoption_form"):
                p.add("recorded-forms", f"adoption record of {sid} without a form")
            if e.kind in AFTER_REPLY and not replied:
                p.add("after-reply", f"{e.kind} of {sid} before any reply")
            if e.kind == "evaluate":
                evaluated = True
            if e.kind in ("nominate_reward", "mark_typical") or (
                    e.kind == "report_upward" and e.payload.get("form") == ReportForm.ORIGINAL.value):
                if not evaluated:
                    p.add("chosen-by-score", f"{e.kind} of {sid} before its evaluation")
            if e.kind in ("report_upward", "forward_to_city"):
                phase = c.phase_at(e.at)
                upward_phases[phase.code if phase is not None else "none"] += 1
            if e.kind == "object_transfer":
                _check_objection(p, sid, events, i)
            if e.kind == "request_extension":
                _check_extension(p, sid, events, i)
        _check_intake(p, c, sid, row, events[0])
        if row.channel in ONLINE and events[0].actor.role in (Role.PROPOSER, Role.INFORMATION_OFFICER):
            online += 1
            online_outside += not in_office_hours(c, sim, events[0].at)
        if row.state in OPEN_STATES:
            p.add("closed", f"{sid} still {row.state.value}")
    for at, actors in by_second.items():
        if len(actors) > 1:
            p.add("same-second", f"{at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S} by {', '.join(sorted(actors))}")
    if online >= 100 and online_outside < online // 4:
        p.add("citizens-any-time", f"only {online_outside} of {online} on-line submissions outside office hours")
    if sim.total >= 1000:
        for phase in ("implementation", "summary"):
            if upward_phases[phase] == 0:
                p.add("upward-phases", f"no 呈报/呈送 in the {phase} phase ({dict(upward_phases)})")
    if set(upward_phases) - {"implementation", "summary"}:
        p.add("upward-phases", f"呈报/呈送 outside implementation and summary: {dict(upward_phases)}")
    _check_quota(p, sim)
    _check_institutions(p, sim, rows)
    _check_choices(p, rows, histories)
    for problem in sim.flow.verify_all():
        p.add("closed", f"history: {problem}")
    return p.lines()


def _check_intake(p: Problems, c: Campaign, sid: str, row: Suggestion, receive: Event) -> None:
    actor, channel = receive.actor, row.channel
    if channel is Channel.RECOMMENDATION_FORM:
        if actor.role is not Role.RECOMMENDING_UNIT or actor.unit != row.recommending_unit:
            p.add("intake", f"推荐表 {sid} entered by {actor.key} for {row.recommending_unit}")
        day = local_date(receive.at)
        notice = c.notice.issued_on if c.notice is not None else dt.date.min
        if not day > notice or not c.phase(c.recommendation.deadline_phase).contains(day):
            p.add("recommendation-window", f"推荐表 {sid} on {day} (notice {notice})")
    elif row.recommending_unit is not None:
        p.add("intake", f"{sid} names recommending unit {row.recommending_unit} but came by {channel.value}")
    elif channel in OFFICE_CHANNELS:
        if actor.role is not Role.COLLECTION_OFFICE:
            p.add("intake", f"{channel.value} {sid} entered by {actor.key}")
    elif actor.role not in (Role.PROPOSER, Role.INFORMATION_OFFICER):
        p.add("intake", f"{channel.value} {sid} entered by {actor.key}")


def _next(events: list[Event], i: int, kinds: set[str]) -> Event | None:
    return next((e for e in events[i + 1:] if e.kind in kinds), None)


def _check_objection(p: Problems, sid: str, events: list[Event], i: int) -> None:
    objection = events[i]
    ruling = _next(events, i, {"accept_objection", "reject_objection", "withdraw"})
    if ruling is None or ruling.kind == "withdraw":
        if ruling is None:
            p.add("misroute", f"objection of {sid} never ruled on")
        return
    if ruling.actor.role is not Role.COLLECTION_OFFICE:
        p.add("misroute", f"objection of {sid} ruled on by {ruling.actor.key}")
    if ruling.kind == "accept_objection":
        again = _next(events, i, {"transfer", "withdraw"})
        if again is None or again.changes.get("lead_unit") == objection.actor.unit:
            p.add("misroute", f"{sid}: accepted objection of {objection.actor.unit} not routed to another unit")


def _check_extension(p: Problems, sid: str, events: list[Event], i: int) -> None:
    request = events[i]
    ruling = _next(events, i, {"approve_extension", "reject_extension", "decide", "reply", "withdraw"})
    if ruling is None or ruling.kind in ("decide", "reply"):
        p.add("extension", f"extension request of {sid} not ruled on before the step ended")
        return
    if ruling.kind == "withdraw":
        return
    head = ruling.actor
    if head.role is not Role.HANDLING_UNIT_HEAD or head.unit != request.actor.unit:
        p.add("extension", f"extension of {sid} requested by {request.actor.key} ruled on by {head.key}")
    days = request.payload.get("days")
    if not isinstance(days, int) or not 1 <= days <= 30:
        p.add("extension", f"extension of {sid} for {days} days")


def _check_quota(p: Problems, sim: CampaignSimulator) -> None:
    c, cfg = sim.campaign, sim.config
    rows = quota_report_from_store(c, sim.store)
    missed = {r.unit for r in rows if not r.met}
    expected = min(cfg.quota_missers, len(rows))
    if sim.total >= 1000 and len(missed) != expected:
        p.add("quota", f"{len(missed)} units missed their quota, configured {expected}: {sorted(missed)}")
    ceiling = c.recommendation.minimum + cfg.extra_recommendations_max
    for r in rows:
        if r.recommended > ceiling:
            p.add("quota", f"{r.unit} recommended {r.recommended}, more than {ceiling}")
    met = [r.recommended for r in rows if r.met]
    if sim.total >= 1000 and met and max(met) - min(met) < 2:
        p.add("quota", f"no spread among the units that met their quota: {sorted(met)}")


def _check_institutions(p: Problems, sim: CampaignSimulator, rows: dict[str, Suggestion]) -> None:
    via = sim.campaign.recommendation.recommended_via
    for sid, kind in sim.institutions.items():
        if rows[sid].recommending_unit != via.get(kind):
            p.add("institutions", f"{kind} suggestion {sid} recommended by {rows[sid].recommending_unit}")


def _check_choices(p: Problems, rows: dict[str, Suggestion], histories: dict[str, list[Event]]) -> None:
    def total(s: Suggestion) -> int:
        return s.evaluation.total if s.evaluation is not None else -1

    pool = [s for s in rows.values() if s.evaluation is not None and s.outcome is not None
            and s.outcome.value in ADOPTED]
    chosen = {
        "reward": {s.id for s in rows.values() if s.reward_tier is not None},
        "原件": {s.id for s in rows.values() if ReportForm.ORIGINAL in s.upward_reports},
        "typical case": {s.id for s in rows.values() if s.typical_case},
    }
    for what, ids in chosen.items():
        for sid in ids:
            s = rows[sid]
            if s.outcome is None or s.outcome.value not in ADOPTED or s.evaluation is None:
                p.add("chosen-by-score", f"{what} {sid} is {s.outcome} / evaluated: {s.evaluation is not None}")
        if ids:
            lowest_in = min(total(rows[sid]) for sid in ids)
            left_out = [total(s) for s in pool if s.id not in ids]
            if left_out and max(left_out) > lowest_in:
                p.add("chosen-by-score", f"{what}: a suggestion scored {max(left_out)} left out, one scored "
                                         f"{lowest_in} chosen")
    nominees = sorted((s for s in rows.values() if s.reward_tier is not None), key=lambda s: -total(s))
    for better, worse in itertools.pairwise(nominees):
        assert better.reward_tier is not None and worse.reward_tier is not None
        tiers = TIER_ORDER[better.reward_tier.value], TIER_ORDER[worse.reward_tier.value]
        if (total(better) > total(worse) and tiers[0] > tiers[1]) or (total(better) == total(worse)
                                                                       and tiers[0] != tiers[1]):
            p.add("chosen-by-score", f"reward tier of {better.id} ({total(better)}, {better.reward_tier.value}) "
                                     f"against {worse.id} ({total(worse)}, {worse.reward_tier.value})")


# --- the checks over simulated campaigns --------------------------------------------------------------------


def simulate(suggestions: int, seed: int, kind: type[CampaignSimulator] = CampaignSimulator,
             config: SimulationConfig | None = None) -> CampaignSimulator:
    from jianyi_flow.presets import yongchuan_2024

    sim = kind(yongchuan_2024(), MemoryStore(), seed=seed, suggestions=suggestions, config=config)
    sim.run()
    return sim


@pytest.fixture(scope="module")
def run1000() -> CampaignSimulator:
    return simulate(1000, 1)


def test_a_thousand_suggestion_campaign_keeps_every_invariant(run1000: CampaignSimulator) -> None:
    assert check_simulation(run1000) == []


def test_every_path_of_the_workflow_happens(run1000: CampaignSimulator) -> None:
    kinds = Counter(e.kind for e in iter_events(run1000.store))
    for kind in ("receive", "register", "not_accept", "transfer", "object_transfer", "accept_objection",
                 "reject_objection", "research", "decide", "reply", "rate", "withdraw", "reopen",
                 "request_extension", "approve_extension", "reject_extension", "flag_overdue", "close_unrated",
                 "evaluate", "report_upward", "nominate_reward", "forward_to_city", "record_adoption",
                 "mark_typical"):
        assert kinds[kind] > 0, f"no {kind} event in a 1,000-suggestion campaign"
    assert kinds["receive"] == 1000
    states = Counter(s.state for s in iter_suggestions(run1000.store))
    assert set(states) <= {State.RATED, State.UNRATED, State.NOT_ACCEPTED, State.WITHDRAWN}


def test_the_run_works_on_the_calendars_days_not_the_weeks(run1000: CampaignSimulator) -> None:
    """调休 Saturdays are worked (2024-09-14, 2024-10-12), 中秋节 2024-09-17 and 国庆 10-01..10-07 are not."""
    days = Counter(local_date(e.at) for e in iter_events(run1000.store)
                   if e.actor.role is Role.COLLECTION_OFFICE)
    assert days[dt.date(2024, 9, 14)] > 0 and days[dt.date(2024, 10, 12)] > 0
    for holiday in [dt.date(2024, 9, 17), *(dt.date(2024, 10, d) for d in range(1, 8))]:
        assert days[holiday] == 0, holiday


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ten_thousand_suggestions_keep_every_invariant(seed: int) -> None:
    assert check_simulation(simulate(10_000, seed)) == []


# --- the checker can fail ----------------------------------------------------------------------------------


class WeekendOffice(CampaignSimulator):
    """Broken: the office and units work any day of the week, ignoring the calendar."""

    def _office_on(self, day: dt.date, after: int | None = None) -> int:
        while True:
            ts = self._claim(self._office_ranges(day, after))
            if ts is not None:
                return ts
            day += dt.timedelta(days=1)

    def _office_after(self, ts: int, working_days: int) -> int:
        return self._office_on(dt.datetime.fromtimestamp(ts, SHANGHAI).date() + dt.timedelta(days=working_days), ts)


class EarlyRecommendations(CampaignSimulator):
    """Broken: units send their 推荐表 from the first day of launch, before the notice."""

    def _recommendation_days(self, days: list[dt.date]) -> list[dt.date]:
        return [d for d in days if self.calendar.is_working_day(d)]


class SharedSeconds(CampaignSimulator):
    """Broken: seconds are drawn without checking that another actor already has them."""

    def _claim(self, ranges: list[tuple[int, int]]) -> int | None:  # type: ignore[override]
        ranges = [(lo, hi) for lo, hi in ranges if hi > lo]
        if not ranges:
            return None
        lo, hi = ranges[0]
        return lo + (hi - lo) // 2  # everybody at the middle of the first free period


class WorstFirst(CampaignSimulator):
    """Broken: rewards, 原件 and typical cases go to the worst-scored evaluated suggestions."""

    @staticmethod
    def _best_first(plans: list[Any]) -> list[Any]:
        return sorted(plans, key=lambda p: (p.total, p.sid))


@pytest.mark.parametrize(
    ("kind", "invariant"),
    [(WeekendOffice, "office-hours"), (EarlyRecommendations, "recommendation-window"),
     (SharedSeconds, "same-second"), (WorstFirst, "chosen-by-score")],
)
def test_the_checker_catches_a_broken_simulator(kind: type[CampaignSimulator], invariant: str) -> None:
    problems = check_simulation(simulate(1000, 4, kind))
    assert any(line.startswith(f"{invariant}:") for line in problems), problems

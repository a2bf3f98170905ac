"""The campaign simulator: complete, phase-correct and reproducible by seed."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections import Counter
from collections.abc import Callable

import pytest

from jianyi_flow import MemoryStore, State, ValidationError
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.domain.clock import local_date
from jianyi_flow.domain.history import verify_events
from jianyi_flow.quota import quota_report_from_store
from jianyi_flow.simulation import CampaignSimulator, SimulationConfig
from jianyi_flow.storage.base import Store, iter_events, iter_suggestions


def digest(store: Store) -> str:
    h = hashlib.sha256()
    for e in iter_events(store):
        h.update(f"{e.suggestion_id}:{e.version}:{e.hash}\n".encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def run300() -> tuple[CampaignSimulator, Campaign]:
    from jianyi_flow.presets import yongchuan_2024

    campaign = yongchuan_2024()
    sim = CampaignSimulator(campaign, MemoryStore(), seed=11, suggestions=300)
    sim.run()
    return sim, campaign


def test_same_seed_same_event_log_and_different_seed_differs() -> None:
    from jianyi_flow.presets import yongchuan_2024

    def run(seed: int) -> str:
        store = MemoryStore()
        CampaignSimulator(yongchuan_2024(), store, seed=seed, suggestions=120).run()
        return digest(store)

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_the_virtual_clock_never_goes_back_and_the_batch_size_changes_nothing() -> None:
    """Steps scheduled while a batch runs still run in time order: the log is the same for any batch size."""
    from jianyi_flow.presets import yongchuan_2024

    def run(batch: int) -> tuple[str, int]:
        store = MemoryStore()
        sim = CampaignSimulator(yongchuan_2024(), store, seed=8, suggestions=400, batch=batch)
        seen: list[dt.datetime] = []
        set_clock = sim.clock.set

        def watch(value: dt.datetime) -> dt.datetime:
            seen.append(value)
            return set_clock(value)

        sim.clock.set = watch  # type: ignore[method-assign]
        sim.run()
        backwards = sum(1 for a, b in itertools.pairwise(seen) if b < a)
        return digest(store), backwards

    one, back_one = run(1)
    big, back_big = run(1000)
    assert back_one == back_big == 0
    assert one == big == run(7)[0]


def test_every_path_of_the_workflow_happens(run300: tuple[CampaignSimulator, Campaign]) -> None:
    sim, _ = run300
    kinds = Counter(e.kind for e in iter_events(sim.store))
    for kind in ("receive", "register", "not_accept", "transfer", "return_transfer", "research", "decide", "reply",
                 "rate", "withdraw", "reopen", "extend", "flag_overdue", "close_unrated", "evaluate",
                 "report_upward", "nominate_reward", "forward_to_city", "record_adoption"):
        assert kinds[kind] > 0, f"no {kind} event in a 300-suggestion campaign"
    assert kinds["receive"] == 300


def test_histories_verify_and_nothing_is_left_open(run300: tuple[CampaignSimulator, Campaign]) -> None:
    sim, _ = run300
    open_states = {State.RECEIVED, State.REGISTERED, State.TRANSFERRED, State.RESEARCHED, State.RETURNED,
                   State.ADOPTED, State.PARTIALLY_ADOPTED, State.DECLINED, State.REPLIED}
    for s in iter_suggestions(sim.store):
        assert verify_events(s.id, sim.store.history(s.id), s) == []
        assert s.state not in open_states, f"{s.id} still {s.state} after the handling tail"


def test_commands_respect_the_phase_windows(run300: tuple[CampaignSimulator, Campaign]) -> None:
    sim, campaign = run300
    launch, implementation, summary = campaign.phases
    for e in iter_events(sim.store):
        day = local_date(e.at)
        if e.kind == "receive":
            assert launch.start <= day <= implementation.end
        if e.kind in ("evaluate", "report_upward", "forward_to_city", "nominate_reward", "record_adoption"):
            assert summary.start <= day <= summary.end


def test_some_units_miss_their_quota_and_the_rest_meet_it(run300: tuple[CampaignSimulator, Campaign]) -> None:
    sim, campaign = run300
    rows = quota_report_from_store(campaign, sim.store)
    assert any(not r.met for r in rows)
    assert sum(r.met for r in rows) > len(rows) // 2
    assert {r.unit for r in rows if not r.met} == set(sim.missers)


def test_slow_units_go_overdue(run300: tuple[CampaignSimulator, Campaign]) -> None:
    sim, _ = run300
    flagged = {e.suggestion_id for e in iter_events(sim.store) if e.kind == "flag_overdue"}
    slow_leads = {s.id for s in iter_suggestions(sim.store) if s.lead_unit in sim.slow}
    assert flagged & slow_leads


def test_bad_arguments_are_refused() -> None:
    from jianyi_flow.presets import yongchuan_2024

    with pytest.raises(ValidationError) as e:
        CampaignSimulator(yongchuan_2024(), MemoryStore(), suggestions=-1)
    assert e.value.field == "suggestions"
    with pytest.raises(ValidationError) as e:
        SimulationConfig(misrouted=1.5)
    assert e.value.field == "misrouted"
    for bad_batch in (0, -3, 2.5, True):
        with pytest.raises(ValidationError) as e:
            CampaignSimulator(yongchuan_2024(), MemoryStore(), batch=bad_batch)  # type: ignore[arg-type]
        assert e.value.field == "batch"
    from jianyi_flow.domain.model import Outcome

    for bad_mix in ({}, {Outcome.ADOPTED: 0.0}, {Outcome.ADOPTED: -1.0}, {"adopted": 1.0}):
        with pytest.raises(ValidationError) as e:
            SimulationConfig(outcome_mix=bad_mix)  # type: ignore[arg-type]
        assert e.value.field == "outcome_mix"


def test_the_pytest_plugin_fixtures(jianyi_simulator: Callable[..., CampaignSimulator],
                                    jianyi_memory_flow: object) -> None:
    sim = jianyi_simulator(suggestions=30, seed=3)
    result = sim.run()
    assert result.suggestions == 30
    assert result.ended > result.started + dt.timedelta(days=120)
    assert len(list(iter_suggestions(sim.store))) == 30


def test_the_full_campaign_gives_the_same_history_digest_on_memory_and_sqlite(tmp_path: object) -> None:
    """Issue: same seed → identical event log on every store (the report's history_digest)."""
    from pathlib import Path

    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.report import build_report
    from jianyi_flow.sql import SqlStore

    assert isinstance(tmp_path, Path)
    campaign = yongchuan_2024()
    memory = MemoryStore()
    memory_run = CampaignSimulator(campaign, memory, seed=21, suggestions=250).run()
    sqlite = SqlStore.open(f"sqlite:///{tmp_path / 'sim.db'}", migrate=True)
    try:
        sqlite_run = CampaignSimulator(campaign, sqlite, seed=21, suggestions=250).run()
        assert memory_run == sqlite_run
        a = build_report(campaign, memory, memory_run.ended).to_dict()
        b = build_report(campaign, sqlite, sqlite_run.ended).to_dict()
        assert a["history_digest"] == b["history_digest"] == digest(memory) == digest(sqlite)
        assert a == b
    finally:
        sqlite.close()


def test_the_collector_is_given_back_as_it_was_found() -> None:
    """run() freezes long-lived objects while it runs and unfreezes them at the end, never the caller's."""
    import gc

    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.simulation import MIDDLE_GENERATION_EVERY

    seen: list[int] = []
    thresholds: list[tuple[int, int, int]] = []

    def spy(done: int, total: int) -> None:
        seen.append(gc.get_freeze_count())
        thresholds.append(gc.get_threshold())

    assert gc.get_freeze_count() == 0
    usual = gc.get_threshold()
    CampaignSimulator(yongchuan_2024(), MemoryStore(), seed=2, suggestions=600, progress=spy).run()
    assert max(seen) > 0  # it froze while running
    assert set(thresholds) == {(usual[0], max(usual[1], MIDDLE_GENERATION_EVERY), usual[2])}  # middle rarely
    assert gc.get_freeze_count() == 0  # and gave everything back
    assert gc.get_threshold() == usual

    seen.clear()
    thresholds.clear()
    CampaignSimulator(yongchuan_2024(), MemoryStore(), seed=2, suggestions=600, progress=spy, freeze_gc=False).run()
    assert max(seen) == 0
    assert set(thresholds) == {usual}

    gc.freeze()  # the caller froze objects of its own: the simulator leaves the collector alone
    try:
        mine = gc.get_freeze_count()
        seen.clear()
        thresholds.clear()
        CampaignSimulator(yongchuan_2024(), MemoryStore(), seed=2, suggestions=600, progress=spy).run()
        assert max(seen) <= mine  # nothing more was frozen (frozen objects that die leave the count)
        assert set(thresholds) == {gc.get_threshold()}  # nor the thresholds changed
        assert 0 < gc.get_freeze_count() <= mine
    finally:
        gc.unfreeze()


def test_the_collector_is_given_back_when_the_run_fails() -> None:
    import gc

    from jianyi_flow.presets import yongchuan_2024

    usual = gc.get_threshold()
    calls: list[int] = []

    def fail_later(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:  # a few hundred arrivals in: days have been ticked and frozen
            assert gc.get_freeze_count() > 0 and gc.get_threshold() != usual
            raise RuntimeError("the portal's progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar"):
        CampaignSimulator(yongchuan_2024(), MemoryStore(), seed=2, suggestions=2000, progress=fail_later).run()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == usual


def test_the_thresholds_someone_else_set_meanwhile_are_left_alone() -> None:
    import gc

    from jianyi_flow.presets import yongchuan_2024

    usual = gc.get_threshold()
    theirs = (usual[0] + 1, 5, 5)

    def set_theirs(done: int, total: int) -> None:
        gc.set_threshold(*theirs)

    try:
        CampaignSimulator(yongchuan_2024(), MemoryStore(), seed=2, suggestions=300, progress=set_theirs).run()
        assert gc.get_threshold() == theirs
    finally:
        gc.set_threshold(*usual)


def test_the_summary_phase_evaluates_only_the_runs_own_suggestions() -> None:
    """A store that already holds a handled suggestion of the campaign: the run leaves it alone.

    The summary phase picks among the suggestions this run handled (its own record of their
    states, kept from command results and tick events), not among every handled row of the
    campaign: a row the run did not create has no plan to follow.
    """
    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.service.campaign_flow import make_flow

    campaign = yongchuan_2024()
    store = MemoryStore()
    # a first run (ids of its own) leaves handled suggestions of the same campaign in the store
    ids = (f"X{n:07d}" for n in itertools.count(1))
    first = CampaignSimulator(campaign, store, seed=2, suggestions=40,
                              flow_factory=lambda c, s, clock: make_flow(c, s, clock, ids=lambda: next(ids)))
    first.run()
    before = {s.id: s.version for s in iter_suggestions(store)}
    assert any(s.state in _handled() for s in iter_suggestions(store))
    second = CampaignSimulator(campaign, store, seed=3, suggestions=40,
                               config=SimulationConfig(evaluated=1.0))
    second.run()
    after = {s.id: s.version for s in iter_suggestions(store) if s.id in before}
    assert after == before  # the first run's rows were not touched
    own = {s.id: s.state for s in iter_suggestions(store) if s.id not in before}
    assert len(own) == 40
    # and the run's own record of each state is the store's
    assert {sid: plan.state for sid, plan in second._plans.items()} == own


def _handled() -> frozenset[State]:
    from jianyi_flow.domain.workflow import HANDLED_STATES

    return frozenset(HANDLED_STATES)


class _RecordSaysOpen(CampaignSimulator):
    """A record gone stale the other way: every suggestion of the run still marked open."""

    def _anything_open(self, candidates: list[str]) -> bool:
        for plan in self._plans.values():
            if plan.state not in (State.RECEIVED, State.REGISTERED):
                plan.state = State.REGISTERED
        candidates[:] = sorted(self._plans)
        return super()._anything_open(candidates)


class _RecordSaysClosed(CampaignSimulator):
    """A record gone stale: every suggestion of the run marked closed (withdrawn)."""

    def _anything_open(self, candidates: list[str]) -> bool:
        for plan in self._plans.values():
            plan.state = State.WITHDRAWN
        return super()._anything_open(candidates)


class _AskTheStoreEachDay(CampaignSimulator):
    """The tail's question as first written: one store query a day."""

    def _anything_open(self, candidates: list[str]) -> bool:
        from jianyi_flow.service.flow import OPEN_STATES

        return bool(self.flow.query(states=OPEN_STATES, limit=1))


def test_the_tail_ticks_exactly_while_the_store_holds_an_open_suggestion() -> None:
    """The tail asks its own record first, then the store: the same days ticked, the same log.

    Seed 1 at 200 suggestions leaves a tail of 31 days.  With a suggestion of someone else's
    left open in the store (received, never registered), the tail ticks to its very end.
    """
    from jianyi_flow import Actor, Proposer, Query, Role, SuggestionDraft
    from jianyi_flow.domain.clock import SHANGHAI, FakeClock
    from jianyi_flow.presets import yongchuan_2024
    from jianyi_flow.service.campaign_flow import make_flow
    from jianyi_flow.service.flow import OPEN_STATES

    campaign = yongchuan_2024()

    def run(kind: type[CampaignSimulator], foreign_open: bool) -> tuple[int, str, list[str]]:
        store = MemoryStore()
        if foreign_open:
            clock = FakeClock(dt.datetime(2024, 8, 2, 10, tzinfo=SHANGHAI))
            draft = SuggestionDraft(title="一条别人的建议", subject="别处", problem="问题", measures="措施",
                                    area=campaign.area_codes[0], proposer=Proposer(name="张三"))
            make_flow(campaign, store, clock).receive(draft, Actor("portal-user", Role.PROPOSER),
                                                      suggestion_id="FOREIGN-1")
        result = kind(campaign, store, seed=1, suggestions=200).run()
        still_open = [s.id for s in store.query(Query(states=OPEN_STATES))]
        return result.ticks, digest(store), still_open

    plain = run(CampaignSimulator, False)
    assert plain == run(_AskTheStoreEachDay, False)
    assert plain == run(_RecordSaysOpen, False) == run(_RecordSaysClosed, False)  # the store decides
    assert plain[2] == []
    foreign = run(CampaignSimulator, True)
    assert foreign == run(_AskTheStoreEachDay, True)
    assert foreign[2] == ["FOREIGN-1"]
    assert foreign[0] > plain[0] + 200  # it ticked to the end of the year-long tail (plain stops 31 days in)

"""The campaign simulator: reproducible by seed, on any store, without side effects on the process.

What the simulated campaign looks like is checked in test_simulation_invariants.py; resuming
a killed run in test_simulation_resume.py; campaigns from a file in
test_simulation_campaign_file.py.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from jianyi_flow import FakeClock, Flow, MemoryStore, ValidationError, make_flow
from jianyi_flow import simulation as simulation_module
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.domain.model import Outcome, Role
from jianyi_flow.report import history_digest
from jianyi_flow.simulation import MAX_SUGGESTIONS, CampaignSimulator, SimulationConfig
from jianyi_flow.storage.base import (
    BatchingStore,
    Change,
    Event,
    IdempotencyRecord,
    MetadataStore,
    OutboxMessage,
    Query,
    Store,
    iter_events,
    iter_suggestions,
)
from jianyi_flow.storage.base import Suggestion as Row


def campaign() -> Campaign:
    from jianyi_flow.presets import yongchuan_2024

    return yongchuan_2024()


def digest(store: Store) -> str:
    return history_digest((e.suggestion_id, e.version, e.hash) for e in iter_events(store))


def run(store: Store | None = None, seed: int = 5, suggestions: int = 150, **kwargs: object) -> tuple[str, Store]:
    store = store if store is not None else MemoryStore()
    CampaignSimulator(campaign(), store, seed=seed, suggestions=suggestions, **kwargs).run()  # type: ignore[arg-type]
    return digest(store), store


def test_same_seed_same_event_log_and_different_seed_differs() -> None:
    assert run(seed=5)[0] == run(seed=5)[0]
    assert run(seed=5)[0] != run(seed=6)[0]


def test_the_virtual_clock_never_goes_back_and_the_batch_size_changes_nothing() -> None:
    def watched(batch: int) -> tuple[str, int]:
        store = MemoryStore()
        sim = CampaignSimulator(campaign(), store, seed=8, suggestions=200, batch=batch)
        seen: list[dt.datetime] = []
        set_clock = sim.clock.set

        def watch(value: dt.datetime) -> dt.datetime:
            seen.append(value)
            return set_clock(value)

        sim.clock.set = watch  # type: ignore[method-assign]
        sim.run()
        return digest(store), sum(1 for a, b in itertools.pairwise(seen) if b <= a)

    one, back_one = watched(1)
    big, back_big = watched(10_000)
    assert back_one == back_big == 0  # strictly forwards: no two agenda items share a second
    assert one == big


class PlainStore:
    """A store with the plain interface only: no batches, no metadata, no history scan."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def commit(self, change: Change) -> Event:
        return self.inner.commit(change)

    def load(self, suggestion_id: str) -> Row:
        return self.inner.load(suggestion_id)

    def history(self, suggestion_id: str) -> list[Event]:
        return self.inner.history(suggestion_id)

    def query(self, query: Query) -> list[Row]:
        return self.inner.query(query)

    def count(self, query: Query) -> int:
        return self.inner.count(query)

    def idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self.inner.idempotency(scope, key)

    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        return self.inner.claim(limit, now, lease)

    def mark_sent(self, ids: Iterable[int], at: dt.datetime) -> None:
        self.inner.mark_sent(ids, at)

    def close(self) -> None:
        self.inner.close()


def test_a_store_with_only_the_plain_interface_gives_the_same_log() -> None:
    plain = PlainStore()
    assert isinstance(plain, Store)
    assert not isinstance(plain, BatchingStore) and not isinstance(plain, MetadataStore)
    with pytest.raises(ValidationError) as refused:  # no vault, and no one said that is fine
        run(plain)
    assert refused.value.code == "no_vault"

    def no_vault(campaign: Campaign, store: Store, clock: FakeClock, ids: Callable[[], str],
                 salts: Callable[[], str]) -> Flow:
        return make_flow(campaign, store, clock, policy=campaign.deadlines, ids=ids, salts=salts, vault=False)

    assert run(PlainStore(), flow_factory=no_vault)[0] == run(flow_factory=no_vault)[0]


def test_the_store_batches_when_it_can() -> None:
    class Counting(MemoryStore):
        batches = 0

        def batch(self):  # type: ignore[no-untyped-def]
            Counting.batches += 1
            return super().batch()

    run(Counting(), batch=50)
    assert Counting.batches > 0


def test_the_result_counts_what_the_store_holds() -> None:
    store = MemoryStore()
    result = CampaignSimulator(campaign(), store, seed=3, suggestions=120).run()
    kinds = Counter(e.kind for e in iter_events(store) if e.actor.role is not Role.SYSTEM)
    assert dict(result.by_command) == {("decide" if k in ("adopt", "adopt_partially", "decline") else k): n
                                       for k, n in kinds.items()}
    assert result.commands == sum(kinds.values()) and result.replayed == 0
    assert result.tick_events == sum(1 for e in iter_events(store) if e.actor.role is Role.SYSTEM)
    assert result.suggestions == len(list(iter_suggestions(store))) == 120
    assert result.started == dt.datetime(2024, 8, 1, tzinfo=result.started.tzinfo)
    assert result.ended > dt.datetime(2025, 1, 1, tzinfo=result.started.tzinfo)


def test_a_simulator_runs_once() -> None:
    sim = CampaignSimulator(campaign(), MemoryStore(), seed=1, suggestions=5)
    sim.run()
    with pytest.raises(ValidationError) as info:
        sim.run()
    assert info.value.field == "run"


def test_no_suggestions_is_a_campaign_too() -> None:
    store = MemoryStore()
    result = CampaignSimulator(campaign(), store, seed=1, suggestions=0).run()
    assert result.commands == 0 and list(iter_suggestions(store)) == []


def test_the_run_leaves_the_process_as_it_found_it() -> None:
    """No garbage-collector tuning, no warnings filters: a library call has no process-wide side effects."""
    before = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count(), list(warnings.filters))
    during: list[tuple[object, ...]] = []

    def spy(done: int, total: int) -> None:
        during.append((gc.isenabled(), gc.get_threshold(), gc.get_freeze_count(), list(warnings.filters)))

    CampaignSimulator(campaign(), MemoryStore(), seed=2, suggestions=1200, progress=spy).run()
    assert during and all(seen == before for seen in during)
    assert (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count(), list(warnings.filters)) == before
    assert not hasattr(simulation_module, "gc") and not hasattr(simulation_module, "warnings")


def test_progress_is_reported_up_to_the_total() -> None:
    seen: list[tuple[int, int]] = []
    CampaignSimulator(campaign(), MemoryStore(), seed=2, suggestions=1100, progress=lambda d, t: seen.append((d, t)))
    assert seen == []  # nothing before run()
    CampaignSimulator(campaign(), MemoryStore(), seed=2, suggestions=1100,
                      progress=lambda d, t: seen.append((d, t))).run()
    assert seen == [(500, 1100), (1000, 1100), (1100, 1100)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"suggestions": -1}, "suggestions"), ({"suggestions": MAX_SUGGESTIONS + 1}, "suggestions"),
     ({"suggestions": 2.5}, "suggestions"), ({"suggestions": True}, "suggestions"), ({"seed": "1"}, "seed"),
     ({"seed": 2**70}, "seed"), ({"batch": 0}, "batch"), ({"batch": 2.5}, "batch"), ({"batch": True}, "batch"),
     ({"config": {"misrouted": 0.1}}, "config")],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CampaignSimulator(campaign(), MemoryStore(), **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"misrouted": 1.5}, "misrouted"), ({"unrated": -0.1}, "unrated"), ({"quota_missers": -1}, "quota_missers"),
     ({"tail_days": 2.5}, "tail_days"), ({"extra_recommendations": -1.0}, "extra_recommendations"),
     ({"outcome_mix": {}}, "outcome_mix"), ({"outcome_mix": {Outcome.ADOPTED: 0.0}}, "outcome_mix"),
     ({"outcome_mix": {Outcome.ADOPTED: -1.0}}, "outcome_mix"), ({"outcome_mix": {"adopted": 1.0}}, "outcome_mix")],
)
def test_a_bad_configuration_is_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SimulationConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_the_pytest_plugin_fixture(jianyi_simulator: Callable[..., CampaignSimulator]) -> None:
    sim = jianyi_simulator(suggestions=30, seed=3)
    result = sim.run()
    assert result.suggestions == 30
    assert result.ended > result.started + dt.timedelta(days=120)
    assert len(list(iter_suggestions(sim.store))) == 30


def test_the_same_log_on_memory_and_sqlite(tmp_path: Path) -> None:
    """Same seed → the same event log on every store (the report's history_digest)."""
    try:
        from jianyi_flow.sql import SqlStore
    except ImportError:
        pytest.skip("the SQL store does not import in this checkout")
    sqlite = SqlStore.open(f"sqlite:///{tmp_path / 'sim.db'}", migrate=True)
    try:
        assert run(sqlite, seed=21, suggestions=250)[0] == run(seed=21, suggestions=250)[0]
    finally:
        sqlite.close()


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--suggestions", "100000000"], "from 0 to 1,000,000"), (["--preset", "nowhere.toml"], "cannot read"),
     (["--preset", "nowhere-2030"], "no such campaign file")],
)
def test_the_command_line_refuses_in_one_line(args: list[str], says: str) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "jianyi_flow.cli", "simulate", *args], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and says in result.stderr and "Traceback" not in result.stderr

"""pytest fixtures for portals that build on jianyi_flow (registered through ``pytest11``).

Installed with the package, so a portal's own tests can simulate a campaign in a few lines::

    def test_my_dashboard(jianyi_simulator):
        sim = jianyi_simulator(suggestions=200, seed=7)
        sim.run()
        assert my_dashboard(sim.store).overdue_count == len(sim.flow.overdue())

Fixtures: ``jianyi_campaign`` (the Yongchuan 2024 preset), ``jianyi_clock`` (a FakeClock on
the first day of the campaign, 09:00 Asia/Shanghai), ``jianyi_memory_flow`` and
``jianyi_sqlite_flow`` (a campaign Flow on a MemoryStore / on a fresh SQLite file), and
``jianyi_simulator`` (a factory of CampaignSimulator).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .domain.campaign import Campaign
from .domain.clock import SHANGHAI, FakeClock
from .presets import yongchuan_2024
from .service.campaign_flow import make_flow
from .service.flow import Flow
from .simulation import CampaignSimulator, SimulationConfig
from .storage.base import Store
from .storage.memory import MemoryStore


@pytest.fixture
def jianyi_campaign() -> Campaign:
    """The 2024 Yongchuan campaign preset."""
    return yongchuan_2024()


@pytest.fixture
def jianyi_clock(jianyi_campaign: Campaign) -> FakeClock:
    """A FakeClock at 09:00 Asia/Shanghai on the campaign's first day."""
    first = jianyi_campaign.phases[0].start
    return FakeClock(dt.datetime.combine(first, dt.time(9), tzinfo=SHANGHAI))


@pytest.fixture
def jianyi_memory_flow(jianyi_campaign: Campaign, jianyi_clock: FakeClock) -> Flow:
    """A Flow for the campaign on an in-memory store."""
    return make_flow(jianyi_campaign, MemoryStore(), jianyi_clock)


@pytest.fixture
def jianyi_sqlite_flow(jianyi_campaign: Campaign, jianyi_clock: FakeClock, tmp_path: Path) -> Iterator[Flow]:
    """A Flow for the campaign on a fresh, migrated SQLite file in the test's tmp_path."""
    from .sql import SqlStore

    store = SqlStore.open(f"sqlite:///{tmp_path / 'jianyi.db'}", migrate=True)
    try:
        yield make_flow(jianyi_campaign, store, jianyi_clock)
    finally:
        store.close()


@pytest.fixture
def jianyi_simulator(jianyi_campaign: Campaign) -> Callable[..., CampaignSimulator]:
    """A factory: ``jianyi_simulator(suggestions=100, seed=0, store=None, config=None)``.

    ``store`` defaults to a new MemoryStore; the simulator's ``flow`` and ``store`` are
    attributes for the test to inspect after ``run()``.
    """

    def make(
        suggestions: int = 100, seed: int = 0, store: Store | None = None, config: SimulationConfig | None = None
    ) -> CampaignSimulator:
        return CampaignSimulator(
            jianyi_campaign, store if store is not None else MemoryStore(), seed=seed, suggestions=suggestions,
            config=config,
        )

    return make

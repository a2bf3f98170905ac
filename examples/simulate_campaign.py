"""Simulate a whole campaign and print the headline figures of its report.

Run: ``python examples/simulate_campaign.py [CAMPAIGN] [N] [SEED] [STORE_URL]``.  ``CAMPAIGN``
is a preset name or a campaign file (default ``yongchuan-2024``), ``N`` the number of
suggestions (default 500), ``SEED`` the random seed (default 1).  Without ``STORE_URL`` the
campaign runs on embedded SQLite in a temporary directory, removed afterwards; with one, on
that database, and running the same command again on it resumes a run that was killed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from jianyi_flow.presets import load
from jianyi_flow.report import build_report
from jianyi_flow.simulation import CampaignSimulator, SimulationResult
from jianyi_flow.sql import SqlStore


def simulate(url: str, campaign_name: str, suggestions: int, seed: int) -> tuple[SimulationResult, dict[str, Any]]:
    campaign = load(campaign_name)
    store = SqlStore.open(url, migrate=True)
    try:
        result = CampaignSimulator(campaign, store, seed=seed, suggestions=suggestions).run()
        return result, build_report(campaign, store, result.ended).to_dict()
    finally:
        store.close()


def main(campaign_name: str = "yongchuan-2024", suggestions: int = 500, seed: int = 1, url: str | None = None) -> None:
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            result, report = simulate(f"sqlite:///{Path(folder) / 'campaign.db'}", campaign_name, suggestions, seed)
    else:
        result, report = simulate(url, campaign_name, suggestions, seed)
    print(f"{report['theme']}: {report['suggestions']} suggestions, {report['events']} events")
    print(f"simulated {result.started:%Y-%m-%d} .. {result.ended:%Y-%m-%d}, {result.commands} commands"
          + (f" ({result.replayed} already in the store)" if result.replayed else ""))
    print("by state:", ", ".join(f"{k} {v}" for k, v in report["by_state"].items()))
    print(f"on-time rate {report['on_time_rate']:.1%}, adoption rate {report['adoption_rate']:.1%}")
    missed = [row["unit"] for row in report["quota"] if not row["met"]]
    print(f"units below their quota: {', '.join(missed) or 'none'}")
    print(f"history digest {report['history_digest']}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "yongchuan-2024", int(args[1]) if len(args) > 1 else 500,
         int(args[2]) if len(args) > 2 else 1, args[3] if len(args) > 3 else None)

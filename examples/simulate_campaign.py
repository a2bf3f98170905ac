"""Simulate the whole 2024 Yongchuan campaign on embedded SQLite and print the headline figures.

Run: ``python examples/simulate_campaign.py [N] [SEED]`` (defaults: 500 suggestions, seed 1).
The database is written to a temporary directory and removed afterwards.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.report import build_report
from jianyi_flow.simulation import CampaignSimulator
from jianyi_flow.sql import SqlStore


def main(suggestions: int = 500, seed: int = 1) -> None:
    campaign = yongchuan_2024()
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore.open(f"sqlite:///{Path(folder) / 'campaign.db'}", migrate=True)
        try:
            result = CampaignSimulator(campaign, store, seed=seed, suggestions=suggestions).run()
            report = build_report(campaign, store, result.ended).to_dict()
        finally:
            store.close()
    print(f"{campaign.theme}: {report['suggestions']} suggestions, {report['events']} events")
    print(f"simulated {result.started:%Y-%m-%d} .. {result.ended:%Y-%m-%d}, {result.commands} commands")
    print("by state:", ", ".join(f"{k} {v}" for k, v in report["by_state"].items()))
    print(f"on-time rate {report['on_time_rate']:.1%}, adoption rate {report['adoption_rate']:.1%}")
    missed = [row["unit"] for row in report["quota"] if not row["met"]]
    print(f"units below their quota of 2: {', '.join(missed) or 'none'}")
    print(f"history digest {report['history_digest']}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)

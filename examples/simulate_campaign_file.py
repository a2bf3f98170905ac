"""Simulate the fictional campaign of ``examples/yunshan-2025.toml`` and print its report.

A district or a year other than the presets needs no code: a campaign file (JSON or TOML,
docs/campaign.md) gives the phases, units, quota, office unit and hours, routing and
deadline policy.  This one is invented (see its notes).  Run:
``python examples/simulate_campaign_file.py [N] [SEED]`` (defaults: 300 suggestions, seed 1);
the same as ``jianyi-flow simulate --preset examples/yunshan-2025.toml --suggestions 300 --seed 1``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jianyi_flow import MemoryStore
from jianyi_flow.presets import load_file
from jianyi_flow.render import render_text
from jianyi_flow.report import build_report
from jianyi_flow.simulation import CampaignSimulator

CAMPAIGN = Path(__file__).with_name("yunshan-2025.toml")


def main(suggestions: int = 300, seed: int = 1) -> None:
    campaign = load_file(CAMPAIGN)
    store = MemoryStore()
    result = CampaignSimulator(campaign, store, seed=seed, suggestions=suggestions).run()
    sys.stdout.write(render_text(build_report(campaign, store, result.ended)))
    print(f"\nsimulated {result.suggestions} suggestions of {campaign.code}, {result.commands} commands, "
          f"{result.started:%Y-%m-%d} .. {result.ended:%Y-%m-%d}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

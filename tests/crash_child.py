"""The child process of tests/test_crash.py: a campaign simulation on a SQLite file, until it is killed.

Usage: ``python tests/crash_child.py URL SEED SUGGESTIONS``.  Prints ``started`` once the
store is open and ``finished <commands>`` if nobody kills it first (the test kills it with
SIGKILL mid-run, so that line means the kill came too late).
"""

from __future__ import annotations

import sys

from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.simulation import CampaignSimulator
from jianyi_flow.sql import SqlStore


def main(argv: list[str]) -> int:
    url, seed, suggestions = argv[1], int(argv[2]), int(argv[3])
    store = SqlStore.open(url, migrate=True)
    print("started", flush=True)
    result = CampaignSimulator(yongchuan_2024(), store, seed=seed, suggestions=suggestions).run()
    store.close()
    print(f"finished {result.commands}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

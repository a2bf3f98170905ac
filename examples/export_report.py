"""Simulate a small campaign in memory, then export its report in every format.

Run: ``python examples/export_report.py [OUT_DIR]`` (default: a temporary directory, listed
at the end).  Needs the reports extra: ``pip install 'jianyi_flow[reports]'``.  Personal
data is masked in every file: exports never contain a proposer's phone or address.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from jianyi_flow import MemoryStore
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.render import analysis_report, excerpt_report, render
from jianyi_flow.report import build_report
from jianyi_flow.simulation import CampaignSimulator


def main(out: Path) -> None:
    campaign = yongchuan_2024()
    store = MemoryStore()
    result = CampaignSimulator(campaign, store, seed=7, suggestions=200).run()
    report = build_report(campaign, store, result.ended)
    out.mkdir(parents=True, exist_ok=True)
    for fmt, name in (("text", "report.txt"), ("md", "report.md"), ("html", "report.html"),
                      ("json", "report.json"), ("xlsx", "report.xlsx"), ("csv", "report-csv")):
        render(report, fmt, out / name)
    (out / "摘报.md").write_text(excerpt_report(report), encoding="utf-8")
    (out / "分析报告.md").write_text(analysis_report(report), encoding="utf-8")
    for path in sorted(out.iterdir()):
        print(path)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(Path(folder))

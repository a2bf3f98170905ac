"""Simulate a small campaign in memory, then export its report in every format.

Run: ``python examples/export_report.py [OUT_DIR]`` (default: a temporary directory, listed
at the end).  Needs the reports extra: ``pip install 'jianyi_flow[reports]'``.  Personal
data is masked in every file: exports never contain a proposer's phone or address.

The report's header says which calendar mode its deadlines were counted in and, when some
are provisional (暂定: counted over a year whose holiday schedule is not published yet),
why.  When the store holds suggestions under more than one workflow or deadline-policy
version, a Markdown report is also written for each workflow version.
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
    report = build_report(campaign, store, result.ended)  # the default calendar: provisional mode
    out.mkdir(parents=True, exist_ok=True)
    for fmt, name in (("text", "report.txt"), ("md", "report.md"), ("html", "report.html"),
                      ("json", "report.json"), ("xlsx", "report.xlsx"), ("csv", "report-csv")):
        render(report, fmt, out / name)
    (out / "摘报.md").write_text(excerpt_report(report), encoding="utf-8")
    (out / "分析报告.md").write_text(analysis_report(report), encoding="utf-8")
    if report.versions.split:
        for n, row in enumerate(report.versions.workflow, start=1):
            one = build_report(campaign, store, result.ended, workflow_version=row.version)
            render(one, "md", out / f"report-workflow-{n}.md")
    print(f"calendar mode: {report.calendar_mode}; provisional deadlines: {report.provisional_deadlines}")
    if report.provisional_note:
        print(report.provisional_note)
    for path in sorted(out.iterdir()):
        print(path)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(Path(folder))

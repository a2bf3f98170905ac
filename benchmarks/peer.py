"""A peer engine: the same lifecycle as a BPMN process run by SpiffWorkflow, persisted to SQLite.

``peer.lifecycle_vs_spiffworkflow`` — speed-up, baseline / ours (higher is better); no
target (it says how the two engines compare per persisted step).

The lifecycle is the main line, seven steps: receive → register → transfer → research →
decide → reply → rate.

Ours: ``Flow`` on ``SqlStore("sqlite:///…")`` (file, WAL, ``synchronous=NORMAL``); each
step is one command — a read of the row, then one write transaction with the row, the
hash-chained event, outbox messages and (for transfer) unit links; deadlines computed on
the Chinese working calendar.

Baseline: a BPMN process (start event, seven user tasks in sequence, end event; the XML
is below) run by SpiffWorkflow.  Each step reads the workflow's JSON from a SQLite table
(same file settings: WAL, ``synchronous=NORMAL``), deserializes it with SpiffWorkflow's
own ``BpmnWorkflowSerializer``, completes the ready user task with the same inputs our
command gets (stored as task data), runs the engine steps, serializes the workflow and
writes it back in one transaction with an optimistic version check
(``UPDATE … WHERE id = ? AND version = ?``).  SpiffWorkflow keeps no per-step history,
deadlines or outbox: it does less than we do per step.

Both sides run the same number of lifecycles per round, rounds interleaved, best round each.

If SpiffWorkflow is not installed (``pip install spiffworkflow``) or its API does not
match, the figure is skipped with the reason.

Run alone: ``python -m benchmarks.peer [--quick]``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._common import Figure, figure, log, per_op, skipped
from ._fixtures import CO, LEAD, LIFECYCLE, draft, lifecycle, make_flow

_FLOWS = " ".join(
    f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
    for i, (a, b) in enumerate(zip(["start", *LIFECYCLE], [*LIFECYCLE, "end"], strict=True))
)
_TASKS = " ".join(
    f'<bpmn:userTask id="{s}" name="{s}"><bpmn:incoming>f{i}</bpmn:incoming>'
    f"<bpmn:outgoing>f{i + 1}</bpmn:outgoing></bpmn:userTask>"
    for i, s in enumerate(LIFECYCLE)
)
BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="jianyi"
                  targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="suggestion" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    {_TASKS}
    <bpmn:endEvent id="end"><bpmn:incoming>f{len(LIFECYCLE)}</bpmn:incoming></bpmn:endEvent>
    {_FLOWS}
  </bpmn:process>
</bpmn:definitions>
"""
"""Seven user tasks in a row: the main line of the suggestion workflow as BPMN."""


def _inputs(n: int) -> dict[str, dict[str, Any]]:
    """What each step is told: the same values our commands get in :func:`lifecycle`."""
    d = draft(n)
    return {
        "receive": {"title": d.title, "subject": d.subject, "problem": d.problem, "measures": d.measures,
                    "area": d.area, "proposer": {"name": d.proposer.name, "phone": d.proposer.phone,
                                                  "address": d.proposer.address, "account": d.proposer.account}},
        "register": {"registration_number": f"JY-20240821-P{n:08d}"},
        "transfer": {"lead_unit": LEAD, "co_units": [CO] if n % 3 == 0 else []},
        "research": {"findings": "经实地调研和部门会商，形成办理意见。"},
        "decide": {"outcome": "adopted" if n % 2 else "declined",
                   "reason": None if n % 2 else "现有政策已覆盖或条件暂不具备"},
        "reply": {"text": "感谢您的建议，办理情况答复如下。"},
        "rate": {"rating": "satisfied"},
    }


class Spiff:
    """SpiffWorkflow with each workflow persisted as JSON in one SQLite row."""

    def __init__(self, path: Path) -> None:
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.util.task import TaskState

        parser = BpmnParser()
        parser.add_bpmn_str(BPMN.encode("utf-8"))
        self.spec = parser.get_spec("suggestion")
        self.workflow_class = BpmnWorkflow
        self.serializer = BpmnWorkflowSerializer()
        self.ready = TaskState.READY
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS workflows (id TEXT PRIMARY KEY, step TEXT NOT NULL, "
                        "version INTEGER NOT NULL, data TEXT NOT NULL)")
        self.db.commit()

    def step(self, wid: str, name: str, data: dict[str, Any]) -> None:
        """One step: load (or start), complete the ready user task, save, in one transaction."""
        row = self.db.execute("SELECT version, data FROM workflows WHERE id = ?", (wid,)).fetchone()
        if row is None:
            workflow = self.workflow_class(self.spec)
            workflow.do_engine_steps()
            version = 0
        else:
            version = row[0]
            workflow = self.serializer.deserialize_json(row[1])
        ready = workflow.get_tasks(state=self.ready, manual=True)
        if len(ready) != 1 or ready[0].task_spec.name != name:
            raise RuntimeError(f"spiff: expected {name} to be ready, found {[t.task_spec.name for t in ready]}")
        task = ready[0]
        task.data.update(data)
        task.run()
        workflow.do_engine_steps()
        text = self.serializer.serialize_json(workflow)
        if version == 0:
            self.db.execute("INSERT INTO workflows (id, step, version, data) VALUES (?, ?, 1, ?)", (wid, name, text))
        elif self.db.execute("UPDATE workflows SET step = ?, version = ?, data = ? WHERE id = ? AND version = ?",
                             (name, version + 1, text, wid, version)).rowcount != 1:
            raise RuntimeError("spiff: lost the optimistic version check")
        self.db.commit()

    def lifecycle(self, n: int) -> None:
        wid = f"P{n:08d}"
        for name, data in _inputs(n).items():
            self.step(wid, name, data)

    def completed(self, n: int) -> bool:
        text = self.db.execute("SELECT data FROM workflows WHERE id = ?", (f"P{n:08d}",)).fetchone()[0]
        done: bool = self.serializer.deserialize_json(text).is_completed()
        return done

    def close(self) -> None:
        self.db.close()


def run(quick: bool) -> list[Figure]:
    name = "peer.lifecycle_vs_spiffworkflow"
    kw: dict[str, Any] = {"unit": "µs/lifecycle", "ratio_is": "speed-up: baseline / ours (higher is better)"}
    try:
        import SpiffWorkflow  # noqa: F401
        from SpiffWorkflow.version import __version__ as spiff_version
    except ImportError as exc:
        return [skipped(name, f"SpiffWorkflow is not installed ({exc}); pip install spiffworkflow", **kw)]
    n, rounds = (40, 3) if quick else (300, 5)
    directory = Path(tempfile.mkdtemp(prefix="jianyi_bench_peer_"))
    try:
        try:
            spiff = Spiff(directory / "spiff.db")
            spiff.lifecycle(10**7)  # the API works end to end, or we skip
            if not spiff.completed(10**7):
                raise RuntimeError("the BPMN process did not complete after seven steps")
        except Exception as exc:  # any API mismatch means "skip", never a made-up number
            return [skipped(name, f"SpiffWorkflow {spiff_version} API mismatch: {type(exc).__name__}: {exc}", **kw)]
        from jianyi_flow.sql import SqlStore

        store = SqlStore.open(f"sqlite:///{directory / 'ours.db'}")
        flow, _ = make_flow(store)
        log(f"peer: {rounds} interleaved rounds of {n} lifecycles (7 steps each) per side")
        made = [0]
        best_ours = best_spiff = float("inf")
        for _ in range(rounds):
            first = made[0]
            made[0] += n

            def ours(first: int = first) -> int:
                for i in range(first, first + n):
                    lifecycle(flow, i)
                return n

            def theirs(first: int = first) -> int:
                for i in range(first, first + n):
                    spiff.lifecycle(i)
                return n

            best_ours = min(best_ours, per_op(ours))
            best_spiff = min(best_spiff, per_op(theirs))
        size = len(spiff.db.execute("SELECT data FROM workflows WHERE id = 'P00000000'").fetchone()[0])
        ok = spiff.completed(0)
        spiff.close()
        store.close()
        if not ok:
            raise RuntimeError("peer: a SpiffWorkflow lifecycle did not complete")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return [
        figure(name, value=best_ours * 1e6, baseline=best_spiff * 1e6, ratio=best_spiff / best_ours, **kw,
               note=f"7 steps, each persisted in its own SQLite transaction: Flow on SqlStore vs SpiffWorkflow "
                    f"{spiff_version} BPMN (7 user tasks), BpmnWorkflowSerializer JSON in a SQLite row "
                    f"({size:,} chars after 7 steps)",
               per_step_us={"ours": round(best_ours * 1e6 / 7, 1), "spiffworkflow": round(best_spiff * 1e6 / 7, 1)},
               bpmn_json_chars=size)
    ]


if __name__ == "__main__":
    if "--bpmn" in sys.argv[1:]:
        print(BPMN)
    else:
        for fig in run(quick="--quick" in sys.argv[1:]):
            print(json.dumps(fig, ensure_ascii=False))

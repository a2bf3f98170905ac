"""The engine: one command, and one state-machine step, against ``transitions`` and ``python-statemachine``.

Four figures, all on the ``transfer`` edge (registered → transferred):

``engine.command_vs_bare_trigger`` — cost ratio, ours / baseline, lower is better, target ≤ 2.0.
    Ours: ``Flow.transfer`` on a :class:`MemoryStore`, no guards: load the row, fire the
    machine, compute the two due times, build and hash-seal the event, copy the row,
    build the outbox message, commit (row, event, outbox, due-time index).
    Baseline: the bare trigger of the same edge on a stock ``transitions.Machine`` built
    from the same ``TRANSITIONS`` (``cursor.state = 'registered'; cursor.transfer()``), i.e.
    what the state machine alone costs a user of ``transitions``.  (Until 2026-11-26 the
    engine itself ran on the stock machine, so this was also our own machine's trigger;
    ours is now a :class:`~jianyi_flow.domain.machine.LeanMachine`, whose bare trigger is the
    next figure.)  The figure also carries ``breakdown_us``: each part of the command timed
    on its own (see :func:`breakdown`), so the gap can be attributed.

``engine.lean_vs_stock_trigger`` — speed-up, stock / lean, no target.
    The same bare trigger on the workflow's own :class:`~jianyi_flow.domain.machine.LeanMachine`
    (``workflow.MACHINE``) against the stock machine above: what dropping ``transitions``'
    per-step log lines and empty callback walks saves.

``engine.step_vs_python_statemachine`` — speed-up, baseline / ours, higher is better, target ≥ 4.
    Like with like: our engine step ``jianyi_flow.domain.workflow.fire('transfer', State.REGISTERED)``
    (set the cursor's state, trigger, read the new state back) against
    ``python-statemachine``'s ``send('transfer')`` on an instance of an equivalent
    ``StateMachine`` class (same 13 states and 22 events, built from
    ``jianyi_flow.domain.workflow.TRANSITIONS``), its state set back to ``registered`` first.

``engine.command_vs_python_statemachine`` — speed-up, no target.
    Our whole command against their bare step: not like with like (ours also persists,
    hashes and schedules), reported so nobody has to guess.

All measurements run interleaved in this process; each value is the best of several rounds.

Run alone: ``python -m benchmarks.engine [--quick]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from jianyi_flow import Change, MemoryStore, State
from jianyi_flow.domain.codec import encode_changes, replace
from jianyi_flow.domain.deadlines import Step
from jianyi_flow.domain.history import seal_new
from jianyi_flow.domain.model import build_event
from jianyi_flow.domain.workflow import MACHINE, TRANSITIONS, _cursor, build_machine, edges, fire
from jianyi_flow.service.flow import unit_recipient
from jianyi_flow.storage.base import build_change, build_message

from ._common import Figure, alternate, figure, log, per_op, skipped
from ._fixtures import LEAD, OFFICE, Recorder, make_flow, registered

TARGET_VS_BARE = 2.0
TARGET_VS_PSM = 4.0


# --- python-statemachine: the same workflow -------------------------------------------------
def psm_machine_class() -> Any:
    """A python-statemachine class with our states and events (built from ``TRANSITIONS``).

    States nothing leaves (not_accepted, withdrawn) are final, as python-statemachine
    requires; ``unrated`` only has internal transitions, so the reachability checks that
    would reject it are switched off.  Invalid events raise, as ours do.
    """
    from statemachine import State as PState
    from statemachine import StateMachine

    has_out = {source for source, _, _ in edges()}
    ns: dict[str, Any] = {
        "validate_final_reachability": False,
        "validate_trap_states": False,
        "allow_event_without_transition": False,
    }
    states = {
        s: PState(s.name, value=s.value, initial=s is State.RECEIVED, final=s not in has_out) for s in State
    }
    for s, pstate in states.items():
        ns[s.name.lower()] = pstate
    for t in TRANSITIONS:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        combined: Any = None
        for source in sources:
            src = states[State(source)]
            tr = src.to.itself(internal=True) if t["dest"] is None else src.to(states[State(t["dest"])])
            combined = tr if combined is None else combined | tr
        ns[t["trigger"]] = combined
    return type("SuggestionMachine", (StateMachine,), ns)


# --- the measurements ------------------------------------------------------------------------
def stock_cursor() -> Any:
    """A cursor on a stock ``transitions.Machine`` with the workflow's states and transitions."""
    from transitions import Machine

    assert type(MACHINE) is not Machine  # else the two trigger figures measure the same thing
    stock = build_machine(Machine)

    class Cursor:
        state: str

    cursor = Cursor()
    stock.add_model(cursor)
    return cursor


def _bare_trigger(n: int, cursor: Any) -> float:

    def work() -> int:
        for _ in range(n):
            cursor.state = "registered"
            cursor.transfer()
        assert cursor.state == "transferred"
        return n

    return per_op(work)


def _fire_step(n: int) -> float:
    registered_state = State.REGISTERED

    def work() -> int:
        for _ in range(n):
            fire("transfer", registered_state)
        return n

    return per_op(work)


def _psm_step(machine: Any, n: int) -> float:
    def work() -> int:
        for _ in range(n):
            machine.current_state_value = "registered"
            machine.send("transfer")
        assert machine.current_state_value == "transferred"
        return n

    return per_op(work)


class _Commands:
    """Rounds of ``Flow.transfer`` on fresh registered suggestions in one MemoryStore."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.store = MemoryStore()
        self.flow, _ = make_flow(self.store)
        self.made = 0

    def __call__(self) -> float:
        sids = registered(self.flow, self.n, first=self.made)
        self.made += self.n
        transfer = self.flow.transfer

        def work() -> int:
            for sid in sids:
                transfer(sid, OFFICE, lead_unit=LEAD)
            return len(sids)

        return per_op(work)


def breakdown(n: int, rounds: int = 5) -> dict[str, float]:
    """Each part of ``Flow.transfer`` timed on its own, µs per command (best of ``rounds``).

    The parts are the calls ``Flow._execute`` makes, fed the same values it feeds them:
    load, machine step, due times (two ``due_for`` calls, cached per day), the changes dict
    encoded for the event, the Event object, its hash (sha256 of canonical JSON), the row
    copy (``model.replace``), the outbox message and Change objects (built as Flow builds
    them, through :mod:`jianyi_flow.domain.frozen`'s builders), and
    ``MemoryStore.commit`` replaying the very Changes a real run produced.  What the parts
    do not add up to is the glue: closures, argument validation, keyword passing.
    """
    rec = Recorder()
    flow, clock = make_flow(rec)
    sids = registered(flow, n)
    before = len(rec.changes)
    for sid in sids:
        flow.transfer(sid, OFFICE, lead_unit=LEAD)
    transfers: list[Change] = rec.changes[before:]
    preloaded = rec.changes[:before]
    now = clock.now()
    rows = [rec.changes[before + i].suggestion for i in range(n)]
    prev_rows = [c.suggestion for c in preloaded[1::2]]  # the registered rows (receive, register, ...)
    changed: list[dict[str, Any]] = []
    for _sid in sids:
        changed.append({
            "lead_unit": LEAD, "co_units": (), "transferred_at": now, "due_step": Step.RESEARCH.value,
            "due_at": flow.due_for(Step.RESEARCH, now), "objection_due_at": flow.due_for(Step.OBJECT_TRANSFER, now),
            "extended": False,
        })
    events = [c.event for c in transfers]
    parts: dict[str, list[float]] = {}

    def part(name: str, work: Any) -> None:
        parts.setdefault(name, []).append(per_op(work) * 1e6)

    for _ in range(rounds):
        def load() -> int:
            for sid in sids:
                rec.load(sid)
            return n

        part("load", load)

        def step() -> int:
            for _ in sids:
                fire("transfer", State.REGISTERED, "transfer")
            return n

        part("machine step (fire)", step)

        def dues() -> int:
            for _ in sids:
                {
                    "lead_unit": LEAD, "co_units": (), "transferred_at": now, "due_step": Step.RESEARCH.value,
                    "due_at": flow.due_for(Step.RESEARCH, now),
                    "objection_due_at": flow.due_for(Step.OBJECT_TRANSFER, now), "extended": False,
                }
            return n

        part("changes + due times", dues)
        def encode() -> int:
            for c in changed:
                encode_changes(c)
            return n

        part("encode changes", encode)

        def make_events() -> int:
            for e in events:
                build_event(suggestion_id=e.suggestion_id, version=e.version, kind="transfer",
                            from_state=e.from_state, to_state=e.to_state, actor=OFFICE, at=now, reason=None,
                            changes=e.changes, payload={}, prev_hash=e.prev_hash, hash="")
            return n

        part("Event object", make_events)

        def hashes() -> int:
            for e in events:
                seal_new(e)
            return n

        part("hash chain (sha256 of canonical JSON)", hashes)

        def copies() -> int:
            for i, row in enumerate(prev_rows):
                replace(row, {**changed[i], "state": State.TRANSFERRED, "version": 3, "updated_at": now,
                              "event_hash": events[i].hash})
            return n

        part("row copy (attrs replace)", copies)

        def outbox() -> int:
            for row in rows:
                (build_message(topic="transfer", suggestion_id=row.id, version=row.version,
                               recipient=unit_recipient(LEAD), created_at=now, payload={"state": "transferred"},
                               id=None, attempts=0),)
            return n

        part("outbox message", outbox)

        def changes_objects() -> int:
            for c in transfers:
                build_change(suggestion=c.suggestion, event=c.event, expected_version=c.expected_version,
                             messages=c.messages, idempotency_key=None)
            return n

        part("Change object", changes_objects)
        fresh = MemoryStore()
        for c in preloaded:
            fresh.commit(c)

        def commits(fresh: MemoryStore = fresh) -> int:
            for c in transfers:
                fresh.commit(c)
            return n

        part("MemoryStore.commit (row, event, outbox, due index)", commits)
    return {name: round(min(values), 2) for name, values in parts.items()}


def run(quick: bool) -> list[Figure]:
    n = 2000 if quick else 10000
    rounds = 3 if quick else 7
    log(f"engine: {rounds} interleaved rounds of {n} ops")
    try:
        from statemachine import __version__ as psm_version

        machine: Any = psm_machine_class()()
    except ImportError as exc:  # the bench extra is not installed: those two figures are skipped
        psm_version, machine = None, None
        missing = f"python-statemachine is not installed ({exc}); pip install -e '.[bench]'"
    commands = _Commands(n)
    stock, lean = stock_cursor(), _cursor()
    measures = [commands, lambda: _bare_trigger(n, stock), lambda: _fire_step(n), lambda: _bare_trigger(n, lean)]
    if machine is not None:
        measures.append(lambda: _psm_step(machine, n))
    ours_cmd, bare, ours_step, lean_bare, *rest = alternate(rounds, *measures)
    parts = breakdown(n // 2, rounds=3 if quick else 5)
    us = 1e6
    speed_up = "speed-up: baseline / ours (higher is better)"
    out = [
        figure(
            "engine.command_vs_bare_trigger",
            value=ours_cmd * us, baseline=bare * us, ratio=ours_cmd / bare,
            unit="µs/op", ratio_is="cost: ours / baseline (lower is better)", target=TARGET_VS_BARE, op="<=",
            note="Flow.transfer on MemoryStore (no guards) vs the bare trigger of the same edge on a stock "
                 "transitions.Machine",
            breakdown_us=parts,
        ),
        figure(
            "engine.lean_vs_stock_trigger",
            value=lean_bare * us, baseline=bare * us, ratio=bare / lean_bare,
            unit="µs/op", ratio_is=speed_up,
            note="bare trigger of the transfer edge: workflow.MACHINE (LeanMachine) vs a stock transitions.Machine",
        ),
    ]
    if machine is None:
        return [
            *out,
            skipped("engine.step_vs_python_statemachine", missing, unit="µs/op", ratio_is=speed_up,
                    target=TARGET_VS_PSM, op=">="),
            skipped("engine.command_vs_python_statemachine", missing, unit="µs/op", ratio_is=speed_up),
        ]
    psm = rest[0]
    return [
        *out,
        figure(
            "engine.step_vs_python_statemachine",
            value=ours_step * us, baseline=psm * us, ratio=psm / ours_step,
            unit="µs/op", ratio_is=speed_up, target=TARGET_VS_PSM, op=">=",
            note=f"workflow.fire('transfer', REGISTERED) vs python-statemachine {psm_version} send('transfer')",
        ),
        figure(
            "engine.command_vs_python_statemachine",
            value=ours_cmd * us, baseline=psm * us, ratio=psm / ours_cmd,
            unit="µs/op", ratio_is=speed_up,
            note="whole Flow.transfer (persisted, hashed, scheduled) vs their bare step; no target: not like "
                 "with like",
        ),
    ]


if __name__ == "__main__":
    started = time.perf_counter()
    if "--breakdown" in sys.argv[1:]:
        for name, value in breakdown(10000).items():
            print(f"{value:8.2f} µs  {name}")
    else:
        for row in run(quick="--quick" in sys.argv[1:]):
            print(row)
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)

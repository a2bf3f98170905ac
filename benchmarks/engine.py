"""The engine: one whole ``Flow`` command against the bare transition of the same edge.

Three figures, all on the ``transfer`` edge (registered → transferred), all timed in this
process, interleaved, best of several rounds:

``engine.command_vs_python_statemachine`` — speed-up, theirs / ours (higher is better), target ≥ 2.
    Ours: ``Flow.transfer`` on a :class:`MemoryStore` with the default permission table
    (what a portal runs): load the row, check the permission and the edge, compute the
    two due times, build and hash-seal the event, build the outbox message, commit.
    Baseline: ``python-statemachine``'s bare ``send('transfer')`` on an instance of an
    equivalent ``StateMachine`` class (same states and events, built from
    ``WORKFLOW.edges()``), its state set back to ``registered`` first.

``engine.command_vs_bare_trigger`` — cost, ours / theirs (lower is better), no target.
    The same command against the bare trigger of the same edge on a stock
    ``transitions.Machine`` built from ``WORKFLOW.transitions``
    (``cursor.state = 'registered'; cursor.transfer()``).

``engine.step_vs_python_statemachine`` — speed-up, theirs / ours, no target.
    Like with like: our workflow step ``WORKFLOW.fire('transfer', State.REGISTERED)`` (a
    lookup in the table read from the ``transitions`` machine) against the same
    python-statemachine ``send``.

Run alone: ``python -m benchmarks.engine [--quick]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from jianyi_flow import WORKFLOW, MemoryStore, State

from ._common import Figure, alternate, figure, log, per_op, skipped
from ._fixtures import LEAD, OFFICE, make_flow, registered

TARGET_VS_PSM = 2.0


# --- python-statemachine: the same workflow -------------------------------------------------
def psm_machine_class() -> Any:
    """A python-statemachine class with our states and events (built from ``WORKFLOW``).

    States nothing leaves (not_accepted, withdrawn) are final, as python-statemachine
    requires; ``unrated`` only has internal transitions, so the reachability checks that
    would reject it are switched off.  Invalid events raise, as ours do.
    """
    from statemachine import State as PState
    from statemachine import StateMachine

    edges = WORKFLOW.edges()
    has_out = {source for source, _, _ in edges}
    ns: dict[str, Any] = {
        "validate_final_reachability": False,
        "validate_trap_states": False,
        "allow_event_without_transition": False,
    }
    states = {
        s: PState(s.name, value=s.value, initial=s is State.RECEIVED, final=s not in has_out)
        for s in WORKFLOW.states
    }
    for s, pstate in states.items():
        ns[s.name.lower()] = pstate
    by_trigger: dict[str, Any] = {}
    for source, trigger, dest in edges:
        src = states[source]
        tr = src.to.itself(internal=True) if dest is None else src.to(states[dest])
        by_trigger[trigger] = tr if trigger not in by_trigger else by_trigger[trigger] | tr
    ns.update(by_trigger)
    return type("SuggestionMachine", (StateMachine,), ns)


# --- the measurements ------------------------------------------------------------------------
def stock_cursor() -> Any:
    """A cursor on a stock ``transitions.Machine`` with the workflow's states and transitions."""
    from transitions import Machine

    class Cursor:
        state: str

    cursor = Cursor()
    Machine(
        model=cursor,
        states=[s.value for s in WORKFLOW.states],
        transitions=[
            {"trigger": t["trigger"],
             "source": [str(x) for x in (t["source"] if isinstance(t["source"], list) else [t["source"]])],
             "dest": None if t["dest"] is None else str(t["dest"])}
            for t in WORKFLOW.transitions
        ],
        initial=State.REGISTERED.value,
        auto_transitions=False,
    )
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
    fire = WORKFLOW.fire

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


def run(quick: bool) -> list[Figure]:
    n = 2000 if quick else 10000
    rounds = 3 if quick else 7
    log(f"engine: {rounds} interleaved rounds of {n} ops")
    speed_up = "speed-up: baseline / ours (higher is better)"
    try:
        from statemachine import __version__ as psm_version

        machine: Any = psm_machine_class()()
    except ImportError as exc:  # the bench extra is not installed: those two figures are skipped
        psm_version, machine = None, None
        missing = f"python-statemachine is not installed ({exc}); pip install -e '.[bench]'"
    commands = _Commands(n)
    stock = stock_cursor()
    measures = [commands, lambda: _bare_trigger(n, stock), lambda: _fire_step(n)]
    if machine is not None:
        measures.append(lambda: _psm_step(machine, n))
    ours_cmd, bare, ours_step, *rest = alternate(rounds, *measures)
    us = 1e6
    vs_bare = figure(
        "engine.command_vs_bare_trigger",
        value=ours_cmd * us, baseline=bare * us, ratio=ours_cmd / bare,
        unit="µs/op", ratio_is="cost: ours / baseline (lower is better)",
        note="Flow.transfer on MemoryStore (default permissions) vs the bare trigger of the same edge on a "
             "stock transitions.Machine; no target: the baseline persists nothing",
    )
    if machine is None:
        return [
            skipped("engine.command_vs_python_statemachine", missing, unit="µs/op", ratio_is=speed_up,
                    target=TARGET_VS_PSM, op=">="),
            vs_bare,
            skipped("engine.step_vs_python_statemachine", missing, unit="µs/op", ratio_is=speed_up),
        ]
    psm = rest[0]
    return [
        figure(
            "engine.command_vs_python_statemachine",
            value=ours_cmd * us, baseline=psm * us, ratio=psm / ours_cmd,
            unit="µs/op", ratio_is=speed_up, target=TARGET_VS_PSM, op=">=",
            note=f"whole Flow.transfer on MemoryStore (permission check, due times, hash-sealed event, outbox "
                 f"message, commit) vs python-statemachine {psm_version} bare send('transfer')",
        ),
        vs_bare,
        figure(
            "engine.step_vs_python_statemachine",
            value=ours_step * us, baseline=psm * us, ratio=psm / ours_step,
            unit="µs/op", ratio_is=speed_up,
            note=f"WORKFLOW.fire('transfer', REGISTERED) vs python-statemachine {psm_version} send('transfer')",
        ),
    ]


if __name__ == "__main__":
    started = time.perf_counter()
    for row in run(quick="--quick" in sys.argv[1:]):
        print(row)
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)

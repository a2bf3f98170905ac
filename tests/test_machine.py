"""The workflow's lookup table says what a stock ``transitions.Machine`` built from TRANSITIONS does.

``Workflow`` reads its ``(state, trigger) → next state`` table out of a machine once, at
import; commands then consult the table.  Here a separate stock machine with a model is
built from the same :data:`TRANSITIONS` and fired for every state and every trigger (and
a trigger no edge names): the table must accept exactly the pairs the machine accepts and
lead where the machine leads.
"""

from __future__ import annotations

import pytest
from transitions import Machine, MachineError

from jianyi_flow.domain.model import State
from jianyi_flow.domain.workflow import TRANSITIONS, WORKFLOW
from jianyi_flow.errors import InvalidTransition


class Cursor:
    """The model the stock machine moves: only its ``state``."""

    state: str


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def stock_machine(model: Cursor) -> Machine:
    return Machine(
        model=model,
        states=[s.value for s in State],
        transitions=[
            {"trigger": t["trigger"], "source": [State(s).value for s in _as_list(t["source"])],
             "dest": None if t["dest"] is None else State(t["dest"]).value}
            for t in TRANSITIONS
        ],
        initial=State.RECEIVED.value,
        auto_transitions=False,
    )


def stock_outcome(machine: Machine, model: Cursor, trigger: str, state: State) -> State | None:
    """Where the stock machine goes from ``state`` on ``trigger``; ``None`` if it refuses."""
    machine.set_state(state.value, model)
    try:
        model.trigger(trigger)  # type: ignore[attr-defined]  # added to the model by Machine
    except (MachineError, AttributeError):
        return None
    return State(model.state)


def test_the_table_agrees_with_a_stock_machine_on_every_state_and_trigger() -> None:
    model = Cursor()
    machine = stock_machine(model)
    triggers = [*sorted({t["trigger"] for t in TRANSITIONS}), "no_such_trigger"]
    compared = accepted = 0
    for state in State:
        for trigger in triggers:
            expected = stock_outcome(machine, model, trigger, state)
            if expected is None:
                assert not WORKFLOW.accepts(trigger, state), (state, trigger)
                with pytest.raises(InvalidTransition):
                    WORKFLOW.fire(trigger, state)
            else:
                assert WORKFLOW.accepts(trigger, state), (state, trigger)
                assert WORKFLOW.fire(trigger, state) is expected, (state, trigger)
                accepted += 1
            compared += 1
    assert compared == len(State) * len(triggers)
    assert 0 < accepted < compared  # both outcomes were compared
    assert len(WORKFLOW.edges()) == accepted

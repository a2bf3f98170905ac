"""``LeanMachine`` behaves like the stock ``transitions.Machine``, minus its per-step log lines."""

from __future__ import annotations

import enum
import logging
from typing import Any

import pytest
from transitions import Machine, MachineError
from transitions.core import EventData

from jianyi_flow.domain.machine import LeanMachine
from jianyi_flow.domain.model import State
from jianyi_flow.domain.workflow import MACHINE, build_machine

KINDS = [Machine, LeanMachine]


class Cursor:
    state: str


def outcome(machine: Machine, cursor: Cursor, trigger: str, state: str) -> tuple[str, Any]:
    cursor.state = state
    try:
        result = machine.events[trigger].trigger(cursor)
    except MachineError as e:
        return "error", str(e)
    return cursor.state, result


def test_the_workflow_machine_is_lean() -> None:
    assert isinstance(MACHINE, LeanMachine)


def test_every_state_and_trigger_gives_the_stock_outcome() -> None:
    stock, lean = build_machine(Machine), build_machine(LeanMachine)
    a, b = Cursor(), Cursor()
    stock.add_model(a)
    lean.add_model(b)
    seen = set()
    for state in State:
        for trigger in stock.events:
            expected = outcome(stock, a, trigger, state.value)
            assert outcome(lean, b, trigger, state.value) == expected, (state, trigger)
            seen.add(expected[0])
    assert "error" in seen and State.TRANSFERRED.value in seen  # both kinds of outcome were compared


class Recorder:
    """A model whose every callback records its name (and can be told to refuse or fail)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.allow = True
        self.block = False
        self.fail_in: str | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("cb_"):
            def callback(*args: Any, **kwargs: Any) -> bool:
                self.calls.append(name[3:])
                if args and isinstance(args[0], EventData):  # send_event=True: what the callback sees
                    ed = args[0]
                    self.calls.append(repr((ed.state.name if ed.state else None, ed.event.name if ed.event else None,
                                            ed.transition.dest if ed.transition else None, repr(ed.error),
                                            ed.result)))
                if self.fail_in == name[3:]:
                    raise RuntimeError(f"failed in {name[3:]}")
                return self.allow if name == "cb_condition" else self.block if name == "cb_unless" else True
            return callback
        raise AttributeError(name)


def rich_machine(kind: type[Machine], model: Recorder, **options: Any) -> Machine:
    states = [
        {"name": "a", "on_enter": "cb_enter_a", "on_exit": "cb_exit_a"},
        {"name": "b", "on_enter": "cb_enter_b", "on_exit": "cb_exit_b"},
        {"name": "z", "final": True, "on_enter": "cb_enter_z"},
    ]
    transitions = [
        {"trigger": "go", "source": "a", "dest": "b", "prepare": "cb_prepare", "conditions": "cb_condition",
         "unless": "cb_unless", "before": "cb_before", "after": "cb_after"},
        {"trigger": "go", "source": "a", "dest": "z", "before": "cb_fallback"},
        {"trigger": "back", "source": "b", "dest": "a", "after": "cb_after_back"},
        {"trigger": "note", "source": ["a", "b"], "dest": None, "before": "cb_note"},
        {"trigger": "end", "source": "b", "dest": "z"},
    ]
    return kind(model=model, states=states, transitions=transitions, initial="a", auto_transitions=False,
                prepare_event="cb_prepare_event", before_state_change="cb_before_change",
                after_state_change="cb_after_change", finalize_event="cb_finalize", on_final="cb_final",
                **options)


def script(kind: type[Machine], **options: Any) -> tuple[list[str], list[Any]]:
    """Run one sequence of triggers and return the callbacks called and each trigger's result."""
    model = Recorder()
    machine = rich_machine(kind, model, **options)
    results: list[Any] = []

    def step(name: str) -> None:
        try:
            results.append((getattr(model, name)(), machine.get_model_state(model).name))
        except Exception as e:  # the outcome itself is compared
            results.append((type(e).__name__, str(e), machine.get_model_state(model).name))
        model.calls.append("|")

    step("go")  # a -> b through the first transition
    step("note")  # internal: before and the machine's callbacks, no enter or exit
    step("back")
    model.allow = False
    step("go")  # the condition refuses: the second transition (a -> z) runs
    model.allow = True
    machine.set_state("a", model)
    model.block = True
    step("go")  # ``unless`` refuses too
    model.block = False
    machine.set_state("a", model)
    step("end")  # not allowed from a
    model.fail_in = "before"
    step("go")  # a callback raises
    model.fail_in = "finalize"
    machine.set_state("b", model)
    step("end")  # finalize raises: logged, not raised
    return model.calls, results


@pytest.mark.parametrize("options", [{}, {"ignore_invalid_triggers": True}, {"queued": True},
                                     {"on_exception": "cb_on_exception"}, {"send_event": True},
                                     {"send_event": True, "queued": True, "on_exception": "cb_on_exception"}],
                         ids=str)
def test_callbacks_run_in_the_stock_order(options: dict[str, Any]) -> None:
    assert script(LeanMachine, **options) == script(Machine, **options)


def test_the_script_covers_what_it_means_to() -> None:
    calls, results = script(Machine)
    assert "condition" in calls and "unless" in calls and "fallback" in calls and "final" in calls
    assert "enter_a" in calls and "exit_b" in calls and "note" in calls and "finalize" in calls
    assert ("MachineError", "\"Can't trigger event end from state a!\"", "a") in results
    assert ("RuntimeError", "failed in before", "a") in results
    calls, _ = script(Machine, send_event=True, on_exception="cb_on_exception")
    assert "('b', 'go', 'b', 'None', False)" in calls  # on entering b: the event data after the change
    assert any("RuntimeError('failed in before')" in c for c in calls)  # the error reaches on_exception


def test_a_queued_machine_runs_nested_triggers_after_the_current_one() -> None:
    def run(kind: type[Machine]) -> list[str]:
        model = Recorder()
        machine = rich_machine(kind, model, queued=True)
        machine.on_enter_b(lambda: model.calls.append("nested") or model.back())
        model.go()
        return model.calls

    lean = run(LeanMachine)
    assert lean == run(Machine)
    assert lean.index("nested") < lean.index("after_back")  # it ran after, not inside


def test_a_nested_trigger_on_an_unqueued_machine_runs_inside() -> None:
    def run(kind: type[Machine]) -> list[str]:
        model = Recorder()
        machine = rich_machine(kind, model)
        machine.on_enter_b(lambda: model.back())
        model.go()
        return model.calls

    assert run(LeanMachine) == run(Machine)


def test_the_stock_per_step_log_lines_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    def lines(kind: type[Machine]) -> list[str]:
        caplog.clear()
        machine = build_machine(kind)
        cursor = Cursor()
        machine.add_model(cursor)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="transitions"):
            cursor.state = State.REGISTERED.value
            machine.events["transfer"].trigger(cursor)
        return [r.getMessage() for r in caplog.records]

    assert lines(Machine)  # the stock machine logs each step
    assert lines(LeanMachine) == []


class Phase(enum.Enum):
    DRAFT = 1
    OPEN = 2
    CLOSED = 3


class Item:
    """A model that keeps its state under another attribute and normalises what it is given."""

    def __init__(self) -> None:
        self.log: list[Any] = []

    def on_enter_OPEN(self, event: EventData) -> None:
        self.log.append(("enter OPEN", event.state.name if event.state else None, event.result))

    def interrupt(self, event: EventData) -> None:
        raise KeyboardInterrupt

    def finish(self, event: EventData) -> None:
        self.log.append(("finalize", event.event.name if event.event else None, repr(event.error)))


def enum_run(kind: type[Machine]) -> list[Any]:
    """Enum states, ``model_attribute``, two models, ``dispatch``, a reflexive ``'='``, ``may_``, a BaseException."""
    first, second = Item(), Item()
    machine = kind(model=[first, second], states=Phase, initial=Phase.DRAFT, model_attribute="status",
                   send_event=True, auto_transitions=False, finalize_event="finish",
                   transitions=[
                       {"trigger": "publish", "source": Phase.DRAFT, "dest": Phase.OPEN},
                       {"trigger": "touch", "source": Phase.OPEN, "dest": "="},
                       {"trigger": "close", "source": Phase.OPEN, "dest": Phase.CLOSED},
                       {"trigger": "halt", "source": Phase.OPEN, "dest": Phase.CLOSED, "before": "interrupt"},
                   ])
    out: list[Any] = [machine.dispatch("publish"), first.status, second.status]
    out += [first.may_close(), first.may_publish(), first.touch(), first.status, first.is_status_OPEN()]
    try:
        second.halt()
    except KeyboardInterrupt:
        out.append(("interrupted", second.status))
    out += [first.close(), first.status, second.status, first.log, second.log]
    return out


def test_enum_states_another_attribute_and_two_models_match_the_stock_machine() -> None:
    lean = enum_run(LeanMachine)
    assert lean == enum_run(Machine)
    assert lean[:3] == [True, Phase.OPEN, Phase.OPEN] and ("interrupted", Phase.OPEN) in lean
    assert ("finalize", "halt", "KeyboardInterrupt()") in lean[-1]  # the BaseException reached the event data


def test_the_state_is_written_through_set_state() -> None:
    """A subclass that overrides ``set_state`` is honoured, as by the stock transition."""
    written: list[Any] = []

    def run(kind: type[Machine]) -> list[Any]:
        class Counting(kind):  # type: ignore[valid-type, misc]
            def set_state(self, state: Any, model: Any = None) -> None:
                written.append(getattr(state, "name", state))
                super().set_state(state, model)

        written.clear()
        cursor = Cursor()
        machine = Counting(model=cursor, states=["a", "b"], initial="a", auto_transitions=False,
                           transitions=[{"trigger": "go", "source": "a", "dest": "b"}])
        cursor.go()  # type: ignore[attr-defined]
        return [*written, machine.get_model_state(cursor).name]

    assert run(LeanMachine) == run(Machine) == ["a", "b", "b"]

"""``LeanMachine``: a ``transitions.Machine`` that does, per step, only the work it was given.

Why it exists: the stock ``transitions`` 0.9 classes make, on every trigger, ten ``logging``
calls for a change of state (six for an internal step) and walk nine callback lists, even
when no callback is registered and no log handler listens.  Our one machine has no
callbacks at all, so that is most of a step's cost: a bare trigger of the ``transfer`` edge
took 15.7 µs on a stock machine and 5.4 µs on this one, and a whole ``workflow.fire`` step
6.0 µs (figures ``engine.lean_vs_stock_trigger`` and ``engine.step_vs_python_statemachine``,
``python -m benchmarks --only engine`` on a slow day of 2026-11-26; see
docs/performance.md).  Every command and every simulated step pays it.

It is the stock machine through its documented extension points (``state_cls``,
``transition_cls``, ``event_cls``), overriding only the per-step methods:

* callback lists (``prepare``, ``conditions``/``unless``, ``before``, ``after``,
  ``on_enter``, ``on_exit``, the machine's ``prepare_event``, ``before_state_change``,
  ``after_state_change``, ``on_final``, ``finalize_event``, ``on_exception``) are still run,
  in the stock order, through the stock :meth:`~transitions.Machine.callbacks` — they are
  only skipped when empty;
* the state is still written through :meth:`~transitions.Machine.set_state` and read back
  into the event data, as the stock transition does;
* a queued machine (``queued=True``) still queues through the stock
  :meth:`~transitions.Machine._process`; the steps it runs from the queue are these lean
  ones.  An unqueued machine calls the event directly instead of through
  ``Machine._process`` (which only calls it): a subclass hook on ``_process`` is not
  called there;
* what is dropped: ``transitions``' own DEBUG and INFO lines for each step ("Initiating
  transition…", "Entering state…").  Errors and warnings are unchanged.

``tests/test_machine.py`` checks it against the stock ``Machine``: the same outcome for
every (state, trigger) pair of the workflow, and the same callbacks, event data and
results on machines that register every kind of callback (queued and not, with
``send_event``, Enum states, another ``model_attribute``, two models).  It relies on
``transitions`` internals (``_eval_conditions``, ``_is_valid_source``,
``_transition_queue``, ``State.final`` from 0.9.1), which is why ``pyproject.toml`` admits
only the releases it was checked with (0.9.1–0.9.3); run that test before widening it.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, cast

from transitions import Machine
from transitions.core import Event, EventData, State, Transition

_LOGGER = logging.getLogger("transitions.core")  # the stock classes' logger


class LeanState(State):
    """A state whose enter and exit skip the stock log lines and empty callback lists."""

    def enter(self, event_data: EventData) -> None:
        if self.on_enter:
            event_data.machine.callbacks(self.on_enter, event_data)

    def exit(self, event_data: EventData) -> None:
        if self.on_exit:
            event_data.machine.callbacks(self.on_exit, event_data)


class LeanTransition(Transition):
    """A transition that runs only the callbacks and conditions it has, in the stock order."""

    def execute(self, event_data: EventData) -> bool:
        machine = event_data.machine
        if self.prepare:
            machine.callbacks(self.prepare, event_data)
        if self.conditions and not self._eval_conditions(event_data):
            return False
        if machine.before_state_change or self.before:
            machine.callbacks(itertools.chain(machine.before_state_change, self.before), event_data)
        if self.dest:  # None: an internal transition, no change of state
            self._change_state(event_data)
        if self.after or machine.after_state_change:
            machine.callbacks(itertools.chain(self.after, machine.after_state_change), event_data)
        return True

    def _change_state(self, event_data: EventData) -> None:
        machine = event_data.machine
        machine.get_state(self.source).exit(event_data)
        dest = machine.get_state(cast(str, self.dest))
        model = event_data.model
        machine.set_state(dest, model)
        event_data.update(getattr(model, machine.model_attribute))
        dest.enter(event_data)
        if dest.final and machine.on_final:
            machine.callbacks(machine.on_final, event_data)


class LeanEvent(Event):
    """An event whose trigger skips the stock log lines and empty callback lists."""

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        machine = self.machine
        if machine.has_queue or machine._transition_queue:
            return super().trigger(model, *args, **kwargs)  # queued (or the stock error): Machine._process
        return self._trigger(EventData(None, self, machine, model, args=args, kwargs=kwargs))

    def _trigger(self, event_data: EventData) -> bool:
        machine = self.machine
        event_data.state = machine.get_model_state(event_data.model)
        try:
            if self._is_valid_source(event_data.state):
                self._process(event_data)
        except BaseException as err:
            event_data.error = err  # type: ignore[assignment]  # the stock trigger keeps any BaseException
            if machine.on_exception:
                machine.callbacks(machine.on_exception, event_data)
            else:
                raise
        finally:
            if machine.finalize_event:
                try:
                    machine.callbacks(machine.finalize_event, event_data)
                except BaseException as err:  # as the stock trigger: logged, never raised
                    _LOGGER.error("%sWhile executing finalize callbacks a %s occurred: %s.",
                                  machine.name, type(err).__name__, str(err))
        return event_data.result  # type: ignore[return-value]  # as the stock trigger: whatever a callback left

    def _process(self, event_data: EventData) -> bool:
        machine = self.machine
        if machine.prepare_event:
            machine.callbacks(machine.prepare_event, event_data)
        for transition in self.transitions[event_data.state.name]:
            event_data.transition = transition
            if transition.execute(event_data):
                event_data.result = True
                break
        return event_data.result  # type: ignore[return-value]  # the stock _process returns None


class LeanMachine(Machine):
    """The stock machine with :class:`LeanState`, :class:`LeanTransition` and :class:`LeanEvent`."""

    state_cls = LeanState
    transition_cls = LeanTransition
    event_cls = LeanEvent

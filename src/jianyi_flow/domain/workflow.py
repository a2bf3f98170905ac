"""The suggestion workflow, defined once with ``transitions``.

One :class:`transitions.Machine` describes every state and command.  Suggestions are
immutable attrs objects, so the machine never touches them: a per-thread
:class:`_Cursor` (the thin adapter) is added to the machine once, set to a suggestion's
state, triggered, and read back.  No machine is built and no model is added per
suggestion (that costs 200–800 µs and grows with every model, against a few µs for a
trigger).  The machine is a :class:`~jianyi_flow.domain.machine.LeanMachine`: the stock
``transitions`` machine minus its per-step log lines and empty callback walks (see that
module for what it saves and how it is held to the stock behaviour).

Triggers are the commands of :class:`jianyi_flow.Flow`, except ``decide``, which picks
one of ``adopt`` / ``adopt_partially`` / ``decline`` by its outcome.  Triggers whose
``dest`` is ``None`` are internal: they record an event without changing the state.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from transitions import Machine, MachineError

from ..errors import InvalidTransition
from .machine import LeanMachine
from .model import State

S = State

_HANDLING = [S.RECEIVED, S.REGISTERED, S.TRANSFERRED, S.RESEARCHED, S.RETURNED]
_DECIDED = [S.ADOPTED, S.PARTIALLY_ADOPTED, S.DECLINED]
_OPEN = [*_HANDLING, *_DECIDED, S.REPLIED]
_HANDLED = [*_DECIDED, S.REPLIED, S.RATED, S.UNRATED]
HANDLED_STATES: tuple[State, ...] = tuple(_HANDLED)
"""States of a suggestion that was decided (the summary-phase commands' sources)."""
_REPORTABLE = [S.REGISTERED, S.TRANSFERRED, S.RESEARCHED, S.RETURNED, *_HANDLED]

TRANSITIONS: Sequence[Mapping[str, Any]] = (
    # the main line
    {"trigger": "register", "source": S.RECEIVED, "dest": S.REGISTERED},
    {"trigger": "transfer", "source": [S.REGISTERED, S.RETURNED], "dest": S.TRANSFERRED},
    {"trigger": "research", "source": S.TRANSFERRED, "dest": S.RESEARCHED},
    {"trigger": "adopt", "source": S.RESEARCHED, "dest": S.ADOPTED},
    {"trigger": "adopt_partially", "source": S.RESEARCHED, "dest": S.PARTIALLY_ADOPTED},
    {"trigger": "decline", "source": S.RESEARCHED, "dest": S.DECLINED},
    {"trigger": "reply", "source": _DECIDED, "dest": S.REPLIED},
    {"trigger": "rate", "source": S.REPLIED, "dest": S.RATED},
    # side paths
    {"trigger": "not_accept", "source": S.RECEIVED, "dest": S.NOT_ACCEPTED},
    {"trigger": "withdraw", "source": _HANDLING, "dest": S.WITHDRAWN},
    {"trigger": "return_transfer", "source": S.TRANSFERRED, "dest": S.RETURNED},
    {"trigger": "reopen", "source": S.RATED, "dest": S.TRANSFERRED},
    {"trigger": "close_unrated", "source": S.REPLIED, "dest": S.UNRATED},
    # internal: an event, no change of state
    {"trigger": "extend", "source": _OPEN, "dest": None},
    {"trigger": "flag_overdue", "source": _OPEN, "dest": None},
    # summary phase (总结运用阶段): internal, on suggestions that were accepted for handling
    {"trigger": "report_upward", "source": _REPORTABLE, "dest": None},
    {"trigger": "forward_to_city", "source": _REPORTABLE, "dest": None},
    {"trigger": "evaluate", "source": _HANDLED, "dest": None},
    {"trigger": "nominate_reward", "source": _HANDLED, "dest": None},
    {"trigger": "record_adoption", "source": _HANDLED, "dest": None},
    {"trigger": "mark_typical", "source": _HANDLED, "dest": None},
)
"""Every edge of the workflow: the single source of truth for the engine and the diagram."""

DESCRIPTIONS: Mapping[str, str] = {
    "receive": "a suggestion arrives by some channel (收到建议)",
    "register": "the collection office registers it and gives it a registration number (登记)",
    "transfer": "the office transfers it to a lead handling unit, with co-handling units (转送交办)",
    "research": "the lead unit researches and discusses it (调研论证)",
    "adopt": "decided: adopted (采纳)",
    "adopt_partially": "decided: partially adopted, saying which part (部分采纳)",
    "decline": "decided: declined, with a reason (不予采纳)",
    "reply": "the unit replies to the proposer (答复建议人)",
    "rate": "the proposer rates the reply (评价)",
    "not_accept": "not accepted at registration, e.g. a personal complaint (不予受理)",
    "withdraw": "withdrawn by the proposer before a decision (撤回)",
    "return_transfer": "the unit returns a misrouted transfer to the office within 5 working days (退回)",
    "reopen": "after a 'dissatisfied' rating the unit handles it again, once (重新办理)",
    "close_unrated": "the rating window closed without a rating (评价期满未评价)",
    "extend": "the current deadline is extended once, by at most 30 days (the 60-day rule's proviso "
              "延长期限不得超过30日, docs/calendar.md), with an approver (延期)",
    "flag_overdue": "the current step passed its deadline; recorded once per deadline (超期)",
    "report_upward": "reported to the party committee and government as original, excerpt or analysis (呈报)",
    "forward_to_city": "forwarded to the municipal office (呈送市信访办)",
    "evaluate": "scored on quality, value and effect by a named evaluator (评比)",
    "nominate_reward": "placed among reward candidates with a tier (纳入奖励备选)",
    "record_adoption": "records the measure or document it became (吸纳转化运用)",
    "mark_typical": "marked as a typical case (典型案例)",
}

_DECIDE_TRIGGERS = frozenset({"adopt", "adopt_partially", "decline"})


def _plain(edge: Mapping[str, Any]) -> dict[str, Any]:
    """Spell states as plain strings: ``transitions`` would name Enum members by ``.name``."""

    def text(value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return None if value is None else str(value)

    return {"trigger": edge["trigger"], "source": text(edge["source"]), "dest": text(edge["dest"])}


class _Cursor:
    """The thin adapter ``transitions`` drives: it only carries a state name."""

    state: str


def build_machine(kind: type[Machine] = LeanMachine) -> Machine:
    """A machine of class ``kind`` with every state and edge of the workflow, and no model.

    The engine builds one, :data:`MACHINE`, at import; the benchmarks and tests build a
    stock ``transitions.Machine`` the same way to compare it with.
    """
    return kind(
        model=None,
        states=[s.value for s in State],
        transitions=[_plain(t) for t in TRANSITIONS],
        initial=State.RECEIVED.value,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )


MACHINE = build_machine()
"""The one machine.  Its models are per-thread cursors, added once per thread."""

_local = threading.local()


def _cursor() -> _Cursor:
    cursor: _Cursor | None = getattr(_local, "cursor", None)
    if cursor is None:
        cursor = _Cursor()
        MACHINE.add_model(cursor)
        _local.cursor = cursor
    return cursor


_EVENTS = MACHINE.events
_STATES: dict[str, State] = {s.value: s for s in State}
"""State by value: ``State(value)`` goes through Enum's lookup machinery, once per command."""


def allowed_triggers(state: State) -> list[str]:
    """The triggers the machine accepts in ``state`` (``decide`` shown once for its three)."""
    names = [t for t in MACHINE.get_triggers(state.value)]
    shown = ["decide" if n in _DECIDE_TRIGGERS else n for n in names]
    return list(dict.fromkeys(shown))


def fire(trigger: str, state: State, command: str | None = None) -> State:
    """Run ``trigger`` from ``state`` on the shared machine and return the state it leads to.

    Raises :class:`InvalidTransition` naming the command and the state when the machine
    refuses.  ``command`` is the name the caller used (``decide`` for ``adopt``...).
    """
    cursor = _cursor()
    cursor.state = state._value_  # ``.value`` without Enum's property (every command runs this)
    event = _EVENTS.get(trigger)
    if event is None:
        raise InvalidTransition(command or trigger, state.value, allowed_triggers(state))
    try:
        event.trigger(cursor)
    except MachineError:
        raise InvalidTransition(command or trigger, state.value, allowed_triggers(state)) from None
    return _STATES[cursor.state]


def edges() -> list[tuple[State, str, State | None]]:
    """Every (source, trigger, dest) edge, ``dest`` ``None`` for internal ones."""
    out: list[tuple[State, str, State | None]] = []
    for t in TRANSITIONS:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for source in sources:
            out.append((State(source), t["trigger"], None if t["dest"] is None else State(t["dest"])))
    return out

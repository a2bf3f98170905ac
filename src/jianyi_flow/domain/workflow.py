"""The suggestion workflow, defined once with ``transitions``.

:data:`TRANSITIONS` lists every edge; :class:`Workflow` builds one
:class:`transitions.Machine` from it when the module is imported and reads the machine's
transitions back, through its public API (``get_triggers``, ``get_transitions``), into a
table ``(state, trigger) → next state``.  A command then asks the table where it leads:
no machine and no model is created per suggestion, and the suggestions themselves stay
immutable.  The machine stays available (:attr:`Workflow.machine`) for diagrams and for
anyone who wants to drive it directly.

Triggers are the commands of :class:`jianyi_flow.Flow`, except ``decide``, which picks one
of ``adopt`` / ``adopt_partially`` / ``decline`` by its outcome.  Triggers whose ``dest`` is
``None`` are internal: they record an event without changing the state.

A workflow has a version: its name and a digest of its edges (:attr:`Workflow.version`),
recorded on every event it produces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from transitions import Machine

from ..errors import InvalidTransition
from .model import Event, State

__all__ = [
    "DESCRIPTIONS",
    "HANDLED_STATES",
    "MIGRATE",
    "OPEN_STATES",
    "TRANSITIONS",
    "WORKFLOW",
    "Workflow",
    "allowed_triggers",
    "edges",
    "fire",
]

S = State

_HANDLING = [S.RECEIVED, S.REGISTERED, S.TRANSFERRED, S.RESEARCHED, S.RETURNED, S.OBJECTED]
_DECIDED = [S.ADOPTED, S.PARTIALLY_ADOPTED, S.DECLINED]
_OPEN = [*_HANDLING, *_DECIDED, S.REPLIED]
_HANDLED = [*_DECIDED, S.REPLIED, S.RATED, S.UNRATED]
_REPORTABLE = [S.REGISTERED, S.TRANSFERRED, S.RESEARCHED, S.RETURNED, S.OBJECTED, *_HANDLED]

OPEN_STATES: frozenset[State] = frozenset(_OPEN)
"""States in which something is due."""
HANDLED_STATES: tuple[State, ...] = tuple(_HANDLED)
"""States of a suggestion that was decided (the summary-phase commands' sources)."""

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
    {"trigger": "object_transfer", "source": S.TRANSFERRED, "dest": S.OBJECTED},
    {"trigger": "accept_objection", "source": S.OBJECTED, "dest": S.RETURNED},
    {"trigger": "reject_objection", "source": S.OBJECTED, "dest": S.TRANSFERRED},
    {"trigger": "reopen", "source": S.RATED, "dest": S.TRANSFERRED},
    {"trigger": "close_unrated", "source": S.REPLIED, "dest": S.UNRATED},
    # internal: an event, no change of state
    {"trigger": "request_extension", "source": [S.TRANSFERRED, S.RESEARCHED, *_DECIDED], "dest": None},
    {"trigger": "approve_extension", "source": [S.TRANSFERRED, S.RESEARCHED, *_DECIDED], "dest": None},
    {"trigger": "reject_extension", "source": [S.TRANSFERRED, S.RESEARCHED, *_DECIDED], "dest": None},
    {"trigger": "flag_overdue", "source": _OPEN, "dest": None},
    {"trigger": "retime", "source": _OPEN, "dest": None},
    # reporting upward (呈报, 呈送) happens from registration on (notice 四（二）3 and 四（三）)
    {"trigger": "report_upward", "source": _REPORTABLE, "dest": None},
    {"trigger": "forward_to_city", "source": _REPORTABLE, "dest": None},
    # summary phase (总结运用阶段): on suggestions that were decided
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
    "research": "the lead unit researches and discusses it, saying how (调研论证; 信访工作条例 Art. 29 研究论证)",
    "adopt": "decided: adopted (采纳; Art. 29)",
    "adopt_partially": "decided: partially adopted, saying which part (部分采纳; Art. 29)",
    "decline": "decided: declined, with a reason (不予采纳)",
    "reply": "the unit replies to the proposer, saying in what form (答复建议人; Art. 29 予以回复)",
    "rate": "the proposer rates the reply (评价)",
    "not_accept": "not accepted at registration, e.g. a personal complaint (不予受理)",
    "withdraw": "withdrawn by the proposer before a decision (撤回)",
    "object_transfer": "the lead unit objects, with reasons, that a transfer is outside its remit, "
                       "within 5 working days (提出异议, 信访工作条例 Art. 23)",
    "accept_objection": "the office agrees with the objection: the suggestion returns to be routed again (异议成立)",
    "reject_objection": "the office refuses the objection: the unit keeps handling it (异议不成立)",
    "reopen": "after a 'dissatisfied' rating the unit handles it again, once (重新办理)",
    "close_unrated": "the rating window closed without a rating (评价期满未评价)",
    "request_extension": "the handling unit asks to extend its deadline, with a reason, by at most 30 days (申请延期)",
    "approve_extension": "the approver grants the extension; the proposer is told (批准延期)",
    "reject_extension": "the approver refuses the extension (不予延期)",
    "flag_overdue": "the current step passed its deadline; recorded once per deadline (超期)",
    "retime": "a deadline counted over provisional calendar days is re-counted on the official schedule (重新计算期限)",
    "report_upward": "reported to the party committee and government as original, excerpt or analysis (呈报)",
    "forward_to_city": "forwarded to the municipal office (呈送市信访办)",
    "evaluate": "scored on quality, value and effect by a named evaluator (评比)",
    "nominate_reward": "an adopted, evaluated suggestion placed among reward candidates with a tier "
                       "(纳入奖励备选; Art. 29 给予奖励)",
    "record_adoption": "records the measure or document it became (吸纳转化运用)",
    "mark_typical": "marked as a typical case (典型案例)",
}

DECIDE_TRIGGERS: Mapping[str, str] = {"adopted": "adopt", "partially_adopted": "adopt_partially",
                                      "declined": "decline"}
"""The trigger ``decide`` fires for each outcome value."""


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


class Workflow:
    """A workflow definition: its edges, the machine built from them once, and a lookup table.

    ``name`` and the digest of the edges make :attr:`version`.  Its states are the ones its
    edges name.  ``migrations`` declares, for each state an earlier definition had and this
    one has not, the state its suggestions move to (:meth:`jianyi_flow.Flow.migrate` writes
    one ``migrate_state`` event per suggestion moved).
    """

    def __init__(self, name: str, transitions: Sequence[Mapping[str, Any]],
                 migrations: Mapping[State, State] | None = None) -> None:
        self.name = name
        self.transitions = tuple(transitions)
        named: set[State] = {State.RECEIVED}
        for t in self.transitions:
            named.update(State(s) for s in _as_list(t["source"]))
            if t["dest"] is not None:
                named.add(State(t["dest"]))
        self.states = tuple(s for s in State if s in named)
        self.migrations: Mapping[State, State] = dict(migrations or {})
        for old, new in self.migrations.items():
            if old in named or new not in named:
                raise ValueError(f"migration {old.value} -> {new.value}: the old state must be gone from "
                                 "this workflow and the new one part of it")
        self.machine = Machine(
            model=None,
            states=[s.value for s in self.states],
            transitions=[
                {"trigger": t["trigger"], "source": [str(s) for s in _as_list(t["source"])],
                 "dest": None if t["dest"] is None else str(t["dest"])}
                for t in self.transitions
            ],
            initial=State.RECEIVED.value,
            auto_transitions=False,
        )
        by_value = {s.value: s for s in self.states}
        table: dict[tuple[State, str], State | None] = {}
        for state in self.states:
            for trigger in self.machine.get_triggers(state.value):
                for transition in self.machine.get_transitions(trigger, source=state.value):
                    table[(state, trigger)] = None if transition.dest is None else by_value[transition.dest]
        self._table = table
        self._allowed = {
            s: list(dict.fromkeys("decide" if t in DECIDE_TRIGGERS.values() else t
                                  for t in self.machine.get_triggers(s.value)))
            for s in self.states
        }
        edges = sorted((src.value, trig, None if dst is None else dst.value) for (src, trig), dst in table.items())
        digest = hashlib.sha256(json.dumps([edges, sorted((a.value, b.value) for a, b in self.migrations.items())],
                                           separators=(",", ":")).encode()).hexdigest()
        self.version = f"{name}@{digest[:12]}"

    def __repr__(self) -> str:
        return f"Workflow({self.version})"

    @property
    def triggers(self) -> frozenset[str]:
        """Every trigger of this definition."""
        return frozenset(trigger for _, trigger in self._table)

    def allowed_triggers(self, state: State) -> list[str]:
        """The triggers accepted in ``state`` (``decide`` shown once for its three)."""
        return list(self._allowed.get(state, ()))

    def accepts(self, trigger: str, state: State) -> bool:
        return (state, trigger) in self._table

    def fire(self, trigger: str, state: State, command: str | None = None) -> State:
        """The state ``trigger`` leads to from ``state`` (``state`` itself for an internal one).

        Raises :class:`InvalidTransition` naming the command and the state when the workflow
        has no such edge.  ``command`` is the name the caller used (``decide`` for ``adopt``...).
        """
        key = (state, trigger)
        if key not in self._table:
            raise InvalidTransition(command or trigger, state.value, self.allowed_triggers(state))
        dest = self._table[key]
        return state if dest is None else dest

    def explain(self, event: Event) -> str | None:
        """Why this definition could not have written ``event`` (``None`` when it could)."""
        if event.kind == "receive":
            ok = event.from_state is None and event.to_state is State.RECEIVED
            return None if ok else "a receive that does not start in 'received'"
        if event.from_state is None:
            return f"{event.kind!r} without a state before it"
        if event.kind in ("erase_personal_data", "vault_personal_data"):  # domain.personal.PERSONAL_DATA_KINDS
            return None if event.from_state is event.to_state else f"{event.kind!r} changed the state"
        if event.kind == MIGRATE:
            if self.migrations.get(event.from_state) is event.to_state:
                return None
            return f"no migration {event.from_state.value} -> {event.to_state.value} in {self.version}"
        trigger = DECIDE_TRIGGERS.get(event.to_state.value, "") if event.kind == "decide" else event.kind
        key = (event.from_state, trigger)
        if key not in self._table:
            return f"{event.kind!r} is not allowed in {event.from_state.value!r} by {self.version}"
        dest = self._table[key]
        if (event.from_state if dest is None else dest) is not event.to_state:
            return f"{event.kind!r} from {event.from_state.value!r} leads elsewhere than {event.to_state.value!r}"
        return None

    def edges(self) -> list[tuple[State, str, State | None]]:
        """Every (source, trigger, dest) edge, ``dest`` ``None`` for internal ones."""
        return [(src, trig, dst) for (src, trig), dst in self._table.items()]


WORKFLOW = Workflow("suggestion", TRANSITIONS)
"""The workflow every :class:`~jianyi_flow.Flow` runs unless given another."""

MIGRATE = "migrate_state"
"""The kind of the event :meth:`jianyi_flow.Flow.migrate` writes when it moves a suggestion out of a
state its workflow no longer has."""



def allowed_triggers(state: State) -> list[str]:
    """:meth:`Workflow.allowed_triggers` of :data:`WORKFLOW`."""
    return WORKFLOW.allowed_triggers(state)


def fire(trigger: str, state: State, command: str | None = None) -> State:
    """:meth:`Workflow.fire` of :data:`WORKFLOW`."""
    return WORKFLOW.fire(trigger, state, command)


def edges() -> list[tuple[State, str, State | None]]:
    """Every edge of :data:`WORKFLOW`, in the order of :data:`TRANSITIONS`."""
    out: list[tuple[State, str, State | None]] = []
    for t in TRANSITIONS:
        for source in _as_list(t["source"]):
            out.append((State(source), t["trigger"], None if t["dest"] is None else State(t["dest"])))
    return out

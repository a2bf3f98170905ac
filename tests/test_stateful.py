"""A hypothesis state machine drives random command sequences through Flow on two stores.

Every run starts with one suggestion in each state.  Each step then receives another (or
drives a new one to some state), sends one command with well-formed arguments to a drawn
suggestion — any of them, so mostly illegal, or one whose state allows the command, so
runs go deep — sweeps every command a suggestion's state forbids (or every internal one
it allows), advances the clock, or runs ``tick`` (maybe after a jump of weeks).

Flow runs with the default permission table, and each command is sent by the actor the
table allows (``jianyi_flow.testing.actor_for``: the office routes, the lead unit
handles, its head decides on extensions, the proposer rates and withdraws, an evaluator
scores).  What each command may do is written out here by hand from the commands'
docstrings (service/flow.py) and their rules (service/commands.py) — ``SOURCES``,
``DESTINATION``, who can see what, and the per-command refusals — independently of
``jianyi_flow.domain.workflow``, and every outcome is checked against it:

* a legal command writes exactly one event and moves the suggestion where the table says;
* an illegal one raises the typed error the table names and changes nothing (same row,
  same history, no outbox message): ``NotFound`` when the actor cannot see the
  suggestion (a unit before it is transferred to it, an evaluator before a decision),
  ``InvalidTransition`` for a wrong state or a command's own rule, ``WindowClosed`` for an
  objection after its window, ``ValidationError`` for a second report in one form;
* ``tick`` closes unrated replies past their rating window and flags every other overdue
  step once, and a second ``tick`` at the same time does nothing.

Invariants, after every step: every suggestion whose row changed equals the replay of its
history, with versions gap-free ``1..n`` and a history that verifies (all of them are
checked again at the end of the run, with ``Flow.verify_all``, which also checks the log
positions ``seq``); and a suggestion that reached a terminal state (not_accepted,
withdrawn, unrated) is still in it — with no new event at all for the two that no command
may touch.

The same machine runs on :class:`MemoryStore` and on ``SqlStore`` over in-memory SQLite
(which fails with the import error while ``jianyi_flow.sql`` does not import).
``JIANYI_FLOW_STATEFUL_EXAMPLES`` raises the number of runs for a longer hunt.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, MultipleResults, RuleBasedStateMachine, initialize, invariant, multiple, rule

from jianyi_flow import (
    FakeClock,
    InvalidTransition,
    MemoryStore,
    NotFound,
    Outcome,
    Rating,
    ReplyForm,
    ResearchMethod,
    State,
    Store,
    Suggestion,
    ValidationError,
    WindowClosed,
    replay,
)
from jianyi_flow.domain.history import verify_events
from jianyi_flow.domain.model import AdoptionForm, ReportForm, RewardTier, Step
from jianyi_flow.domain.personal import pseudonymous_row
from jianyi_flow.storage.base import OutboxMessage, Query
from jianyi_flow.testing import CO_UNIT, LEAD_UNIT, OFFICE_ACTOR, OTHER_UNIT, T0, actor_for, drive_to, make_draft
from jianyi_flow.testing import make_flow as kit_flow

try:
    from jianyi_flow.sql import SqlStore
except ImportError as exc:  # the SQL store is being rewritten on its own branch
    SQL_MISSING: str | None = f"jianyi_flow.sql does not import: {exc}"
else:
    SQL_MISSING = None

START = T0
MAX_ADVANCE = dt.timedelta(days=420)
"""Keeps every deadline (the clock plus the longest step and an extension) inside the covered calendar."""

S = State
HANDLING = frozenset({S.RECEIVED, S.REGISTERED, S.TRANSFERRED, S.RESEARCHED, S.RETURNED, S.OBJECTED})
DECIDED = frozenset({S.ADOPTED, S.PARTIALLY_ADOPTED, S.DECLINED})
OPEN = HANDLING | DECIDED | {S.REPLIED}
HANDLED = DECIDED | {S.REPLIED, S.RATED, S.UNRATED}
REPORTABLE = (HANDLING - {S.RECEIVED}) | HANDLED
EXTENSIBLE = frozenset({S.TRANSFERRED, S.RESEARCHED}) | DECIDED
TERMINAL = frozenset({S.NOT_ACCEPTED, S.WITHDRAWN, S.UNRATED})
UNTOUCHABLE = frozenset({S.NOT_ACCEPTED, S.WITHDRAWN})
"""Terminal states no command at all may write to (unrated still takes summary-phase records)."""

SOURCES: dict[str, frozenset[State]] = {
    "register": frozenset({S.RECEIVED}),
    "not_accept": frozenset({S.RECEIVED}),
    "transfer": frozenset({S.REGISTERED, S.RETURNED}),
    "object_transfer": frozenset({S.TRANSFERRED}),
    "accept_objection": frozenset({S.OBJECTED}),
    "reject_objection": frozenset({S.OBJECTED}),
    "research": frozenset({S.TRANSFERRED}),
    "decide": frozenset({S.RESEARCHED}),
    "reply": DECIDED,
    "rate": frozenset({S.REPLIED}),
    "withdraw": HANDLING,
    "reopen": frozenset({S.RATED}),
    "request_extension": EXTENSIBLE,
    "approve_extension": EXTENSIBLE,
    "reject_extension": EXTENSIBLE,
    "report_upward": REPORTABLE,
    "forward_to_city": REPORTABLE,
    "evaluate": HANDLED,
    "nominate_reward": HANDLED,
    "record_adoption": HANDLED,
    "mark_typical": HANDLED,
}
"""The states each command is legal in, written out by hand."""

DESTINATION: dict[str, State] = {
    "register": S.REGISTERED,
    "not_accept": S.NOT_ACCEPTED,
    "transfer": S.TRANSFERRED,
    "object_transfer": S.OBJECTED,
    "accept_objection": S.RETURNED,
    "reject_objection": S.TRANSFERRED,
    "research": S.RESEARCHED,
    "reply": S.REPLIED,
    "rate": S.RATED,
    "withdraw": S.WITHDRAWN,
    "reopen": S.TRANSFERRED,
}
"""Where a state-changing command leads; the others keep the state (decide: by its outcome)."""

UNIT_COMMANDS = frozenset({"object_transfer", "research", "decide", "reply", "request_extension",
                           "approve_extension", "reject_extension"})
"""Sent by the lead unit (or its head): a unit sees a suggestion only once it is transferred to it."""
EVALUATOR_COMMANDS = frozenset({"evaluate", "nominate_reward"})
"""Sent by an evaluator, who sees a suggestion only once it is decided."""

DRIVABLE = [s for s in State if s is not S.UNRATED]
"""States ``drive_to`` reaches by commands alone (unrated needs time to pass and a tick)."""

DECISION = {Outcome.ADOPTED: S.ADOPTED, Outcome.PARTIALLY_ADOPTED: S.PARTIALLY_ADOPTED, Outcome.DECLINED: S.DECLINED}
ADOPTED = (Outcome.ADOPTED, Outcome.PARTIALLY_ADOPTED)

Refusal = type[Exception] | None
REFUSALS = (InvalidTransition, ValidationError, NotFound, WindowClosed)
AIM = st.none() | st.integers(0, 1000)
"""``None``: run the command on the drawn suggestion; a number: on one whose state allows it."""
texts = st.sampled_from(["理由", "需进一步调研", "x" * 40, "含 <b>标记</b> 和 'quotes'; DROP TABLE x;--"])
maybe_texts = st.none() | texts


ARGS: dict[str, dict[str, Any]] = {
    "register": {},
    "not_accept": {"reason": texts},
    "transfer": {"lead": st.sampled_from([LEAD_UNIT, OTHER_UNIT]), "co": st.sampled_from([(), (CO_UNIT,)]),
                 "note": maybe_texts},
    "object_transfer": {"reason": texts},
    "accept_objection": {"note": maybe_texts},
    "reject_objection": {"reason": texts},
    "research": {"findings": texts, "method": st.sampled_from(list(ResearchMethod))},
    "decide": {"outcome": st.sampled_from(list(Outcome)), "reason": texts},
    "reply": {"text": texts, "form": st.sampled_from(list(ReplyForm))},
    "rate": {"rating": st.sampled_from(list(Rating)), "comment": maybe_texts},
    "withdraw": {"reason": maybe_texts},
    "reopen": {"reason": texts},
    "request_extension": {"days": st.integers(1, 30), "reason": texts},
    "approve_extension": {"note": maybe_texts},
    "reject_extension": {"reason": texts},
    "report_upward": {"form": st.sampled_from(list(ReportForm)), "note": maybe_texts},
    "forward_to_city": {"note": maybe_texts},
    "evaluate": {"scores": st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(0, 10))},
    "nominate_reward": {"tier": st.sampled_from(list(RewardTier))},
    "record_adoption": {"into": texts, "form": st.none() | st.sampled_from(list(AdoptionForm))},
    "mark_typical": {"note": maybe_texts},
}
"""Well-formed arguments for each command: strategies for the rule's keyword arguments besides ``sid``."""


def _examples() -> int:
    return int(os.environ.get("JIANYI_FLOW_STATEFUL_EXAMPLES", "30"))


def visible(command: str, s: Suggestion) -> bool:
    """Whether the actor who sends ``command`` can see ``s`` at all."""
    if command in UNIT_COMMANDS:
        return s.lead_unit is not None
    if command in EVALUATOR_COMMANDS:
        return s.state in HANDLED
    return True  # the office and the proposer (the suggestion's own account) see it


def drain(store: Store) -> list[OutboxMessage]:
    """Claim every unsent outbox message and mark it sent; returns them oldest first."""
    messages = store.claim(1_000_000, START, dt.timedelta(days=1))
    store.mark_sent([m.id for m in messages if m.id is not None], START)
    return messages


class FlowMachine(RuleBasedStateMachine):
    """Random command sequences against one store; subclasses say which (``make_store``)."""

    make_store: ClassVar[Callable[[], Store]]
    suggestions = Bundle("suggestions")

    def __init__(self) -> None:
        super().__init__()
        self.store = type(self).make_store()
        self.clock = FakeClock(START)
        self.flow = kit_flow(self.store, self.clock)
        self.ids: list[str] = []
        self.frozen: dict[str, tuple[State, int]] = {}
        """Suggestions seen in a terminal state: that state, and the version then."""
        self.verified: dict[str, Suggestion] = {}
        """The row last checked against the replay of its history, per suggestion."""
        self.counter = 0

    def teardown(self) -> None:
        try:  # every history once more, whole: an event written without its row would show here
            assert self.flow.verify_all() == []
            for sid in self.ids:
                events = self.store.history(sid)
                assert [e.version for e in events] == list(range(1, len(events) + 1)), sid
                assert replay(events) == pseudonymous_row(self.store.load(sid)), sid
        finally:
            self.store.close()

    # --- creating suggestions -------------------------------------------------------------
    @initialize(target=suggestions, order=st.permutations(DRIVABLE))
    def start_with_every_state(self, order: list[State]) -> MultipleResults[str]:
        """Every run starts with a suggestion in each state (unrated first: it moves the clock)."""
        return multiple(*(self.drive(state) for state in [S.UNRATED, *order]))

    @rule(target=suggestions)
    def receive(self) -> str:
        self.counter += 1
        s = self.flow.receive(make_draft(), OFFICE_ACTOR, suggestion_id=f"s{self.counter:03d}")
        assert (s.state, s.version) == (S.RECEIVED, 1)
        self.ids.append(s.id)
        return s.id

    @rule(target=suggestions, state=st.sampled_from(DRIVABLE))
    def receive_and_drive(self, state: State) -> str:
        """A new suggestion walked straight to ``state`` (so random runs reach the late states)."""
        return self.drive(state)

    def drive(self, state: State) -> str:
        self.counter += 1
        s = drive_to(self.flow, state, suggestion_id=f"s{self.counter:03d}")
        self.ids.append(s.id)
        return s.id

    # --- running one command ----------------------------------------------------------------
    def run(
        self,
        sid: str,
        aim: int | None,
        command: str,
        call: Callable[..., Suggestion],
        refusal: Callable[[Suggestion], Refusal] = lambda s: None,
        destination: State | None = None,
        **kwargs: Any,
    ) -> None:
        """Send ``command`` to a suggestion, by the actor allowed to, and check it did what the table says.

        The suggestion is ``sid``, drawn from all of them, so most commands are illegal in
        its state; when ``aim`` is given it is instead the ``aim``-th (modulo) of those whose
        state allows the command, if any, so that runs also go deep.
        """
        if aim is not None:
            legal = [i for i, row in self.rows().items() if row.state in SOURCES[command]]
            if legal:
                sid = legal[aim % len(legal)]
        drain(self.store)
        before = self.store.load(sid)
        history = self.store.history(sid)
        if not visible(command, before):
            expected: Refusal = NotFound
        elif before.state not in SOURCES[command]:
            expected = InvalidTransition
        else:
            expected = refusal(before)
        actor = actor_for(command, before)
        try:
            after = call(sid, actor, **kwargs)
        except REFUSALS as exc:
            assert expected is not None, f"{command} refused in {before.state}: {exc!r}"
            assert type(exc) is expected, f"{command} in {before.state}: {exc!r}, expected {expected.__name__}"
            assert self.store.load(sid) == before
            assert self.store.history(sid) == history
            assert drain(self.store) == []
            return
        assert expected is None, f"{command} accepted in {before.state}, expected {expected.__name__}"
        state = destination or DESTINATION.get(command, before.state)
        assert (after.state, after.version) == (state, before.version + 1)
        assert self.flow.get(sid, actor) == after  # what the actor was shown is what the store holds
        events = self.store.history(sid)
        assert events[:-1] == history
        last = events[-1]
        assert (last.kind, last.from_state, last.to_state, last.version) == (command, before.state, state,
                                                                            after.version)
        assert last.prev_hash == before.event_hash and self.store.load(sid).event_hash == last.hash
        assert last.seq is not None and all(e.seq is not None and e.seq < last.seq for e in history)
        assert sorted(m.recipient for m in drain(self.store)) == sorted(last.notices)

    # --- the commands: one rule each, on any suggestion (mostly illegal) or one that allows it ---
    @rule(sid=suggestions, aim=AIM)
    def register(self, sid: str, aim: int | None) -> None:
        self.run(sid, aim, "register", self.flow.register)

    @rule(sid=suggestions, aim=AIM, **ARGS["not_accept"])
    def not_accept(self, sid: str, aim: int | None, reason: str) -> None:
        self.run(sid, aim, "not_accept", self.flow.not_accept, reason=reason)

    @rule(sid=suggestions, aim=AIM, **ARGS["transfer"])
    def transfer(self, sid: str, aim: int | None, lead: str, co: tuple[str, ...], note: str | None) -> None:
        self.run(sid, aim, "transfer", self.flow.transfer, lead_unit=lead, co_units=co, note=note)

    @rule(sid=suggestions, aim=AIM, **ARGS["object_transfer"])
    def object_transfer(self, sid: str, aim: int | None, reason: str) -> None:
        def refusal(s: Suggestion) -> Refusal:
            # only a fresh transfer (not after research, a reopen or an objection), within its window
            if s.objection_due_at is None:
                return InvalidTransition
            return WindowClosed if self.clock.now() > s.objection_due_at else None

        self.run(sid, aim, "object_transfer", self.flow.object_transfer, refusal, reason=reason)

    @rule(sid=suggestions, aim=AIM, **ARGS["accept_objection"])
    def accept_objection(self, sid: str, aim: int | None, note: str | None) -> None:
        self.run(sid, aim, "accept_objection", self.flow.accept_objection, note=note)

    @rule(sid=suggestions, aim=AIM, **ARGS["reject_objection"])
    def reject_objection(self, sid: str, aim: int | None, reason: str) -> None:
        self.run(sid, aim, "reject_objection", self.flow.reject_objection, reason=reason)

    @rule(sid=suggestions, aim=AIM, **ARGS["research"])
    def research(self, sid: str, aim: int | None, findings: str, method: ResearchMethod) -> None:
        self.run(sid, aim, "research", self.flow.research, findings=findings, method=method)

    @rule(sid=suggestions, aim=AIM, **ARGS["decide"])
    def decide(self, sid: str, aim: int | None, outcome: Outcome, reason: str) -> None:
        part = reason if outcome is Outcome.PARTIALLY_ADOPTED else None
        self.run(sid, aim, "decide", self.flow.decide, destination=DECISION[outcome], outcome=outcome,
                 reason=reason, adopted_part=part)

    @rule(sid=suggestions, aim=AIM, **ARGS["reply"])
    def reply(self, sid: str, aim: int | None, text: str, form: ReplyForm) -> None:
        self.run(sid, aim, "reply", self.flow.reply, text=text, form=form)

    @rule(sid=suggestions, aim=AIM, **ARGS["rate"])
    def rate(self, sid: str, aim: int | None, rating: Rating, comment: str | None) -> None:
        self.run(sid, aim, "rate", self.flow.rate, rating=rating, comment=comment)

    @rule(sid=suggestions, aim=AIM, **ARGS["withdraw"])
    def withdraw(self, sid: str, aim: int | None, reason: str | None) -> None:
        self.run(sid, aim, "withdraw", self.flow.withdraw, reason=reason)

    @rule(sid=suggestions, aim=AIM, **ARGS["reopen"])
    def reopen(self, sid: str, aim: int | None, reason: str) -> None:
        def refusal(s: Suggestion) -> Refusal:
            # once, and only after a 'dissatisfied' rating
            return InvalidTransition if s.rating is not Rating.DISSATISFIED or s.reopen_count >= 1 else None

        self.run(sid, aim, "reopen", self.flow.reopen, refusal, reason=reason)

    @rule(sid=suggestions, aim=AIM, **ARGS["request_extension"])
    def request_extension(self, sid: str, aim: int | None, days: int, reason: str) -> None:
        def refusal(s: Suggestion) -> Refusal:
            # the research or reply deadline only, once per step, one request at a time
            if s.due_at is None or s.due_step not in (Step.RESEARCH, Step.REPLY):
                return InvalidTransition
            return InvalidTransition if s.extended or s.extension_request is not None else None

        self.run(sid, aim, "request_extension", self.flow.request_extension, refusal, days=days, reason=reason)

    def _pending(self, s: Suggestion) -> Refusal:
        """approve/reject: only a request that is waiting, on a step not yet extended."""
        return InvalidTransition if s.extension_request is None or s.extended else None

    @rule(sid=suggestions, aim=AIM, **ARGS["approve_extension"])
    def approve_extension(self, sid: str, aim: int | None, note: str | None) -> None:
        self.run(sid, aim, "approve_extension", self.flow.approve_extension, self._pending, note=note)

    @rule(sid=suggestions, aim=AIM, **ARGS["reject_extension"])
    def reject_extension(self, sid: str, aim: int | None, reason: str) -> None:
        self.run(sid, aim, "reject_extension", self.flow.reject_extension, self._pending, reason=reason)

    @rule(sid=suggestions, aim=AIM, **ARGS["report_upward"])
    def report_upward(self, sid: str, aim: int | None, form: ReportForm, note: str | None) -> None:
        self.run(sid, aim, "report_upward", self.flow.report_upward,
                 lambda s: ValidationError if form in s.upward_reports else None, form=form, note=note)

    @rule(sid=suggestions, aim=AIM, **ARGS["forward_to_city"])
    def forward_to_city(self, sid: str, aim: int | None, note: str | None) -> None:
        self.run(sid, aim, "forward_to_city", self.flow.forward_to_city,
                 lambda s: InvalidTransition if s.forwarded_to_city_at is not None else None, note=note)

    @rule(sid=suggestions, aim=AIM, **ARGS["evaluate"])
    def evaluate(self, sid: str, aim: int | None, scores: tuple[int, int, int]) -> None:
        q, v, e = scores
        self.run(sid, aim, "evaluate", self.flow.evaluate, quality=q, value=v, effect=e, evaluator="李评委")

    @rule(sid=suggestions, aim=AIM, **ARGS["nominate_reward"])
    def nominate_reward(self, sid: str, aim: int | None, tier: RewardTier) -> None:
        self.run(sid, aim, "nominate_reward", self.flow.nominate_reward,
                 lambda s: InvalidTransition if s.outcome not in ADOPTED or s.evaluation is None else None,
                 tier=tier)

    @rule(sid=suggestions, aim=AIM, **ARGS["record_adoption"])
    def record_adoption(self, sid: str, aim: int | None, into: str, form: AdoptionForm | None) -> None:
        self.run(sid, aim, "record_adoption", self.flow.record_adoption,
                 lambda s: InvalidTransition if s.outcome not in ADOPTED else None, adopted_into=into, form=form)

    @rule(sid=suggestions, aim=AIM, **ARGS["mark_typical"])
    def mark_typical(self, sid: str, aim: int | None, note: str | None) -> None:
        self.run(sid, aim, "mark_typical", self.flow.mark_typical,
                 lambda s: InvalidTransition if s.typical_case else None, note=note)

    @rule(sid=suggestions, data=st.data())
    def sweep(self, sid: str, data: st.DataObject) -> None:
        """Every command the table forbids in the suggestion's state, in turn: each must be refused.

        The rules above pick one command at a time, so in a few hundred steps some
        (command, state) pairs would rarely come up; this tries all of a state's at once.
        """
        state = self.store.load(sid).state
        for command in (c for c in SOURCES if state not in SOURCES[c]):
            args = {name: data.draw(strat, label=f"{command}.{name}") for name, strat in ARGS[command].items()}
            getattr(self, command)(sid, None, **args)
        assert self.store.load(sid).state is state

    @rule(sid=suggestions, data=st.data())
    def sweep_internal(self, sid: str, data: st.DataObject) -> None:
        """Every internal command (no change of state) the table allows in the suggestion's state, in turn.

        Each is accepted, or refused by its own rule (a second report in the same form...).
        """
        state = self.store.load(sid).state
        for command in (c for c in SOURCES if state in SOURCES[c] and c not in DESTINATION and c != "decide"):
            args = {name: data.draw(strat, label=f"{command}.{name}") for name, strat in ARGS[command].items()}
            getattr(self, command)(sid, None, **args)
        assert self.store.load(sid).state is state

    @rule()
    def command_on_an_unknown_suggestion(self) -> None:
        with pytest.raises(NotFound):
            self.flow.register("nobody", OFFICE_ACTOR)
        assert self.store.history("nobody") == []

    # --- time ------------------------------------------------------------------------------
    def advance_by(self, step: dt.timedelta) -> None:
        if self.clock.now() + step - START <= MAX_ADVANCE:
            self.clock.advance(step)

    @rule(step=st.one_of(
        st.integers(1, 600).map(lambda m: dt.timedelta(minutes=m)),
        st.integers(1, 72).map(lambda h: dt.timedelta(hours=h)),
        st.integers(1, 45).map(lambda d: dt.timedelta(days=d)),
    ))
    def advance(self, step: dt.timedelta) -> None:
        self.advance_by(step)

    @rule(jump=st.none() | st.integers(1, 70).map(lambda d: dt.timedelta(days=d)))
    def tick(self, jump: dt.timedelta | None) -> None:
        """``tick`` now, or after ``jump`` (so deadlines pass in runs of a few dozen steps)."""
        if jump is not None:
            self.advance_by(jump)
        now = self.clock.now()
        before = self.rows()
        drain(self.store)
        written = self.flow.tick()
        changed: set[str] = set()
        for sid, row in before.items():
            after = self.store.load(sid)
            if row.state in OPEN and row.due_at is not None and row.due_at < now:
                if row.state is S.REPLIED:  # the rating window closed: unrated, nothing more due
                    assert (after.state, after.version, after.due_at) == (S.UNRATED, row.version + 1, None)
                    changed.add(sid)
                    continue
                if row.overdue_flagged_at != row.due_at:  # flagged once per due time
                    assert (after.state, after.version) == (row.state, row.version + 1)
                    assert after.overdue_flagged_at == row.due_at
                    changed.add(sid)
                    continue
            assert after == row, f"tick changed {sid} in {row.state} due {row.due_at}"
        assert sorted(e.suggestion_id for e in written) == sorted(changed)
        assert {e.kind for e in written} <= {"close_unrated", "flag_overdue"}
        if not changed:
            assert drain(self.store) == []
        # idempotent: a second tick at the same time finds nothing to do
        assert self.flow.tick() == []

    # --- invariants ------------------------------------------------------------------------
    def rows(self) -> dict[str, Suggestion]:
        """Every current row, in one query."""
        return {s.id: s for s in self.store.query(Query())}

    @invariant()
    def every_row_is_the_replay_of_its_gap_free_history(self) -> None:
        """Checked for each row that changed since the last step (``teardown`` checks them all again)."""
        rows = self.rows()
        assert sorted(rows) == sorted(self.ids)
        for sid, row in rows.items():
            if self.verified.get(sid) == row:
                continue
            events = self.store.history(sid)
            assert [e.version for e in events] == list(range(1, len(events) + 1)), sid
            assert row.version == len(events) and row.event_hash == events[-1].hash, sid
            assert replay(events) == pseudonymous_row(row), sid
            assert verify_events(sid, events, row) == [], sid
            self.verified[sid] = row

    @invariant()
    def terminal_states_stay_terminal(self) -> None:
        for sid, row in self.rows().items():
            if sid in self.frozen:
                state, version = self.frozen[sid]
                assert row.state is state, f"{sid} left terminal state {state} for {row.state}"
                if state in UNTOUCHABLE:
                    assert row.version == version, f"{sid} in {state} got a new event"
            elif row.state in TERMINAL:
                self.frozen[sid] = (row.state, row.version)


def _sqlite_memory() -> Store:
    if SQL_MISSING is not None:
        pytest.fail(SQL_MISSING)
    store: Store = SqlStore.open("sqlite://")
    return store


class MemoryFlowMachine(FlowMachine):
    make_store = staticmethod(MemoryStore)


class SqliteFlowMachine(FlowMachine):
    make_store = staticmethod(_sqlite_memory)


SETTINGS = settings(
    max_examples=_examples(),
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestMemoryStoreStateMachine = MemoryFlowMachine.TestCase
TestMemoryStoreStateMachine.settings = SETTINGS
TestSqliteStoreStateMachine = SqliteFlowMachine.TestCase
TestSqliteStoreStateMachine.settings = SETTINGS

"""``Flow``: the service portals call.  One method per command.

Each command loads the suggestion, asks the guards (campaign phase, permissions), checks
its inputs, asks the workflow machine where the command leads, computes the new due
time, and commits the new row together with exactly one event (and any outbox
messages) through the store.  It returns the new suggestion.  If anything fails,
nothing is written.

Data flows one way: portal → ``Flow`` → workflow (``transitions``) → ``Store``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ..domain import validation as v
from ..domain.calendar import BusinessCalendar, default_calendar
from ..domain.clock import Clock, local_date
from ..domain.deadlines import DEFAULT_POLICY, MAX_EXTENSION, CalendarDays, DeadlinePolicy, Step
from ..domain.deadlines import extend as extend_due
from ..domain.history import HistoryProblem, seal_new, verify_events
from ..domain.model import (
    SCORE_MAX,
    SCORE_MIN,
    SYSTEM_ACTOR,
    Actor,
    Channel,
    Evaluation,
    Event,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReportForm,
    RewardTier,
    Role,
    State,
    Suggestion,
    SuggestionDraft,
    build_event,
    build_suggestion,
    encode_changes,
    replace,
    replay,
)
from ..domain.workflow import fire
from ..errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InvalidTransition,
    JianyiFlowError,
    NotFound,
    ValidationError,
)
from ..storage.base import OutboxMessage, Query, Store, build_change, build_message, flagged_for_due, iter_suggestions
from .guards import CommandContext, Guard, build_context

OPEN_STATES = frozenset(
    {
        State.RECEIVED,
        State.REGISTERED,
        State.TRANSFERRED,
        State.RESEARCHED,
        State.RETURNED,
        State.ADOPTED,
        State.PARTIALLY_ADOPTED,
        State.DECLINED,
        State.REPLIED,
    }
)
"""States in which something is due."""

_DECIDE = {
    Outcome.ADOPTED: "adopt",
    Outcome.PARTIALLY_ADOPTED: "adopt_partially",
    Outcome.DECLINED: "decline",
}

OFFICE = "office"
"""Outbox recipient meaning the collection office (区征集办)."""
LEADERSHIP = "leadership"
"""Outbox recipient meaning the party committee and government (党委政府)."""
MUNICIPAL_OFFICE = "municipal_office"
"""Outbox recipient meaning the municipal office (市信访办)."""

_E = TypeVar("_E", bound=enum.Enum)


def _enum(kind: type[_E], value: object, field: str) -> _E:
    """``value`` as a member of ``kind`` (members and their values both accepted)."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(field, f"must be one of {[m.value for m in kind]}") from None


def proposer_recipient(suggestion_id: str) -> str:
    return f"proposer:{suggestion_id}"


def unit_recipient(unit: str) -> str:
    return f"unit:{unit}"


def default_registration_number(s: Suggestion, at: dt.datetime) -> str:
    """``<campaign>-<yyyymmdd>-<id>``: unique because ids are, readable by date."""
    return f"{s.campaign or 'JY'}-{local_date(at).isoformat().replace('-', '')}-{s.id}"


class Flow:
    """Runs commands on suggestions against a store, with time from an injected clock.

    ``guards`` run before every command (see :mod:`jianyi_flow.service.guards`); a campaign's
    phase rules and a permission table are guards.  ``policy`` and ``calendar`` decide
    due times.  ``ids`` makes new suggestion ids (uuid4 hex by default; a simulation
    passes a seeded one).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        campaign: str | None = None,
        policy: DeadlinePolicy | None = None,
        calendar: BusinessCalendar | None = None,
        guards: Sequence[Guard] = (),
        ids: Callable[[], str] | None = None,
        registration_number: Callable[[Suggestion, dt.datetime], str] = default_registration_number,
        known_areas: Iterable[str] | None = None,
        known_topics: Iterable[str] | None = None,
        known_units: Iterable[str] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.campaign = campaign
        self.policy = policy or DEFAULT_POLICY
        self.calendar = calendar or default_calendar()
        self.guards = tuple(guards)
        self._ids = ids or (lambda: uuid.uuid4().hex)
        self._registration_number = registration_number
        self.known_areas = None if known_areas is None else frozenset(known_areas)
        self.known_topics = None if known_topics is None else frozenset(known_topics)
        self.known_units = None if known_units is None else frozenset(known_units)
        self._due_cache: dict[tuple[Step, dt.date], dt.datetime] = {}
        self._actors_checked: dict[int, Actor] = {}  # id -> the (immutable) Actor already validated

    def due_for(self, step: Step, start: dt.datetime) -> dt.datetime:
        """When ``step`` started at ``start`` is due, by this flow's policy and calendar.

        A due time depends only on the step and the local start day, so it is cached.
        """
        key = (step, local_date(start))
        found = self._due_cache.get(key)
        if found is None:
            found = self._due_cache[key] = self.policy.due_for(step, start, self.calendar)
        return found

    # --- reading -------------------------------------------------------------------------
    def get(self, suggestion_id: str) -> Suggestion:
        """The current suggestion; :class:`~jianyi_flow.errors.NotFound` if unknown."""
        return self.store.load(suggestion_id)

    def history(self, suggestion_id: str) -> list[Event]:
        """The suggestion's events in order; the suggestion equals their replay."""
        return self.store.history(suggestion_id)

    def query(self, query: Query | None = None, **filters: Any) -> list[Suggestion]:
        """Suggestions matching a :class:`~jianyi_flow.storage.base.Query` (or its fields as keywords)."""
        return self.store.query(query or Query(**filters))

    def overdue(
        self,
        now: dt.datetime | None = None,
        *,
        unit: str | None = None,
        area: str | None = None,
        states: Iterable[State] | None = None,
        limit: int | None = None,
    ) -> list[Suggestion]:
        """Open suggestions whose current step is past its due time, most overdue first."""
        at = v.aware("now", self.clock.now() if now is None else now)
        return self.store.query(
            Query(states=_states(states), unit=unit, area=area, due_before=at, limit=limit,
                  campaign=self.campaign)
        )

    def due_soon(
        self,
        within: dt.timedelta,
        now: dt.datetime | None = None,
        *,
        unit: str | None = None,
        area: str | None = None,
        states: Iterable[State] | None = None,
        limit: int | None = None,
    ) -> list[Suggestion]:
        """Open suggestions not yet overdue but due within ``within`` of ``now``, soonest first."""
        at = v.aware("now", self.clock.now() if now is None else now)
        if within < dt.timedelta(0):
            raise ValidationError("within", "must not be negative")
        return self.store.query(
            Query(states=_states(states), unit=unit, area=area, due_after=at,
                  due_before=at + within, limit=limit, campaign=self.campaign)
        )

    def verify_history(self, suggestion_id: str) -> list[HistoryProblem]:
        """Problems found in one suggestion's stored history (empty when it is intact).

        Detects an edited event (its hash no longer matches), a deleted or reordered one (the
        ``prev_hash`` chain or the version sequence breaks), a row that differs from the
        replay of its history, and stored values the store cannot even read back (reported,
        not raised: one unreadable row must not stop an audit).
        """
        try:
            row = self.store.load(suggestion_id)
        except NotFound:
            raise
        except (JianyiFlowError, ValueError, TypeError, KeyError) as e:
            return [HistoryProblem(suggestion_id, 0, f"row cannot be read: {_first_line(e)}")]
        try:
            events = self.store.history(suggestion_id)
        except (JianyiFlowError, ValueError, TypeError, KeyError) as e:
            return [HistoryProblem(suggestion_id, row.version, f"history cannot be read: {_first_line(e)}")]
        return verify_events(suggestion_id, events, row)

    def verify_all(self, query: Query | None = None, page: int = 1000) -> list[HistoryProblem]:
        """:meth:`verify_history` for every suggestion (matching ``query``), read page by page.

        Stores that can list ids without decoding rows (``suggestion_ids(after_id, limit)``,
        as MemoryStore and SqlStore do) let one unreadable row be reported while every other
        suggestion is still checked.
        """
        list_ids = getattr(self.store, "suggestion_ids", None)
        if list_ids is None or query is not None:
            return [p for s in iter_suggestions(self.store, query, page) for p in self.verify_history(s.id)]
        problems: list[HistoryProblem] = []
        after: str | None = None
        while True:
            ids: list[str] = list_ids(after, page)
            for sid in ids:
                problems.extend(self.verify_history(sid))
            if len(ids) < page:
                return problems
            after = ids[-1]

    # --- commands ------------------------------------------------------------------------
    def receive(
        self,
        draft: SuggestionDraft,
        actor: Actor,
        *,
        suggestion_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Take in a new suggestion (state ``received``); registration is due per Art. 22."""
        if idempotency_key is not None:
            done = self._already_done(idempotency_key, "receive", suggestion_id)
            if done is not None:
                return done
        now = self._now()
        self._check_actor_once(actor)
        self._check_draft(draft)
        sid = suggestion_id if suggestion_id is not None else self._ids()
        v.code("suggestion_id", sid)
        if self.guards:
            self._guard(build_context(command="receive", actor=actor, now=now, suggestion=None, draft=draft, args={}))
        due = self.due_for(Step.REGISTER, now)
        changes: dict[str, Any] = {
            "campaign": self.campaign,
            "title": draft.title,
            "subject": draft.subject,
            "problem": draft.problem,
            "measures": draft.measures,
            "area": draft.area,
            "topic": draft.topic,
            "channel": draft.channel,
            "proposer": draft.proposer,
            "recommending_unit": draft.recommending_unit,
            "accused_units": tuple(draft.accused_units),
            "received_at": now,
            "due_step": Step.REGISTER.value,
            "due_at": due,
        }
        event = seal_new(
            build_event(
                suggestion_id=sid,
                version=1,
                kind="receive",
                from_state=None,
                to_state=State.RECEIVED,
                actor=actor,
                at=now,
                reason=None,
                changes=encode_changes(changes),
                payload={},
                prev_hash="",
                hash="",
            )
        )
        suggestion = build_suggestion(
            id=sid, state=State.RECEIVED, version=1, updated_at=now, event_hash=event.hash, **changes
        )
        notice = build_message(topic="receive", suggestion_id=sid, version=1, recipient=OFFICE, created_at=now,
                               payload={"state": State.RECEIVED.value}, id=None, attempts=0)
        return self._commit(suggestion, event, 0, idempotency_key, (notice,))

    def register(
        self,
        suggestion_id: str,
        actor: Actor,
        *,
        registration_number: str | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The collection office registers it (登记); routing stays due within the same 15 days."""

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            number = self._registration_number(s, now) if registration_number is None else registration_number
            v.required_text("registration_number", number, max_len=64)
            return {"registration_number": number}

        return self._execute("register", "register", suggestion_id, actor, changes, idempotency_key=idempotency_key,
                             notify=lambda s: [proposer_recipient(s.id)])[0]

    def not_accept(
        self, suggestion_id: str, actor: Actor, *, reason: str, idempotency_key: str | None = None
    ) -> Suggestion:
        """Not accepted at registration (不予受理), e.g. a personal complaint; needs a reason."""
        v.required_text("reason", reason, max_len=v.REASON_MAX)
        return self._execute("not_accept", "not_accept", suggestion_id, actor, _closing, reason=reason,
                             idempotency_key=idempotency_key, notify=lambda s: [proposer_recipient(s.id)])[0]

    def transfer(
        self,
        suggestion_id: str,
        actor: Actor,
        *,
        lead_unit: str,
        co_units: Sequence[str] = (),
        note: str | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Transfer to a lead handling unit (and co-handling units) (转送交办).

        Opens the lead unit's 5-working-day objection window (Art. 23) and its research deadline.
        """
        v.code("lead_unit", lead_unit, self.known_units)
        co = v.codes("co_units", co_units, self.known_units)
        if lead_unit in co:
            raise ValidationError("co_units", "must not repeat the lead unit")
        v.text("note", note, max_len=v.REASON_MAX, required=False)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            accused = sorted({lead_unit, *co} & set(s.accused_units))
            if accused:
                field = "lead_unit" if lead_unit in accused else "co_units"
                raise ValidationError(
                    field, f"{', '.join(accused)} is accused in this suggestion and may not handle it "
                           "(信访工作条例 Art. 30)"
                )
            return {
                "lead_unit": lead_unit,
                "co_units": co,
                "transferred_at": now,
                "due_step": Step.RESEARCH.value,
                "due_at": self.due_for(Step.RESEARCH, now),
                "objection_due_at": self.due_for(Step.OBJECT_TRANSFER, now),
                "extended": False,
            }

        return self._execute("transfer", "transfer", suggestion_id, actor, changes, reason=note,
                             args={"lead_unit": lead_unit, "co_units": co}, idempotency_key=idempotency_key,
                             notify=lambda s: [unit_recipient(u) for u in (lead_unit, *co)])[0]

    def return_transfer(
        self, suggestion_id: str, actor: Actor, *, reason: str, idempotency_key: str | None = None
    ) -> Suggestion:
        """The lead unit sends a misrouted transfer back (退回), within its objection window.

        The office must route it again; that is due like a fresh routing (15 days).
        """
        v.required_text("reason", reason, max_len=v.REASON_MAX)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if s.objection_due_at is None:
                raise ValidationError(
                    "objection_due_at",
                    "only a fresh transfer can be returned as misrouted; this one was reopened for the same unit",
                )
            if now > s.objection_due_at:
                raise ValidationError(
                    "objection_due_at",
                    f"the objection window closed at {s.objection_due_at.isoformat()} "
                    "(5 working days, 信访工作条例 Art. 23)",
                )
            return {
                "lead_unit": None,
                "co_units": (),
                "objection_due_at": None,
                "return_count": s.return_count + 1,
                "due_step": Step.REGISTER.value,
                "due_at": self.due_for(Step.REGISTER, now),
                "extended": False,
            }

        return self._execute("return_transfer", "return_transfer", suggestion_id, actor, changes, reason=reason,
                             idempotency_key=idempotency_key, notify=lambda s: [OFFICE])[0]

    def research(
        self, suggestion_id: str, actor: Actor, *, findings: str, idempotency_key: str | None = None
    ) -> Suggestion:
        """The lead unit records its research and discussion (调研论证); the decision stays due."""
        v.required_text("findings", findings, max_len=v.BODY_MAX)
        return self._execute("research", "research", suggestion_id, actor,
                             lambda s, now: {"research_notes": findings, "objection_due_at": None},
                             idempotency_key=idempotency_key)[0]

    def decide(
        self,
        suggestion_id: str,
        actor: Actor,
        *,
        outcome: Outcome,
        reason: str | None = None,
        adopted_part: str | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Adopt, partially adopt (say which part) or decline (say why); the reply becomes due."""
        outcome = _enum(Outcome, outcome, "outcome")
        v.text("reason", reason, max_len=v.REASON_MAX, required=outcome is Outcome.DECLINED)
        v.text("adopted_part", adopted_part, max_len=v.REASON_MAX,
               required=outcome is Outcome.PARTIALLY_ADOPTED)
        if outcome is not Outcome.PARTIALLY_ADOPTED and adopted_part is not None:
            raise ValidationError("adopted_part", "only a partial adoption names an adopted part")

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {
                "outcome": outcome,
                "outcome_reason": reason,
                "adopted_part": adopted_part,
                "due_step": Step.REPLY.value,
                "due_at": self.due_for(Step.REPLY, now),
                "extended": False,
            }

        return self._execute("decide", _DECIDE[outcome], suggestion_id, actor, changes, reason=reason,
                             args={"outcome": outcome}, idempotency_key=idempotency_key)[0]

    def reply(self, suggestion_id: str, actor: Actor, *, text: str, idempotency_key: str | None = None) -> Suggestion:
        """Reply to the proposer (答复); the proposer's rating window opens."""
        v.required_text("text", text, max_len=v.REPLY_MAX)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {
                "reply": text,
                "replied_at": now,
                "due_step": Step.RATE.value,
                "due_at": self.due_for(Step.RATE, now),
                "extended": False,
            }

        return self._execute("reply", "reply", suggestion_id, actor, changes, idempotency_key=idempotency_key,
                             notify=lambda s: [proposer_recipient(s.id)])[0]

    def rate(
        self,
        suggestion_id: str,
        actor: Actor,
        *,
        rating: Rating,
        comment: str | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The proposer rates the reply (评价).  'dissatisfied' allows one :meth:`reopen`."""
        rating = _enum(Rating, rating, "rating")
        v.text("comment", comment, max_len=v.REASON_MAX, required=False)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"rating": rating, "rating_comment": comment, **_closing(s, now)}

        notify = (lambda s: [unit_recipient(s.lead_unit)] if s.lead_unit else [OFFICE]) \
            if rating is Rating.DISSATISFIED else None
        return self._execute("rate", "rate", suggestion_id, actor, changes, args={"rating": rating},
                             idempotency_key=idempotency_key, notify=notify)[0]

    def withdraw(
        self, suggestion_id: str, actor: Actor, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Suggestion:
        """The proposer withdraws the suggestion before a decision (撤回)."""
        v.text("reason", reason, max_len=v.REASON_MAX, required=False)
        return self._execute("withdraw", "withdraw", suggestion_id, actor, _closing, reason=reason,
                             idempotency_key=idempotency_key,
                             notify=lambda s: [unit_recipient(s.lead_unit)] if s.lead_unit else [OFFICE])[0]

    def reopen(
        self, suggestion_id: str, actor: Actor, *, reason: str, idempotency_key: str | None = None
    ) -> Suggestion:
        """After a 'dissatisfied' rating, hand the suggestion back to its lead unit once (重新办理)."""
        v.required_text("reason", reason, max_len=v.REASON_MAX)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if s.rating is not Rating.DISSATISFIED or s.reopen_count >= 1:
                raise InvalidTransition(
                    "reopen", s.state.value, detail="only once, and only after a 'dissatisfied' rating"
                )
            return {
                "reopen_count": s.reopen_count + 1,
                "rating": None,
                "rating_comment": None,
                "outcome": None,
                "outcome_reason": None,
                "adopted_part": None,
                "reply": None,
                "replied_at": None,
                "closed_at": None,
                "due_step": Step.RESEARCH.value,
                "due_at": self.due_for(Step.RESEARCH, now),
                "extended": False,
            }

        return self._execute("reopen", "reopen", suggestion_id, actor, changes, reason=reason,
                             idempotency_key=idempotency_key,
                             notify=lambda s: [unit_recipient(s.lead_unit)] if s.lead_unit else [OFFICE])[0]

    def extend(
        self,
        suggestion_id: str,
        actor: Actor,
        *,
        days: int,
        approver: str,
        reason: str,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Extend the current deadline once per step, by at most 30 days, with an approver (延期)."""
        v.required_text("approver", approver, max_len=v.NAME_MAX)
        v.required_text("reason", reason, max_len=v.REASON_MAX)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXTENSION.n:
            raise ValidationError("days", f"must be a whole number of days from 1 to {MAX_EXTENSION.n}")

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if s.extended:
                raise InvalidTransition("extend", s.state.value, detail="this step was already extended once")
            if s.due_at is None:
                raise InvalidTransition("extend", s.state.value, detail="nothing is due")
            return {"due_at": extend_due(s.due_at, CalendarDays(days), self.calendar), "extended": True}

        return self._execute("extend", "extend", suggestion_id, actor, changes, reason=reason,
                             payload={"days": days, "approver": approver}, idempotency_key=idempotency_key)[0]

    # --- summary phase (总结运用阶段) ------------------------------------------------------
    def report_upward(
        self, suggestion_id: str, actor: Actor, *, form: ReportForm, note: str | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Report to the party committee and government as original, excerpt or analysis (呈报)."""
        form = _enum(ReportForm, form, "form")
        v.text("note", note, max_len=v.REASON_MAX, required=False)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if form in s.upward_reports:
                raise ValidationError("form", f"already reported upward as {form.value!r}")
            return {"upward_reports": (*s.upward_reports, form)}

        return self._execute("report_upward", "report_upward", suggestion_id, actor, changes, reason=note,
                             payload={"form": form.value}, idempotency_key=idempotency_key,
                             notify=lambda s: [LEADERSHIP])[0]

    def forward_to_city(
        self, suggestion_id: str, actor: Actor, *, note: str | None = None, idempotency_key: str | None = None
    ) -> Suggestion:
        """Forward to the municipal office (呈送市信访办); once."""
        v.text("note", note, max_len=v.REASON_MAX, required=False)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if s.forwarded_to_city_at is not None:
                raise ValidationError("forward_to_city", "already forwarded to the municipal office")
            return {"forwarded_to_city_at": now}

        return self._execute("forward_to_city", "forward_to_city", suggestion_id, actor, changes, reason=note,
                             idempotency_key=idempotency_key, notify=lambda s: [MUNICIPAL_OFFICE])[0]

    def evaluate(
        self, suggestion_id: str, actor: Actor, *, quality: int, value: int, effect: int, evaluator: str,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Score quality, value and effect (质量、价值、效果), each 0–10, by a named evaluator.

        A later evaluation replaces an earlier one; both stay in the history.
        """
        for name, score in (("quality", quality), ("value", value), ("effect", effect)):
            if not isinstance(score, int) or isinstance(score, bool) or not SCORE_MIN <= score <= SCORE_MAX:
                raise ValidationError(name, f"must be a whole number from {SCORE_MIN} to {SCORE_MAX}")
        v.required_text("evaluator", evaluator, max_len=v.NAME_MAX)
        evaluation = Evaluation(quality, value, effect, evaluator)
        return self._execute("evaluate", "evaluate", suggestion_id, actor, lambda s, now: {"evaluation": evaluation},
                             args={"evaluator": evaluator}, idempotency_key=idempotency_key)[0]

    def nominate_reward(
        self, suggestion_id: str, actor: Actor, *, tier: RewardTier, idempotency_key: str | None = None
    ) -> Suggestion:
        """Place an evaluated suggestion among reward candidates with a tier (特等…鼓励)."""
        tier = _enum(RewardTier, tier, "tier")

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if s.evaluation is None:
                raise ValidationError("tier", "a suggestion is evaluated before it is nominated for a reward")
            return {"reward_tier": tier}

        return self._execute("nominate_reward", "nominate_reward", suggestion_id, actor, changes,
                             payload={"tier": tier.value}, idempotency_key=idempotency_key)[0]

    def record_adoption(
        self, suggestion_id: str, actor: Actor, *, adopted_into: str, idempotency_key: str | None = None
    ) -> Suggestion:
        """Record the measure or document an adopted suggestion became (吸纳转化运用)."""
        v.required_text("adopted_into", adopted_into, max_len=v.REASON_MAX)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if s.outcome not in (Outcome.ADOPTED, Outcome.PARTIALLY_ADOPTED):
                raise ValidationError("adopted_into", "only an adopted or partially adopted suggestion is turned "
                                                      "into a measure")
            return {"adopted_into": adopted_into}

        return self._execute("record_adoption", "record_adoption", suggestion_id, actor, changes,
                             idempotency_key=idempotency_key)[0]

    def mark_typical(
        self, suggestion_id: str, actor: Actor, *, note: str | None = None, idempotency_key: str | None = None
    ) -> Suggestion:
        """Mark as a typical case (典型案例) for publicity and the summary report."""
        v.text("note", note, max_len=v.REASON_MAX, required=False)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if s.typical_case:
                raise ValidationError("typical_case", "already marked as a typical case")
            return {"typical_case": True}

        return self._execute("mark_typical", "mark_typical", suggestion_id, actor, changes, reason=note,
                             idempotency_key=idempotency_key)[0]

    # --- time-driven work ----------------------------------------------------------------
    def tick(self, now: dt.datetime | None = None, *, batch: int = 500) -> list[Event]:
        """Do what is due by ``now``; running it twice changes nothing the second time.

        - a reply whose rating window closed unrated becomes ``unrated`` (not 'satisfied');
        - any other open step past its due time gets one ``flag_overdue`` event per due time
          (which notifies the responsible unit through the outbox).
        Returns the events written.
        """
        at = v.aware("now", self.clock.now() if now is None else now)
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValidationError("batch", "must be a whole number, at least 1")
        written: list[Event] = []
        after: dt.datetime | None = None
        seen: set[str] = set()
        limit = batch
        while True:
            rows = self.store.query(
                Query(states=OPEN_STATES, due_before=at, due_after=after, limit=limit, campaign=self.campaign,
                      overdue_unflagged=True)
            )
            fresh = [row for row in rows if row.id not in seen]
            for row in fresh:
                seen.add(row.id)
                event = self._tick_one(row, at)
                if event is not None:
                    written.append(event)
            if len(rows) < limit:
                return written
            if fresh:
                last = rows[-1].due_at
                assert last is not None
                after = last
            else:
                limit *= 2  # a run of equal due times longer than a page: widen the page

    def _tick_one(self, row: Suggestion, at: dt.datetime) -> Event | None:
        """What ``tick`` does to one row that is past due; ``None`` if nothing (already done)."""
        try:
            if row.state is State.REPLIED and row.due_step == Step.RATE.value:
                _, event = self._execute("close_unrated", "close_unrated", row.id, SYSTEM_ACTOR, _closing,
                                         at=at, expected=row)
            elif not flagged_for_due(row):
                _, event = self._execute(
                    "flag_overdue", "flag_overdue", row.id, SYSTEM_ACTOR,
                    lambda s, now: {"overdue_flagged_at": s.due_at},
                    at=at, expected=row, payload={"due_step": row.due_step},
                    notify=_responsible,
                )
            else:
                return None
        except ConcurrencyConflict:
            return None  # someone acted on it meanwhile: the next tick looks again
        return event

    # --- machinery -----------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        return v.aware("clock.now()", self.clock.now())

    def _check_draft(self, draft: SuggestionDraft) -> None:
        if not isinstance(draft, SuggestionDraft):
            raise ValidationError("draft", "must be a SuggestionDraft")
        v.required_text("title", draft.title, max_len=v.TITLE_MAX)
        v.required_text("subject", draft.subject, max_len=v.SUBJECT_MAX)
        v.required_text("problem", draft.problem, max_len=v.BODY_MAX)
        v.required_text("measures", draft.measures, max_len=v.BODY_MAX)
        v.code("area", draft.area, self.known_areas)
        v.code("topic", draft.topic, self.known_topics, required=False)
        v.code("recommending_unit", draft.recommending_unit, self.known_units, required=False)
        v.codes("accused_units", draft.accused_units, self.known_units)
        v.member("channel", Channel, draft.channel)
        p = draft.proposer
        if not isinstance(p, Proposer):
            raise ValidationError("proposer", "must be a Proposer")
        v.member("proposer.kind", ProposerKind, p.kind)
        v.flag("proposer.confidential", p.confidential)
        v.required_text("proposer.name", p.name, max_len=v.NAME_MAX)
        v.phone("proposer.phone", p.phone)
        v.text("proposer.address", p.address, max_len=v.ADDRESS_MAX, required=False)
        v.text("proposer.account", p.account, max_len=v.NAME_MAX, required=False)

    def _check_actor_once(self, actor: Actor) -> None:
        """:meth:`_check_actor`, skipped for the very object already checked (callers reuse actors).

        An ``Actor`` is frozen, and the memo holds a reference to each object it knows, so
        an ``id`` in it cannot be reused by another object.  Bounded: it starts afresh past
        1,024 actors.
        """
        checked = self._actors_checked
        if checked.get(id(actor)) is actor:
            return
        self._check_actor(actor)
        if len(checked) >= 1024:
            checked.clear()
        checked[id(actor)] = actor

    @staticmethod
    def _check_actor(actor: Actor) -> None:
        """The actor is written into every event and hashed: it is validated like any input."""
        if not isinstance(actor, Actor):
            raise ValidationError("actor", "must be an Actor")
        v.member("actor.role", Role, actor.role)
        v.required_text("actor.id", actor.id, max_len=v.NAME_MAX)
        v.code("actor.unit", actor.unit, required=False)
        v.text("actor.name", actor.name, max_len=v.NAME_MAX, required=False)

    def _guard(self, ctx: CommandContext) -> None:
        for guard in self.guards:
            guard.check(ctx)

    def _already_done(self, key: str, command: str, suggestion_id: str | None) -> Suggestion | None:
        v.required_text("idempotency_key", key, max_len=128)
        record = self.store.idempotency(key)
        if record is None:
            return None
        if record.command != command or (suggestion_id is not None and record.suggestion_id != suggestion_id):
            raise IdempotencyKeyReused(key, f"{record.command} on suggestion {record.suggestion_id}")
        events = [e for e in self.store.history(record.suggestion_id) if e.version <= record.version]
        result = replay(events)
        assert result is not None
        return result

    def _execute(
        self,
        command: str,
        trigger: str,
        suggestion_id: str,
        actor: Actor,
        changes: Callable[[Suggestion, dt.datetime], Mapping[str, Any]],
        *,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
        args: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        notify: Callable[[Suggestion], list[str]] | None = None,
        at: dt.datetime | None = None,
        expected: Suggestion | None = None,
    ) -> tuple[Suggestion, Event | None]:
        if idempotency_key is not None:
            done = self._already_done(idempotency_key, command, suggestion_id)
            if done is not None:
                return done, None
        now = at or self._now()
        if actor is not SYSTEM_ACTOR:
            self._check_actor_once(actor)
        current = self.store.load(suggestion_id)
        if expected is not None and current.version != expected.version:
            raise ConcurrencyConflict(suggestion_id, expected.version, current.version)
        if self.guards:
            self._guard(build_context(command=command, actor=actor, now=now, suggestion=current, draft=None,
                                      args=args or {}))
        try:
            to_state = fire(trigger, current.state, command)
        except InvalidTransition:
            if idempotency_key is not None:
                # a concurrent retry under the same key may have moved it on since we checked
                done = self._already_done(idempotency_key, command, suggestion_id)
                if done is not None:
                    return done, None
            raise
        changed = dict(changes(current, now))
        version = current.version + 1
        event = seal_new(
            build_event(
                suggestion_id=suggestion_id,
                version=version,
                kind=command,
                from_state=current.state,
                to_state=to_state,
                actor=actor,
                at=now,
                reason=reason,
                changes=encode_changes(changed),
                payload=payload or {},
                prev_hash=current.event_hash,
                hash="",
            )
        )
        changed.update(state=to_state, version=version, updated_at=now, event_hash=event.hash)
        new = replace(current, changed)
        messages: tuple[OutboxMessage, ...] = ()
        if notify is not None:
            messages = tuple(
                build_message(topic=command, suggestion_id=suggestion_id, version=version, recipient=r,
                              created_at=now, payload={"state": to_state._value_}, id=None, attempts=0)
                for r in notify(new)
            )
        result = self._commit(new, event, current.version, idempotency_key, messages)
        return result, (event if result is new else None)

    def _commit(
        self,
        new: Suggestion,
        event: Event,
        expected_version: int,
        idempotency_key: str | None,
        messages: tuple[OutboxMessage, ...],
    ) -> Suggestion:
        try:
            self.store.commit(build_change(suggestion=new, event=event, expected_version=expected_version,
                                           messages=messages, idempotency_key=idempotency_key))
        except (ConcurrencyConflict, IdempotencyKeyReused):
            if idempotency_key is not None:
                # a concurrent retry of the same command may have won: give its result
                done = self._already_done(idempotency_key, event.kind, new.id)
                if done is not None:
                    return done
            raise
        return new


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _states(states: Iterable[State] | None) -> frozenset[State]:
    return OPEN_STATES if states is None else frozenset(states)


def _closing(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
    """Fields set when a suggestion leaves the open states: nothing is due any more."""
    return {"due_step": None, "due_at": None, "objection_due_at": None, "closed_at": now}


def _responsible(s: Suggestion) -> list[str]:
    """Who hears of an overdue step: the lead unit while it holds the suggestion, else the office."""
    if s.lead_unit and s.state in (State.TRANSFERRED, State.RESEARCHED, State.ADOPTED, State.PARTIALLY_ADOPTED,
                                   State.DECLINED):
        return [unit_recipient(s.lead_unit)]
    return [OFFICE]

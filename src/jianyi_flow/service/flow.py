"""``Flow``: the service portals call.  One method per command, and the reads a portal needs.

Each command loads the suggestion, checks that the actor may see it, runs the guards
(campaign phases, then the permission table), asks the workflow where the command leads,
checks its arguments (every problem at once) and the command's own rule on the
suggestion, computes the new due time, and commits the new row together with exactly one
event (and any outbox messages) through the store.  It returns the new suggestion as the
actor may see it.  If anything fails, nothing is written.

Data flows one way: portal → ``Flow`` → workflow (``transitions``) → ``Store``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..domain import validation as v
from ..domain.calendar import BusinessCalendar, CalendarHealth, calendar_health, default_calendar
from ..domain.clock import Clock, local_date, require_aware, to_utc
from ..domain.codec import changed_fields, encode_changes, encode_datetime, replace, replay
from ..domain.deadlines import DEFAULT_POLICY, CalendarDays, DeadlinePolicy, Due, Step, extend_detail
from ..domain.history import HistoryProblem, event_hash, sealed_event, verify_events
from ..domain.model import (
    SCORE_MAX,
    SCORE_MIN,
    SYSTEM_ACTOR,
    Actor,
    AdoptionForm,
    Evaluation,
    Event,
    ExtensionRequest,
    Outcome,
    Proposer,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Suggestion,
    SuggestionDraft,
)
from ..domain.personal import (
    ERASE,
    ERASED,
    ERASURE_LABELS,
    PERSONAL_DATA_KINDS,
    PSEUDONYMISED,
    VAULT,
    PersonalRecord,
    digest_of,
)
from ..domain.validation import check_draft
from ..domain.workflow import DECIDE_TRIGGERS, HANDLED_STATES, MIGRATE, OPEN_STATES, WORKFLOW, Workflow
from ..errors import (
    ClockWentBackwards,
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    InvalidTransition,
    JianyiFlowError,
    MigrationMissing,
    NotFound,
    PermissionDenied,
    Problem,
    ValidationError,
)
from ..storage.base import (
    Change,
    HistoryScanner,
    IdempotencyRecord,
    Order,
    OutboxMessage,
    PersonalDataVault,
    Query,
    Store,
    TransactingStore,
    flagged_for_due,
    iter_suggestions,
)
from .audit import Anchor, Checkpoint, verify_store
from .commands import ARGUMENTS, Argument, precondition, recipients
from .guards import CommandContext, Guard
from .permissions import AllowAll, PermissionGuard, PermissionTable, accused_targets, accused_unit_error
from .visibility import MASKED_ACTOR_ID, history_for

__all__ = [
    "LEADERSHIP",
    "MUNICIPAL_OFFICE",
    "OFFICE",
    "OPEN_STATES",
    "Availability",
    "AvailableCommand",
    "ErasureResult",
    "Flow",
    "FlowCalendarHealth",
    "Page",
    "Relation",
    "RetimeResult",
    "UnavailableCommand",
    "proposer_recipient",
    "unit_recipient",
]

OFFICE = "office"
"""Outbox recipient meaning the collection office (区征集办)."""
LEADERSHIP = "leadership"
"""Outbox recipient meaning the party committee and government (党委政府)."""
MUNICIPAL_OFFICE = "municipal_office"
"""Outbox recipient meaning the municipal office (市信访办)."""

_KEY_MAX = 128


def proposer_recipient(suggestion_id: str) -> str:
    return f"proposer:{suggestion_id}"


def unit_recipient(unit: str) -> str:
    return f"unit:{unit}"


def default_registration_number(s: Suggestion, at: dt.datetime) -> str:
    """``<campaign>-<yyyymmdd>-<id>``: unique because ids are, readable by date."""
    return f"{s.campaign or 'JY'}-{local_date(at).isoformat().replace('-', '')}-{s.id}"


class Relation(enum.StrEnum):
    """How a listed suggestion relates to a unit actor (see :meth:`Flow.list_suggestions`)."""

    LEAD = "lead"
    """Its lead handling unit is the actor's unit (主办)."""
    CO_HANDLING = "co_handling"
    """The actor's unit is one of its co-handling units (协办)."""
    RECOMMENDING = "recommending"
    """The actor's unit recommended it (推荐)."""



@attrs.frozen
class Page:
    """One page of :meth:`Flow.list_suggestions`: rows as the actor may see them, the total, the next cursor."""

    items: tuple[Suggestion, ...]
    total: int | None
    """How many rows match the filters (``None`` when not asked for)."""
    next_cursor: str | None
    """Pass it as ``cursor`` for the next page; ``None`` on the last page."""


@attrs.frozen
class AvailableCommand:
    """A command the actor may run now, and the arguments it needs."""

    command: str
    arguments: tuple[Argument, ...]


@attrs.frozen
class UnavailableCommand:
    """A command the actor's role may run in general but not now, and why (the error it would raise)."""

    command: str
    error: JianyiFlowError

    @property
    def code(self) -> str:
        return _error_code(self.error)

    @property
    def message(self) -> str:
        return str(self.error)


@attrs.frozen
class Availability:
    """What :meth:`Flow.available_commands` answers."""

    available: tuple[AvailableCommand, ...]
    unavailable: tuple[UnavailableCommand, ...]

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(c.command for c in self.available)


@attrs.frozen
class ErasureResult:
    """What :meth:`Flow.erase_expired` did: the erase events written, the suggestions it could not erase."""

    events: tuple[Event, ...]
    skipped: tuple[str, ...]


PROPOSER_PSEUDONYM = MASKED_ACTOR_ID
"""The id (``"***"``, the token masked views show) an event records for an actor acting as the
proposer of a vaulted suggestion: their portal account is personal data and lives in the vault
(the actor's own identity still scopes their idempotency keys, which are not part of the history)."""

_PSEUDONYMOUS_PROPOSER = Actor(id=PROPOSER_PSEUDONYM, role=Role.PROPOSER)
"""That actor (immutable, so every event that records it shares this one)."""
_PSEUDONYMOUS_REF = _PSEUDONYMOUS_PROPOSER.ref

_CLOSED_STATES = frozenset({State.RATED, State.UNRATED, State.NOT_ACCEPTED, State.WITHDRAWN})


@attrs.frozen
class RetimeResult:
    """What :meth:`Flow.retime` did: the ``retime`` events written, the suggestions left as they were."""

    events: tuple[Event, ...]
    skipped: tuple[str, ...]


@attrs.frozen
class FlowCalendarHealth:
    """The calendar's health (:func:`~jianyi_flow.domain.calendar.calendar_health`) and the open
    deadlines counted over provisional days: how many, and the earliest."""

    calendar: CalendarHealth
    provisional_deadlines: int
    earliest_provisional_due: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.calendar.to_dict(), "provisional_deadlines": self.provisional_deadlines,
                "earliest_provisional_due": None if self.earliest_provisional_due is None
                else encode_datetime(self.earliest_provisional_due)}


def _error_code(error: JianyiFlowError) -> str:
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else type(error).__name__


def _jsonable(value: Any) -> Any:
    """Arguments as JSON-ready data for a request fingerprint (before they are validated: never raises)."""
    if value is None or type(value) in (str, int, float, bool):  # the common case first, for speed
        return value
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, dt.datetime):
        return value.isoformat()  # as given: converting could overflow before validation refuses it
    if type(value) is dict:  # the arguments themselves: before the slower checks below, for speed
        return {str(k): _jsonable(x) for k, x in value.items()}
    if attrs.has(type(value)):
        # a field added later counts only when set: a request sent before it existed keeps its fingerprint
        return {f.name: _jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))
                if not (f.metadata.get("added_later") and getattr(value, f.name) == f.default)}
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(x) for x in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(x) for x in value), key=repr)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(x) for k, x in value.items()}
    return repr(value)


_FINGERPRINT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
"""What ``json.dumps`` with these settings builds on every call, built once."""


def fingerprint(command: str, suggestion_id: str | None, args: Mapping[str, Any]) -> str:
    """A digest of a request: the same key with a different request is refused."""
    text = _FINGERPRINT_JSON.encode([command, suggestion_id, _jsonable(args)])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _closing(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
    """Fields set when a suggestion leaves the open states: nothing is due any more."""
    return {"due_step": None, "due_at": None, "due_from": None, "due_provisional": False, "objection_due_at": None,
            "closed_at": now, "extension_request": None}






Changes = Callable[[Suggestion, dt.datetime], Mapping[str, Any]]


class Flow:
    """Runs commands on suggestions against a store, with time from an injected clock.

    ``permissions`` is the permission table every command is checked against: the default
    table (:meth:`PermissionTable.default`, documented in docs/security.md) unless a table
    is given.  Only ``permissions=ALLOW_ALL`` turns the check off — for trusted jobs such as
    an import or a migration, never for a portal.  ``guards`` run before the permission
    check (a campaign's :class:`~jianyi_flow.service.campaign_flow.PhaseGuard`, your own).
    ``policy`` and ``calendar`` decide due times.  ``ids`` makes new suggestion ids (uuid4
    hex by default; a simulation passes a seeded one).  ``anchor`` (a key kept outside the
    database, and a checkpoint log) seals every event with a keyed MAC (docs/security.md).
    Each new proposer's name, phone, address and account go into the store's personal-data
    vault instead of the history, so that they can be erased (:meth:`erase_personal_data`):
    on by default, and required of the store (a :class:`ValidationError` ``no_vault``
    otherwise); only ``vault=False`` keeps them in the hashed history — for a store without
    a vault whose owner accepts that.  ``salts`` makes the random salt of each vault record (hex;
    16 random bytes by default; a simulation passes a seeded one).  See
    :mod:`jianyi_flow.domain.personal` and docs/security.md, "Personal data".
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        campaign: str | None = None,
        policy: DeadlinePolicy | None = None,
        calendar: BusinessCalendar | None = None,
        permissions: PermissionTable | AllowAll | None = None,
        guards: Sequence[Guard] = (),
        ids: Callable[[], str] | None = None,
        registration_number: Callable[[Suggestion, dt.datetime], str] = default_registration_number,
        known_areas: Iterable[str] | None = None,
        known_topics: Iterable[str] | None = None,
        known_units: Iterable[str] | None = None,
        anchor: Anchor | None = None,
        workflow: Workflow = WORKFLOW,
        previous_workflows: Sequence[Workflow] = (),
        vault: bool | None = None,
        salts: Callable[[], str] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        # the store's transaction(work), if it has one: decided once, not per command
        self._transaction: Callable[[Callable[[], tuple[Suggestion, Event]]], tuple[Suggestion, Event]] | None = (
            store.transaction if isinstance(store, TransactingStore) else None)
        self.campaign = campaign
        self.policy = policy or DEFAULT_POLICY
        self.calendar = calendar or default_calendar()
        self._dues: tuple[DeadlinePolicy | None, BusinessCalendar | None, dict[tuple[Step, dt.date], Due]] = (
            None, None, {})
        if permissions is None:
            permissions = PermissionTable.default()
        if not isinstance(permissions, (PermissionTable, AllowAll)):
            raise ValidationError("permissions", "must be a PermissionTable, or ALLOW_ALL for a trusted job")
        self.permissions = permissions
        self._permission_guard = None if isinstance(permissions, AllowAll) else PermissionGuard(permissions, store)
        self.guards = tuple(guards)
        self._ids = ids or (lambda: uuid.uuid4().hex)
        self._registration_number = registration_number
        self.known_areas = None if known_areas is None else frozenset(known_areas)
        self.known_topics = None if known_topics is None else frozenset(known_topics)
        self.known_units = None if known_units is None else frozenset(known_units)
        if anchor is not None and not isinstance(anchor, Anchor):
            raise ValidationError("anchor", "must be an Anchor")
        self.anchor = anchor
        if not isinstance(workflow, Workflow) or not all(isinstance(w, Workflow) for w in previous_workflows):
            raise ValidationError("workflow", "must be a Workflow", code="wrong_type")
        self.workflow = workflow
        self.workflows: Mapping[str | None, Workflow] = {
            **{w.version: w for w in previous_workflows}, workflow.version: workflow,
        }
        """Every workflow definition this flow knows, by version."""
        self.policy_version = self.policy.version
        if vault is not None and not isinstance(vault, bool):
            raise ValidationError("vault", "must be true or false", code="wrong_type")
        if vault is not False and not isinstance(store, PersonalDataVault):
            raise ValidationError(
                "vault", "this store keeps no personal-data vault (PersonalDataVault), so proposers' personal "
                "data would go into the hashed history, where it cannot be erased; use a store with a vault, "
                "or pass vault=False to accept that", code="no_vault")
        self.vaulted = vault is not False
        """Whether :meth:`receive` keeps proposers' personal data in the store's vault, out of the history."""
        self._salts = salts or (lambda: secrets.token_hex(16))
        self._check_states()

    def _check_states(self) -> None:
        """Refuse a store holding suggestions in a state this workflow lacks and no migration covers."""
        gone = [s for s in State if s not in self.workflow.states and s not in self.workflow.migrations]
        if not gone:
            return
        stuck = self.store.query(Query(states=gone, limit=1))
        if stuck:
            raise MigrationMissing("state", stuck[0].state.value, suggestion_id=stuck[0].id)

    # --- deadlines -----------------------------------------------------------------------
    def due_for(self, step: Step, start: dt.datetime) -> dt.datetime:
        """When ``step`` started at ``start`` is due, by this flow's policy and calendar."""
        return self._due(step, start).at if isinstance(step, Step) else self.policy.due_for(step, start, self.calendar)

    def _due(self, step: Step, start: dt.datetime) -> Due:
        """``policy.due_detail(step, start, calendar)``, remembered per step and start day.

        Done for speed: the deadline depends on the start's day alone, which most commands share; the
        memory is dropped when the flow's policy or calendar is replaced (e.g. by :meth:`retime`).
        """
        policy, calendar = self.policy, self.calendar
        counted_by, counted_on, dues = self._dues  # one read: the memory and what it was counted by go together
        if counted_by is not policy or counted_on is not calendar:
            dues = {}
            self._dues = (policy, calendar, dues)
        key = (step, local_date(require_aware(start, "start")))
        due = dues.get(key)
        if due is None:
            due = dues[key] = policy.due_detail(step, start, calendar)
        return due

    def _deadline(self, step: Step, start: dt.datetime) -> dict[str, Any]:
        """The fields that set ``step``'s deadline, counted from ``start`` (provisional if any day it spans is)."""
        due = self._due(step, start)
        return {"due_step": step, "due_at": due.at, "due_from": start, "due_provisional": due.provisional,
                "extended": False, "extension_days": None, "extension_request": None, "policy": self.policy_version}

    def calendar_health(self, now: dt.datetime | None = None, *, lookahead_days: int = 90) -> FlowCalendarHealth:
        """How many days of official holiday schedule remain, and which open deadlines are provisional.

        A portal shows it on an admin page and warns well before December, when the next
        year's deadlines start to be counted over provisional days (docs/calendar.md).
        """
        at = v.aware("now", self._now() if now is None else now)
        health = calendar_health(self.calendar, at, lookahead_days=lookahead_days)
        query = Query(states=OPEN_STATES, campaign=self.campaign, provisional=True, order=Order.DUE, limit=1)
        first = self.store.query(query)
        return FlowCalendarHealth(health, self.store.count(query.unpaged()),
                                  None if not first else first[0].due_at)

    def retime(self, reason: str, *, calendar: BusinessCalendar | None = None, now: dt.datetime | None = None,
               batch: int = 500) -> RetimeResult:
        """Re-count every open deadline that was counted over provisional days, on ``calendar``.

        Call it when the official schedule of a year arrives (``calendar`` is then e.g.
        ``flow.calendar.with_overrides(CalendarOverrides.from_file(...))`` or a calendar built
        on a newer chinese-calendar); the flow keeps ``calendar`` afterwards.  Every re-counted
        suggestion gets a ``retime`` event by the system actor with ``reason``, the old and new
        due times and whether the suggestion became overdue by it — nothing moves silently.
        A deadline set under another deadline policy than this flow's is left as it is and
        listed in :attr:`RetimeResult.skipped` (its period cannot be re-counted faithfully).
        """
        v.required_text("reason", reason, max_len=v.REASON_MAX)
        at = v.aware("now", self._now() if now is None else now)
        batch = v.whole_number("batch", batch, low=1, high=100_000)
        if calendar is not None:
            if not isinstance(calendar, BusinessCalendar):
                raise ValidationError("calendar", "must be a business calendar", code="wrong_type")
            self.calendar = calendar
        events: list[Event] = []
        skipped: list[str] = []
        query = Query(states=OPEN_STATES, campaign=self.campaign, provisional=True, order=Order.ID, limit=batch)
        while True:
            rows = self.store.query(query)
            for row in rows:
                if (row.policy is not None and row.policy != self.policy_version) or row.due_from is None:
                    skipped.append(row.id)
                    continue
                try:
                    event = self._retime_one(row, reason, at)
                except (ConcurrencyConflict, ClockWentBackwards):
                    skipped.append(row.id)
                    continue
                if event is not None:
                    events.append(event)
            if len(rows) < batch:
                return RetimeResult(tuple(events), tuple(skipped))
            query = attrs.evolve(query, after=query.cursor_of(rows[-1]))

    def _retime_one(self, row: Suggestion, reason: str, at: dt.datetime) -> Event | None:
        assert row.due_step is not None and row.due_from is not None
        due = self.policy.due_detail(row.due_step, row.due_from, self.calendar)
        if row.extended and row.extension_days:
            due = extend_detail(due, CalendarDays(row.extension_days), self.calendar)
        changes: dict[str, Any] = {"due_at": due.at, "due_provisional": due.provisional}
        provisional = due.provisional
        if row.objection_due_at is not None and row.transferred_at is not None:
            objection = self.policy.due_detail(Step.OBJECT_TRANSFER, row.transferred_at, self.calendar)
            changes["objection_due_at"] = objection.at
            provisional = provisional or objection.provisional
        changes["due_provisional"] = provisional
        if all(getattr(row, k) == value for k, value in changes.items()):
            return None
        became_overdue = row.due_at is not None and row.due_at >= at > due.at
        payload = {"old_due_at": None if row.due_at is None else encode_datetime(row.due_at),
                   "new_due_at": encode_datetime(due.at), "provisional": provisional,
                   "became_overdue": became_overdue}
        return self._execute("retime", "retime", row.id, SYSTEM_ACTOR, lambda s, now: changes, reason=reason,
                             payload=payload, at=at, expected=row)[1]

    # --- reading -------------------------------------------------------------------------
    def _visible(self, actor: Actor, s: Suggestion) -> bool:
        if self._permission_guard is None:
            return True
        return self._permission_guard.can_see(actor, s)

    def _load_for(self, suggestion_id: str, actor: Actor) -> Suggestion:
        """The row, or :class:`NotFound` alike for an unknown id and one the actor may not see."""
        v.code("suggestion_id", suggestion_id)
        s = self.store.load(suggestion_id)
        if not self._visible(actor, s):
            raise NotFound("suggestion", suggestion_id)
        return s

    def _view(self, actor: Actor, s: Suggestion) -> Suggestion:
        if self._permission_guard is None:
            return s
        return self._permission_guard.view_for(actor, s)

    def get(self, suggestion_id: str, actor: Actor) -> Suggestion:
        """The suggestion as ``actor`` may see it; :class:`NotFound` if unknown or not visible to them."""
        self._check_actor(actor)
        return self._view(actor, self._load_for(suggestion_id, actor))

    def history(self, suggestion_id: str, actor: Actor) -> list[Event]:
        """The suggestion's events in order, as ``actor`` may see them (masked where needed)."""
        self._check_actor(actor)
        s = self._load_for(suggestion_id, actor)
        events = self.store.history(suggestion_id)
        if self._permission_guard is None:
            return events
        return history_for(actor, s, events, submitter=self._permission_guard.submitter_of(s))

    def list_suggestions(
        self,
        actor: Actor,
        *,
        states: Iterable[State] | None = None,
        relation: Relation | str | None = None,
        unit: str | None = None,
        area: str | None = None,
        topic: str | None = None,
        received_after: dt.datetime | None = None,
        received_before: dt.datetime | None = None,
        due_after: dt.datetime | None = None,
        due_before: dt.datetime | None = None,
        overdue: bool = False,
        provisional: bool | None = None,
        order: Order | str = Order.RECEIVED,
        descending: bool = False,
        cursor: str | None = None,
        limit: int = 50,
        with_total: bool = False,
    ) -> Page:
        """One page of the suggestions ``actor`` may see, filtered, sorted and masked.

        Who sees what (the same rule as :meth:`get`): the office everything (``unit`` and
        ``relation`` narrow it); a unit its own — as lead, co-handling or recommending unit,
        or one of those with ``relation``; a proposer their own; an information officer what
        they submitted; leadership what was reported upward to it; the municipal office what
        was forwarded to it; an evaluator decided suggestions.  ``overdue`` keeps rows past
        their due time at the clock's now.  ``order`` is ``received_at`` (default), ``due_at``
        (open rows only), ``registration_number`` (registered rows only) or ``id``.
        ``cursor`` continues from the page that returned it; ``limit`` is at most 500.
        ``with_total`` also counts every match (``Page.total``): ask for it on a list's first
        page only, because a count reads every matching row while a page reads only its own.
        """
        self._check_actor(actor)
        order = v.member("order", Order, order)
        v.flag("descending", descending)
        v.flag("overdue", overdue)
        v.flag("with_total", with_total)
        if provisional is not None:
            v.flag("provisional", provisional)
        limit = v.whole_number("limit", limit, low=1, high=500)
        chosen = _state_set(states)
        filters: dict[str, Any] = {
            "states": chosen, "campaign": self.campaign,
            "area": v.code("area", area, required=False), "topic": v.code("topic", topic, required=False),
            "received_after": _opt_aware("received_after", received_after),
            "received_before": _opt_aware("received_before", received_before),
            "due_after": _opt_aware("due_after", due_after), "due_before": _opt_aware("due_before", due_before),
            "provisional": provisional,
        }
        if overdue:
            now = self._now()
            before = filters["due_before"]
            filters["due_before"] = now if before is None or now < before else before
            filters["states"] = OPEN_STATES if chosen is None else chosen & OPEN_STATES
        scope = self._scope_filters(actor, relation, unit)
        within = scope.pop("states_within", None)
        if within is not None:
            filters["states"] = within if filters["states"] is None else filters["states"] & within
        filters.update(scope)
        query = Query(order=order, descending=descending, limit=limit,
                      after=self._decode_cursor(cursor, order, descending), **filters)
        if filters.get("states") is not None and not filters["states"]:
            return Page((), 0 if with_total else None, None)
        rows = self.store.query(query)
        total = self.store.count(query.unpaged()) if with_total else None
        next_cursor = self._encode_cursor(query, rows[-1]) if len(rows) == limit else None
        return Page(tuple(self._view(actor, s) for s in rows), total, next_cursor)

    def _scope_filters(self, actor: Actor, asked: Relation | str | None, unit: str | None) -> dict[str, Any]:
        """The filters that keep a list to what ``actor`` may see (and the relation asked for)."""
        relation = None if asked is None else v.member("relation", Relation, asked)
        v.code("unit", unit, required=False)
        role = actor.role
        if self._permission_guard is None or role in (Role.COLLECTION_OFFICE, Role.SYSTEM):
            if relation is not None and unit is None:
                raise ValidationError("unit", "a relation filter needs the unit it relates to")
            return _relation_filter(relation, unit)
        if unit is not None and unit != actor.unit:
            raise ValidationError("unit", "a unit lists only its own suggestions")
        if role in (Role.HANDLING_UNIT, Role.HANDLING_UNIT_HEAD, Role.RECOMMENDING_UNIT):
            if actor.unit is None:
                raise ValidationError("actor.unit", "a unit actor needs its unit")
            return _relation_filter(relation, actor.unit)
        if relation is not None:
            raise ValidationError("relation", "only units list by relation")
        if role is Role.PROPOSER:
            return {"proposer_account": actor.id}
        if role is Role.INFORMATION_OFFICER:
            return {"received_by": actor.ref}
        if role is Role.LEADERSHIP:
            return {"reported_upward": True}
        if role is Role.MUNICIPAL_OFFICE:
            return {"forwarded_to_city": True}
        if role is Role.EVALUATOR:
            return {"states_within": frozenset(HANDLED_STATES)}
        return {"states_within": frozenset()}

    @staticmethod
    def _encode_cursor(query: Query, last: Suggestion) -> str:
        value, sid = query.cursor_of(last)
        text = json.dumps([query.order.value, query.descending,
                           encode_datetime(value) if isinstance(value, dt.datetime) else value, sid],
                          ensure_ascii=False, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str | None, order: Order, descending: bool) -> tuple[Any, str] | None:
        if cursor is None:
            return None
        if not isinstance(cursor, str) or len(cursor) > 2048:
            raise ValidationError("cursor", "is not a cursor this list returned", code="wrong_type")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
            kind, desc, value, sid = json.loads(raw)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ValidationError("cursor", "is not a cursor this list returned", code="wrong_type") from None
        if kind != order.value or desc != descending or not isinstance(sid, str):
            raise ValidationError("cursor", "belongs to a list in another order", code="wrong_type")
        if order in (Order.RECEIVED, Order.DUE):
            try:
                value = dt.datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise ValidationError("cursor", "is not a cursor this list returned", code="wrong_type") from None
        return (value, sid)

    def overdue(
        self, actor: Actor, now: dt.datetime | None = None, *, unit: str | None = None, area: str | None = None,
        states: Iterable[State] | None = None, limit: int = 500,
    ) -> list[Suggestion]:
        """Open suggestions ``actor`` may see whose current step is past its due time, most overdue first."""
        at = v.aware("now", self._now() if now is None else now)
        return self._due_list(actor, None, at, unit, area, states, limit)

    def due_soon(
        self, actor: Actor, within: dt.timedelta, now: dt.datetime | None = None, *, unit: str | None = None,
        area: str | None = None, states: Iterable[State] | None = None, limit: int = 500,
    ) -> list[Suggestion]:
        """Open suggestions ``actor`` may see, not yet overdue but due within ``within`` of ``now``, soonest first."""
        at = v.aware("now", self._now() if now is None else now)
        if not isinstance(within, dt.timedelta) or within < dt.timedelta(0):
            raise ValidationError("within", "must be a timedelta, not negative", code="wrong_type")
        try:
            until = at + within
        except OverflowError:
            raise ValidationError("within", "reaches past the range of dates", code="out_of_range",
                                  details={"min": 0, "max": (dt.datetime.max.replace(tzinfo=at.tzinfo) - at).days}
                                  ) from None
        return self._due_list(actor, at, until, unit, area, states, limit)

    def _due_list(self, actor: Actor, after: dt.datetime | None, before: dt.datetime, unit: str | None,
                  area: str | None, states: Iterable[State] | None, limit: int) -> list[Suggestion]:
        chosen = _state_set(states)
        page = self.list_suggestions(actor, states=OPEN_STATES if chosen is None else chosen & OPEN_STATES, unit=unit,
                         area=area, due_after=after, due_before=before, order=Order.DUE, limit=limit,
                         with_total=False)
        return list(page.items)

    # --- what an actor may do ------------------------------------------------------------
    def available_commands(self, actor: Actor, suggestion: Suggestion | str) -> Availability:
        """The commands ``actor`` may run on ``suggestion`` now, and why the others of their role are not offered.

        Answered by the same guards, workflow and command rules that run the commands.
        Commands the actor's role may never run are left out entirely.
        """
        self._check_actor(actor)
        sid = suggestion.id if isinstance(suggestion, Suggestion) else suggestion
        s = self._load_for(sid, actor)
        now = self._now()
        available: list[AvailableCommand] = []
        unavailable: list[UnavailableCommand] = []
        for command in ARGUMENTS:
            if isinstance(self.permissions, PermissionTable) and not self.permissions.allows_role(actor.role, command):
                continue
            try:
                self._may_run(command, actor, s, now)
            except JianyiFlowError as e:
                unavailable.append(UnavailableCommand(command, e))
            else:
                available.append(AvailableCommand(command, ARGUMENTS[command]))
        return Availability(tuple(available), tuple(unavailable))

    def _may_run(self, command: str, actor: Actor, s: Suggestion, now: dt.datetime) -> None:
        """Raise what running ``command`` now would raise before its arguments are looked at."""
        if to_utc(now, "now") < to_utc(s.updated_at, "updated_at"):
            raise ClockWentBackwards(s.id, now, s.updated_at)
        self._guard(CommandContext(command=command, actor=actor, now=now, suggestion=s))
        if command == "decide":
            if not any(self.workflow.accepts(t, s.state) for t in DECIDE_TRIGGERS.values()):
                raise InvalidTransition(command, s.state.value, self.workflow.allowed_triggers(s.state))
        elif command not in PERSONAL_DATA_KINDS:  # those are allowed in every state, not workflow edges
            self.workflow.fire(command, s.state, command)
        precondition(command, s, now)

    # --- auditing ------------------------------------------------------------------------
    def verify_history(self, suggestion_id: str) -> list[HistoryProblem]:
        """Problems found in one suggestion's stored history (empty when it is intact).

        Detects an edited event (its hash no longer matches), a deleted or reordered one (the
        ``prev_hash`` chain or the version sequence breaks), a row that differs from the
        replay of its history, a missing or wrong keyed seal (with an ``anchor``), and
        stored values the store cannot read back (reported, not raised).
        """
        v.code("suggestion_id", suggestion_id)
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
        vault = isinstance(self.store, PersonalDataVault)
        try:
            personal = self.store.personal_data(suggestion_id) if isinstance(self.store, PersonalDataVault) else None
        except (JianyiFlowError, ValueError, TypeError, KeyError) as e:
            return [HistoryProblem(suggestion_id, row.version, f"vault record cannot be read: {_first_line(e)}")]
        return verify_events(suggestion_id, events, row, key=None if self.anchor is None else self.anchor.key,
                             workflows=self.workflows, vault=vault, personal=personal)

    def verify_all(self, page: int = 1000) -> list[HistoryProblem]:
        """Check every suggestion's history, the outbox messages its events announce, and the event log.

        Stores that can scan (:class:`~jianyi_flow.storage.base.HistoryScanner`) are read in
        one ordered pass, ``page`` suggestions at a time (:func:`~jianyi_flow.service.audit.verify_store`);
        other stores one suggestion at a time.  With an :class:`~jianyi_flow.service.audit.Anchor`,
        every event's keyed seal is checked too, and every checkpoint in its log.
        """
        page = v.whole_number("page", page, low=1, high=100_000)
        key = None if self.anchor is None else self.anchor.key
        if not isinstance(self.store, HistoryScanner):
            return [p for s in iter_suggestions(self.store, Query(), page) for p in self.verify_history(s.id)]
        problems = verify_store(self.store, key=key, page=page, workflows=self.workflows)
        if self.anchor is not None and self.anchor.log is not None:
            problems.extend(self.anchor.verify(self.store))
        return problems

    def checkpoint(self) -> Checkpoint:
        """Append a signed checkpoint of the whole store to the anchor's log (see :class:`Anchor`)."""
        if self.anchor is None:
            raise ValidationError("anchor", "this flow has no anchor to sign checkpoints with")
        return self.anchor.checkpoint(self.store, self._now())

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
        self._check_actor(actor)
        if not isinstance(draft, SuggestionDraft):
            raise ValidationError("draft", "must be a SuggestionDraft", code="wrong_type")
        key = self._check_key(idempotency_key)
        if suggestion_id is not None:
            v.code("suggestion_id", suggestion_id)
            if self._permission_guard is not None and actor.role not in (Role.COLLECTION_OFFICE, Role.SYSTEM):
                # an id chosen by anyone else would tell them whether it exists (DuplicateSuggestion)
                raise ValidationError("suggestion_id", "only the collection office chooses a suggestion's id",
                                      code="not_applicable")
        args = {"draft": draft, "suggestion_id": suggestion_id}
        print_ = "" if key is None else fingerprint("receive", None, args)  # only a key's record needs it
        if key is not None:
            done = self._replayed(actor, key, "receive", print_)
            if done is not None:
                return done
        now = self._now()
        self._guard(CommandContext(command="receive", actor=actor, now=now, suggestion=None, draft=draft))
        self._check_draft(draft)
        sid = suggestion_id if suggestion_id is not None else self._ids()
        v.code("suggestion_id", sid)
        personal: PersonalRecord | None = None
        payload: dict[str, Any] = {}
        proposer = draft.proposer
        if self.vaulted:
            proposer = attrs.evolve(proposer, vaulted=True, erased=None)
            personal = PersonalRecord.of(sid, proposer, self._salt())
            payload = {"personal_data": digest_of(personal)}
            actor_recorded = self._recorded_actor(actor, proposer)
        else:
            actor_recorded = actor
        changes: dict[str, Any] = {
            "campaign": self.campaign,
            "title": draft.title,
            "subject": draft.subject,
            "problem": draft.problem,
            "measures": draft.measures,
            "area": draft.area,
            "topic": draft.topic,
            "channel": draft.channel,
            "proposer": proposer,
            "recommending_unit": draft.recommending_unit,
            "accused_units": tuple(draft.accused_units),
            "institution": draft.institution,
            "received_at": now,
            "received_by": _PSEUDONYMOUS_REF if actor_recorded is _PSEUDONYMOUS_PROPOSER else actor_recorded.ref,
            **self._deadline(Step.REGISTER, now),
        }
        notices = [OFFICE]  # commands.NOTICES['receive']
        event = self._event(sid, 1, "receive", None, State.RECEIVED, actor_recorded, now, None,
                            changed_fields(changes, None), payload, "", notices)
        suggestion = Suggestion(id=sid, state=State.RECEIVED, version=1, updated_at=now, event_hash=event.hash,
                                workflow=self.workflow.version, **changes)
        record = None if key is None else IdempotencyRecord(actor.key, key, sid, 1, "receive", print_)
        return self._commit(actor, suggestion, event, 0, record, notices, personal)

    def register(
        self, suggestion_id: str, actor: Actor, *, registration_number: str | None = None,
        expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """The collection office registers it (登记); routing stays due within the same 15 days."""

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            number = self._registration_number(s, now) if registration_number is None else registration_number
            v.required_text("registration_number", number, max_len=64)
            return {"registration_number": number}

        return self._run("register", "register", suggestion_id, actor, changes,
                         args={"registration_number": registration_number},
                         check=lambda: [v.text("registration_number", registration_number, max_len=64,
                                               required=False)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def not_accept(
        self, suggestion_id: str, actor: Actor, *, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Not accepted at registration (不予受理), e.g. a personal complaint; needs a reason."""
        return self._run("not_accept", "not_accept", suggestion_id, actor, _closing, reason=reason,
                         args={"reason": reason},
                         check=lambda: [v.required_text("reason", reason, max_len=v.REASON_MAX)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def transfer(
        self, suggestion_id: str, actor: Actor, *, lead_unit: str, co_units: Sequence[str] = (),
        note: str | None = None, expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """Transfer to a lead handling unit (and co-handling units) (转送交办).

        Opens the lead unit's 5-working-day objection window (Art. 23) and its research deadline.
        """

        def check() -> None:
            v.code("lead_unit", lead_unit, self.known_units)
            co = v.codes("co_units", co_units, self.known_units)
            if lead_unit in co:
                raise ValidationError("co_units", "must not repeat the lead unit", code="duplicate",
                                      details={"value": lead_unit})
            v.text("note", note, max_len=v.REASON_MAX, required=False)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            co = tuple(co_units)
            accused = accused_targets(s, {"lead_unit": lead_unit, "co_units": co})
            if accused:
                raise accused_unit_error(accused, lead_unit)
            research = self._deadline(Step.RESEARCH, now)
            objection = self._due(Step.OBJECT_TRANSFER, now)
            return {
                "lead_unit": lead_unit,
                "co_units": co,
                "transferred_at": now,
                **research,
                "due_provisional": research["due_provisional"] or objection.provisional,
                "objection_due_at": objection.at,
                "objection_reason": None,
            }

        return self._run("transfer", "transfer", suggestion_id, actor, changes, reason=note,
                         args={"lead_unit": lead_unit, "co_units": _codes_arg(co_units), "note": note},
                         check=check,
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def object_transfer(
        self, suggestion_id: str, actor: Actor, *, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The lead unit objects, with reasons, that a transfer is outside its remit (提出异议).

        Only within 5 working days of the transfer (信访工作条例 Art. 23 para. 3); the office
        then verifies and agrees (:meth:`accept_objection`) or refuses (:meth:`reject_objection`).
        Until it decides, the office's own 15-day routing period (Art. 22) is what is due.
        """

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"objection_reason": reason, "objection_due_at": None,
                    **self._deadline(Step.REGISTER, now)}

        return self._run("object_transfer", "object_transfer", suggestion_id, actor, changes, reason=reason,
                         args={"reason": reason},
                         check=lambda: [v.required_text("reason", reason, max_len=v.REASON_MAX)],
                         expected_version=expected_version,
                         idempotency_key=idempotency_key)

    def accept_objection(
        self, suggestion_id: str, actor: Actor, *, note: str | None = None, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The office agrees the transfer was misrouted: the suggestion returns to be routed again (异议成立)."""

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"lead_unit": None, "co_units": (), "return_count": s.return_count + 1, "objection_reason": None,
                    **self._deadline(Step.REGISTER, now)}

        return self._run("accept_objection", "accept_objection", suggestion_id, actor, changes, reason=note,
                         args={"note": note},
                         check=lambda: [v.text("note", note, max_len=v.REASON_MAX, required=False)],
                         expected_version=expected_version,
                         idempotency_key=idempotency_key)

    def reject_objection(
        self, suggestion_id: str, actor: Actor, *, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The office refuses the objection, with reasons: the lead unit keeps handling it (异议不成立).

        The research period starts again from the refusal, so the unit loses no time to the objection.
        """

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"objection_reason": None, **self._deadline(Step.RESEARCH, now)}

        return self._run("reject_objection", "reject_objection", suggestion_id, actor, changes, reason=reason,
                         args={"reason": reason},
                         check=lambda: [v.required_text("reason", reason, max_len=v.REASON_MAX)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def research(
        self, suggestion_id: str, actor: Actor, *, findings: str, method: ResearchMethod | str,
        expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """The lead unit records its research (调研论证) and how it was done; the decision stays due."""

        def check() -> None:
            v.required_text("findings", findings, max_len=v.BODY_MAX)
            v.member("method", ResearchMethod, method)

        return self._run("research", "research", suggestion_id, actor,
                         lambda s, now: {"research_notes": findings,
                                         "research_method": ResearchMethod(method), "objection_due_at": None},
                         args={"findings": findings, "method": method}, check=check,
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def decide(
        self, suggestion_id: str, actor: Actor, *, outcome: Outcome | str, reason: str | None = None,
        adopted_part: str | None = None, expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """Adopt, partially adopt (say which part) or decline (say why); the reply becomes due."""
        chosen = v.member("outcome", Outcome, outcome)

        def check() -> None:
            v.text("reason", reason, max_len=v.REASON_MAX, required=chosen is Outcome.DECLINED)
            v.text("adopted_part", adopted_part, max_len=v.REASON_MAX, required=chosen is Outcome.PARTIALLY_ADOPTED)
            if chosen is not Outcome.PARTIALLY_ADOPTED and adopted_part is not None:
                raise ValidationError("adopted_part", "only a partial adoption names an adopted part",
                                      code="not_applicable")

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"outcome": chosen, "outcome_reason": reason, "adopted_part": adopted_part,
                    **self._deadline(Step.REPLY, now)}

        return self._run("decide", DECIDE_TRIGGERS[chosen.value], suggestion_id, actor, changes, reason=reason,
                         args={"outcome": chosen, "reason": reason, "adopted_part": adopted_part}, check=check,
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def reply(
        self, suggestion_id: str, actor: Actor, *, text: str, form: ReplyForm | str,
        expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """Reply to the proposer (答复), saying in what form; the proposer's rating window opens."""

        def check() -> None:
            v.required_text("text", text, max_len=v.REPLY_MAX)
            v.member("form", ReplyForm, form)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"reply": text, "reply_form": ReplyForm(form), "replied_at": now,
                    **self._deadline(Step.RATE, now)}

        return self._run("reply", "reply", suggestion_id, actor, changes, args={"text": text, "form": form},
                         check=check,
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def rate(
        self, suggestion_id: str, actor: Actor, *, rating: Rating | str, comment: str | None = None,
        expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """The proposer rates the reply (评价).  'dissatisfied' allows one :meth:`reopen`."""
        chosen = v.member("rating", Rating, rating)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"rating": chosen, "rating_comment": comment, **_closing(s, now)}

        return self._run("rate", "rate", suggestion_id, actor, changes, args={"rating": chosen, "comment": comment},
                         check=lambda: [v.text("comment", comment, max_len=v.REASON_MAX, required=False)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def withdraw(
        self, suggestion_id: str, actor: Actor, *, reason: str | None = None, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The proposer withdraws the suggestion before a decision (撤回)."""
        return self._run("withdraw", "withdraw", suggestion_id, actor, _closing, reason=reason, args={"reason": reason},
                         check=lambda: [v.text("reason", reason, max_len=v.REASON_MAX, required=False)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def reopen(
        self, suggestion_id: str, actor: Actor, *, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """After a 'dissatisfied' rating, hand the suggestion back to its lead unit once (重新办理)."""

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {
                "reopen_count": s.reopen_count + 1, "rating": None, "rating_comment": None, "outcome": None,
                "outcome_reason": None, "adopted_part": None, "reply": None, "reply_form": None, "replied_at": None,
                "closed_at": None, **self._deadline(Step.RESEARCH, now),
            }

        return self._run("reopen", "reopen", suggestion_id, actor, changes, reason=reason, args={"reason": reason},
                         check=lambda: [v.required_text("reason", reason, max_len=v.REASON_MAX)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def request_extension(
        self, suggestion_id: str, actor: Actor, *, days: int, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The lead unit asks to extend its research or reply deadline by 1–30 days, with a reason (申请延期).

        Registration is never extended (信访工作条例 Art. 22 allows none).  Whoever the
        permission table names (a unit head of the lead unit by default) approves or refuses.
        """

        def check() -> None:
            v.whole_number("days", days, low=1, high=30)
            v.required_text("reason", reason, max_len=v.REASON_MAX)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            return {"extension_request": ExtensionRequest(days, reason, actor.key, now)}

        return self._run("request_extension", "request_extension", suggestion_id, actor, changes, reason=reason,
                         args={"days": days, "reason": reason}, check=check, payload={"days": days},
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def approve_extension(
        self, suggestion_id: str, actor: Actor, *, note: str | None = None, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Grant the pending extension: the deadline moves by the days asked; the proposer is told (批准延期)."""

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            request = s.extension_request
            assert request is not None and s.due_at is not None  # the precondition holds
            due = extend_detail(Due(s.due_at, s.due_provisional), CalendarDays(request.days), self.calendar)
            return {"due_at": due.at, "due_provisional": due.provisional, "extended": True,
                    "extension_days": request.days, "extension_request": None}

        return self._run("approve_extension", "approve_extension", suggestion_id, actor, changes, reason=note,
                         args={"note": note},
                         check=lambda: [v.text("note", note, max_len=v.REASON_MAX, required=False)],
                         payload_of=lambda s: {"days": s.extension_request.days if s.extension_request else None,
                                               "approver": actor.key},
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def reject_extension(
        self, suggestion_id: str, actor: Actor, *, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Refuse the pending extension, with a reason (不予延期); the deadline stands."""
        return self._run("reject_extension", "reject_extension", suggestion_id, actor,
                         lambda s, now: {"extension_request": None}, reason=reason, args={"reason": reason},
                         check=lambda: [v.required_text("reason", reason, max_len=v.REASON_MAX)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    # --- reporting upward and the summary phase (总结运用阶段) -----------------------------------
    def report_upward(
        self, suggestion_id: str, actor: Actor, *, form: ReportForm | str, note: str | None = None,
        expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """Report to the party committee and government as original, excerpt or analysis (呈报)."""
        chosen = v.member("form", ReportForm, form)

        def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
            if chosen in s.upward_reports:
                raise ValidationError("form", f"already reported upward as {chosen.value!r}", code="already_done")
            return {"upward_reports": (*s.upward_reports, chosen)}

        return self._run("report_upward", "report_upward", suggestion_id, actor, changes, reason=note,
                         args={"form": chosen, "note": note}, payload={"form": chosen.value},
                         check=lambda: [v.text("note", note, max_len=v.REASON_MAX, required=False)],
                         expected_version=expected_version,
                         idempotency_key=idempotency_key)

    def forward_to_city(
        self, suggestion_id: str, actor: Actor, *, note: str | None = None, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Forward to the municipal office (呈送市信访办); once."""
        return self._run("forward_to_city", "forward_to_city", suggestion_id, actor,
                         lambda s, now: {"forwarded_to_city_at": now}, reason=note, args={"note": note},
                         check=lambda: [v.text("note", note, max_len=v.REASON_MAX, required=False)],
                         expected_version=expected_version,
                         idempotency_key=idempotency_key)

    def evaluate(
        self, suggestion_id: str, actor: Actor, *, quality: int, value: int, effect: int, evaluator: str,
        expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """Score quality, value and effect (质量、价值、效果), each 0–10, by a named evaluator.

        A later evaluation replaces an earlier one; both stay in the history.
        """

        def check() -> None:
            for name, score in (("quality", quality), ("value", value), ("effect", effect)):
                v.whole_number(name, score, low=SCORE_MIN, high=SCORE_MAX)
            v.required_text("evaluator", evaluator, max_len=v.NAME_MAX)

        return self._run("evaluate", "evaluate", suggestion_id, actor,
                         lambda s, now: {"evaluation": Evaluation(quality, value, effect, evaluator)},
                         args={"quality": quality, "value": value, "effect": effect, "evaluator": evaluator},
                         check=check, expected_version=expected_version, idempotency_key=idempotency_key)

    def nominate_reward(
        self, suggestion_id: str, actor: Actor, *, tier: RewardTier | str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Place an evaluated, adopted suggestion among reward candidates with a tier (特等…鼓励)."""
        chosen = v.member("tier", RewardTier, tier)
        return self._run("nominate_reward", "nominate_reward", suggestion_id, actor,
                         lambda s, now: {"reward_tier": chosen}, args={"tier": chosen},
                         payload={"tier": chosen.value}, expected_version=expected_version,
                         idempotency_key=idempotency_key)

    def record_adoption(
        self, suggestion_id: str, actor: Actor, *, adopted_into: str, form: AdoptionForm | str | None = None,
        expected_version: int | None = None, idempotency_key: str | None = None,
    ) -> Suggestion:
        """Record the measure or document an adopted suggestion became, and its kind (吸纳转化运用)."""

        def check() -> None:
            v.required_text("adopted_into", adopted_into, max_len=v.REASON_MAX)
            if form is not None:
                v.member("form", AdoptionForm, form)

        return self._run("record_adoption", "record_adoption", suggestion_id, actor,
                         lambda s, now: {"adopted_into": adopted_into,
                                         "adoption_form": None if form is None else AdoptionForm(form)},
                         args={"adopted_into": adopted_into, "form": form}, check=check,
                         expected_version=expected_version, idempotency_key=idempotency_key)

    def mark_typical(
        self, suggestion_id: str, actor: Actor, *, note: str | None = None, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Mark as a typical case (典型案例) for publicity and the summary report."""
        return self._run("mark_typical", "mark_typical", suggestion_id, actor, lambda s, now: {"typical_case": True},
                         reason=note, args={"note": note},
                         check=lambda: [v.text("note", note, max_len=v.REASON_MAX, required=False)],
                         expected_version=expected_version, idempotency_key=idempotency_key)

    # --- commands a deployment adds, and migrations ---------------------------------------
    def run_command(
        self, command: str, suggestion_id: str, actor: Actor, *, args: Mapping[str, Any] | None = None,
        reason: str | None = None, payload: Mapping[str, Any] | None = None, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Run a command a deployment added to its workflow (e.g. 补充材料, asking for more material).

        ``command`` must be a trigger of this flow's workflow and have rules in its permission
        table (``PermissionTable.with_command``); it is checked, recorded and answered like any
        built-in command — an event with ``reason`` and ``payload``, the workflow's next
        state — but changes no field of the suggestion.  ``args`` are what the request
        fingerprint and the guards see.
        """
        v.code("command", command)
        if command in ARGUMENTS or command not in self.workflow.triggers:
            raise ValidationError("command", "must be a command this flow's workflow adds", code="unknown_code",
                                  details={"value": command})
        v.text("reason", reason, max_len=v.REASON_MAX, required=False)
        return self._run(command, command, suggestion_id, actor, lambda s, now: {}, args=dict(args or {}),
                         reason=reason, payload=payload, expected_version=expected_version,
                         idempotency_key=idempotency_key)

    def migrate(self, reason: str, *, now: dt.datetime | None = None, batch: int = 500) -> list[Event]:
        """Move every suggestion out of the states this workflow retired, as its migrations declare.

        One ``migrate_state`` event per suggestion, by the system actor, with ``reason``; the
        suggestion's other fields and deadlines stand.  Run it once after deploying a workflow
        that retires a state; until then those suggestions accept no command.
        """
        v.required_text("reason", reason, max_len=v.REASON_MAX)
        at = v.aware("now", self._now() if now is None else now)
        batch = v.whole_number("batch", batch, low=1, high=100_000)
        written: list[Event] = []
        for old, new in self.workflow.migrations.items():
            while True:
                rows = self.store.query(Query(states=[old], order=Order.ID, limit=batch))
                for row in rows:
                    try:
                        written.append(self._execute(MIGRATE, MIGRATE, row.id, SYSTEM_ACTOR, lambda s, now: {},
                                                     reason=reason, payload={"from": old.value, "to": new.value},
                                                     at=at, expected=row, to_state=new)[1])
                    except ConcurrencyConflict:
                        continue  # moved meanwhile: the next round sees it again if still needed
                if len(rows) < batch:
                    break
        return written

    # --- personal data ---------------------------------------------------------------------
    def erase_personal_data(
        self, suggestion_id: str, actor: Actor, *, reason: str, expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """Erase the proposer's personal data (PIPL Art. 47): one ``erase_personal_data`` event.

        The vault record becomes a tombstone in the same transaction as the event, which
        sets the proposer to 已删除; every other field, and so every statistic, stands, and
        the history still verifies.  Erasing what is already erased writes nothing and
        returns the suggestion (idempotent).  Who may: the permission table (the collection
        office by default).  A suggestion whose data is still inside its history (received
        before the vault) must be moved first (:meth:`vault_personal_data`).
        """
        self._check_actor(actor)
        v.required_text("reason", reason, max_len=v.REASON_MAX)
        current = self._load_for(suggestion_id, actor)
        if current.proposer.erased:
            self._guard(CommandContext(command=ERASE, actor=actor, now=self._now(), suggestion=current,
                                       args={"reason": reason}))
            return self._view(actor, current)
        return self._run(ERASE, ERASE, suggestion_id, actor, _erasing(ERASED), reason=reason, args={"reason": reason},
                         expected_version=expected_version, idempotency_key=idempotency_key,
                         personal_of=_tombstone)

    def erase_expired(
        self, actor: Actor, *, reason: str, retention_days: int, campaign: str | None = None,
        now: dt.datetime | None = None, batch: int = 500,
    ) -> ErasureResult:
        """Pseudonymise every proposer of a campaign whose suggestion closed ``retention_days`` or more ago.

        Closed: rated, unrated, not accepted or withdrawn, with ``closed_at`` at least
        ``retention_days`` before ``now``.  One ``erase_personal_data`` event each (proposer
        shown 已脱敏, payload ``{"retention_days": N}``), by ``actor``, whom the permission table
        must allow.  ``campaign`` defaults to this flow's.  Suggestions already erased are
        left alone; those whose data is still inside their history, or that changed
        meanwhile, are listed in :attr:`ErasureResult.skipped`.  Running it again erases
        only what became due since.
        """
        self._check_actor(actor)
        v.required_text("reason", reason, max_len=v.REASON_MAX)
        days = v.whole_number("retention_days", retention_days, low=0, high=100_000)
        at = v.aware("now", self._now() if now is None else now)
        batch = v.whole_number("batch", batch, low=1, high=100_000)
        chosen = self.campaign if campaign is None else v.code("campaign", campaign)
        if isinstance(self.permissions, PermissionTable) and not self.permissions.allows_role(actor.role, ERASE):
            raise PermissionDenied(str(actor), ERASE, f"the permission table lets no {actor.role.value} erase "
                                                      "personal data", reason_zh="权限表未授权该角色删除个人信息")
        cutoff = to_utc(at, "now") - dt.timedelta(days=days)
        events: list[Event] = []
        skipped: list[str] = []
        query = Query(states=_CLOSED_STATES, campaign=chosen, order=Order.ID)
        for row in iter_suggestions(self.store, query, batch):
            if row.closed_at is None or to_utc(row.closed_at, "closed_at") > cutoff or row.proposer.erased:
                continue
            if not row.proposer.vaulted:
                skipped.append(row.id)
                continue
            try:
                events.append(self._execute(ERASE, ERASE, row.id, actor, _erasing(PSEUDONYMISED), reason=reason,
                                            args={"reason": reason}, payload={"retention_days": days}, at=at,
                                            expected=row, personal_of=_tombstone)[1])
            except (ConcurrencyConflict, ClockWentBackwards):
                skipped.append(row.id)
        return ErasureResult(tuple(events), tuple(skipped))

    def vault_personal_data(self, reason: str, *, now: dt.datetime | None = None,
                            batch: int = 500) -> list[Event]:
        """Move the personal data of suggestions received before the vault out of their histories.

        For each suggestion whose receive event still holds the proposer's name, phone,
        address and account: one ``vault_personal_data`` event by the system actor, with
        ``reason``, written in one transaction with the vault record and with the earlier
        events that held the data rewritten without it (the proposer as the vault keeps it
        in the history, a proposer actor by :data:`PROPOSER_PSEUDONYM`).  Those events keep
        their hashes — so the chain, the keyed seals and every checkpoint still hold — and
        the new event, hashed after them, records for each its version, its hash and the
        hash of its new content: :func:`~jianyi_flow.domain.history.verify_events` checks
        them against it.  Running it again does nothing.  Returns the events written.
        """
        v.required_text("reason", reason, max_len=v.REASON_MAX)
        at = v.aware("now", self._now() if now is None else now)
        batch = v.whole_number("batch", batch, low=1, high=100_000)
        if not self.vaulted:
            raise ValidationError("store", "this store keeps no personal-data vault", code="not_applicable")
        written: list[Event] = []
        for row in iter_suggestions(self.store, Query(order=Order.ID), batch):
            if row.proposer.vaulted:
                continue
            try:
                written.append(self._vault_one(row, reason, at))
            except (ConcurrencyConflict, ClockWentBackwards):
                continue  # changed meanwhile: the next run moves it
        return written

    def _vault_one(self, row: Suggestion, reason: str, at: dt.datetime) -> Event:
        proposer = attrs.evolve(row.proposer, vaulted=True, erased=None)
        personal = PersonalRecord.of(row.id, row.proposer, self._salt())
        redacted: list[Event] = []
        for e in self.store.history(row.id):
            kept = dict(e.changes)
            if "proposer" in kept:
                kept["proposer"] = encode_changes({"proposer": proposer})["proposer"]
            received_by = kept.get("received_by")
            if isinstance(received_by, str) and received_by.startswith(f"{Role.PROPOSER.value}:"):
                kept["received_by"] = _PSEUDONYMOUS_REF
            new = attrs.evolve(e, changes=kept, actor=self._recorded_actor(e.actor, proposer))
            if new != e:
                redacted.append(new)
        listed = [{"version": e.version, "hash": e.hash, "redacted_hash": event_hash(e)} for e in redacted]
        changes: dict[str, Any] = {"proposer": proposer}
        if row.received_by is not None and row.received_by.startswith(f"{Role.PROPOSER.value}:"):
            changes["received_by"] = _PSEUDONYMOUS_REF
        return self._execute(VAULT, VAULT, row.id, SYSTEM_ACTOR, lambda s, now: changes, reason=reason,
                             payload={"personal_data": digest_of(personal), "redacted": listed}, at=at, expected=row,
                             personal_of=lambda s, now, version: personal, redacted=redacted)[1]

    # --- time-driven work ----------------------------------------------------------------
    def tick(self, now: dt.datetime | None = None, *, batch: int = 500) -> list[Event]:
        """Do what is due by ``now``; running it twice changes nothing the second time.

        - a reply whose rating window closed unrated becomes ``unrated`` (not 'satisfied');
        - any other open step past its due time gets one ``flag_overdue`` event per due time
          (which notifies the responsible unit through the outbox).
        Returns the events written.
        """
        at = v.aware("now", self._now() if now is None else now)
        batch = v.whole_number("batch", batch, low=1, high=100_000)
        written: list[Event] = []
        seen: set[str] = set()
        query = Query(states=OPEN_STATES, due_before=at, order=Order.DUE, limit=batch, campaign=self.campaign,
                      overdue_unflagged=True)
        while True:
            rows = self.store.query(query)
            for row in rows:
                if row.id in seen:
                    continue
                seen.add(row.id)
                event = self._tick_one(row, at)
                if event is not None:
                    written.append(event)
            if len(rows) < batch:
                return written
            query = attrs.evolve(query, after=query.cursor_of(rows[-1]))

    def _tick_one(self, row: Suggestion, at: dt.datetime) -> Event | None:
        """What ``tick`` does to one row that is past due; ``None`` if nothing (already done)."""
        try:
            if row.state is State.REPLIED and row.due_step is Step.RATE:
                return self._execute("close_unrated", "close_unrated", row.id, SYSTEM_ACTOR, _closing,
                                     at=at, expected=row)[1]
            if not flagged_for_due(row):
                return self._execute("flag_overdue", "flag_overdue", row.id, SYSTEM_ACTOR,
                                     lambda s, now: {"overdue_flagged_at": s.due_at}, at=at, expected=row,
                                     payload={"due_step": None if row.due_step is None else row.due_step.value})[1]
        except (ConcurrencyConflict, ClockWentBackwards):
            return None  # someone acted on it meanwhile, or later: the next tick looks again
        return None

    # --- machinery -----------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        return v.aware("clock.now()", self.clock.now())

    def _check_key(self, key: str | None) -> str | None:
        if key is None:
            return None
        v.required_text("idempotency_key", key, max_len=_KEY_MAX)
        return key

    def validate_draft(self, draft: SuggestionDraft) -> list[Problem]:
        """Every problem of a citizen's form at once (``[]`` when :meth:`receive` would accept it).

        The same rules :meth:`receive` applies, against this flow's known areas, topics and
        units: a portal shows all of them next to their fields instead of one at a time.
        """
        return check_draft(draft, known_areas=self.known_areas, known_topics=self.known_topics,
                           known_units=self.known_units)

    def _check_draft(self, draft: SuggestionDraft) -> None:
        problems = self.validate_draft(draft)
        if problems:
            raise ValidationError.many(problems)

    @staticmethod
    def _check_actor(actor: Actor) -> None:
        """The actor is written into every event and hashed: it is validated like any input."""
        if not isinstance(actor, Actor):
            raise ValidationError("actor", "must be an Actor", code="wrong_type")
        v.member("actor.role", Role, actor.role)
        v.required_text("actor.id", actor.id, max_len=v.NAME_MAX)
        v.code("actor.unit", actor.unit, required=False)
        v.text("actor.name", actor.name, max_len=v.NAME_MAX, required=False)

    def _guard(self, ctx: CommandContext) -> None:
        for guard in self.guards:
            guard.check(ctx)
        if self._permission_guard is not None:
            self._permission_guard.check(ctx)

    def _replayed(self, actor: Actor, key: str, command: str, print_: str) -> Suggestion | None:
        """The result of the command ``actor`` already did under ``key``, checked and masked as a fresh one."""
        record = self.store.idempotency(actor.key, key)
        if record is None:
            return None
        # a record from before requests had fingerprints ("") vouches for its command alone
        if record.command != command or record.fingerprint not in (print_, ""):
            raise IdempotencyKeyReused(key, f"{record.command} on suggestion {record.suggestion_id} "
                                            "with other arguments")
        current = self.store.load(record.suggestion_id)
        if not self._visible(actor, current):
            raise NotFound("suggestion", record.suggestion_id)
        events = [e for e in self.store.history(record.suggestion_id) if e.version <= record.version]
        result = replay(events)
        assert result is not None
        if isinstance(self.store, PersonalDataVault) and result.proposer.vaulted:
            personal = self.store.personal_data(record.suggestion_id)
            if personal is not None:
                result = attrs.evolve(result, proposer=personal.resolve(result.proposer))
        return self._view(actor, result)

    def _run(
        self,
        command: str,
        trigger: str,
        suggestion_id: str,
        actor: Actor,
        changes: Changes,
        *,
        args: Mapping[str, Any],
        check: Callable[[], object] | None = None,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
        payload_of: Callable[[Suggestion], Mapping[str, Any]] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        personal_of: Callable[[Suggestion, dt.datetime, int], PersonalRecord | None] | None = None,
    ) -> Suggestion:
        """A command by a person: validated, replayed under its key, checked, executed; their view of the result."""
        self._check_actor(actor)
        v.code("suggestion_id", suggestion_id)
        if expected_version is not None:
            v.whole_number("expected_version", expected_version, low=1, high=2**31 - 1)
        key = self._check_key(idempotency_key)
        print_ = "" if key is None else fingerprint(command, suggestion_id, args)  # only a key's record needs it
        if key is not None:
            done = self._replayed(actor, key, command, print_)
            if done is not None:
                return done
        record = None if key is None else IdempotencyRecord(actor.key, key, suggestion_id, 0, command, print_)
        try:
            new, _ = self._execute(command, trigger, suggestion_id, actor, changes, args=args, reason=reason,
                                   payload=payload,
                                   payload_of=payload_of, check=check,
                                   expected_version=expected_version, record=record, personal_of=personal_of)
        except (ConcurrencyConflict, InvalidTransition, IdempotencyKeyReused):
            if key is not None:
                # a concurrent retry of the same request under the same key may have won: give its result
                done = self._replayed(actor, key, command, print_)
                if done is not None:
                    return done
            raise
        return self._view(actor, new)

    def _execute(self, *args: Any, **kwargs: Any) -> tuple[Suggestion, Event]:
        """:meth:`_execute_now`, its read and its commit in one store transaction where the store can."""
        if self._transaction is not None:  # one transaction per command instead of two, for speed
            return self._transaction(lambda: self._execute_now(*args, **kwargs))
        return self._execute_now(*args, **kwargs)

    def _execute_now(
        self,
        command: str,
        trigger: str,
        suggestion_id: str,
        actor: Actor,
        changes: Changes,
        *,
        args: Mapping[str, Any] | None = None,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
        payload_of: Callable[[Suggestion], Mapping[str, Any]] | None = None,
        check: Callable[[], object] | None = None,
        expected_version: int | None = None,
        record: IdempotencyRecord | None = None,
        at: dt.datetime | None = None,
        expected: Suggestion | None = None,
        to_state: State | None = None,
        personal_of: Callable[[Suggestion, dt.datetime, int], PersonalRecord | None] | None = None,
        redacted: Sequence[Event] = (),
    ) -> tuple[Suggestion, Event]:
        """Run one command on one suggestion and commit it (``personal_of`` gives the vault record to write
        with it; an erasure also forgets the suggestion's earlier idempotency keys: see ``Change.forget_keys``)."""
        now = at or self._now()
        args = args or {}
        current = self.store.load(suggestion_id)
        if not self._visible(actor, current):
            raise NotFound("suggestion", suggestion_id)
        if expected is not None and expected_version is None:
            expected_version = expected.version
        if expected_version is not None and current.version != expected_version:
            raise ConcurrencyConflict(suggestion_id, expected_version, current.version)
        if to_utc(now, "now") < to_utc(current.updated_at, "updated_at"):
            raise ClockWentBackwards(suggestion_id, now, current.updated_at)
        self._guard(CommandContext(command=command, actor=actor, now=now, suggestion=current, args=args))
        if to_state is None and trigger in PERSONAL_DATA_KINDS:
            to_state = current.state  # about the data, not the handling: every state, no change
        elif to_state is None:
            to_state = self.workflow.fire(trigger, current.state, command)
        elif self.workflow.migrations.get(current.state) is not to_state:
            raise InvalidTransition(command, current.state.value, detail="no such migration")
        if check is not None:
            check()
        precondition(command, current, now)
        changed = changed_fields(changes(current, now), current)  # what the event records: what changes
        version = current.version + 1
        notices = recipients(command, current, args)
        event_payload = dict(payload_of(current)) if payload_of is not None else dict(payload or {})
        event = self._event(suggestion_id, version, command, current.state, to_state,
                            self._recorded_actor(actor, current.proposer), now, reason, changed,
                            event_payload, current.event_hash, notices)
        new = replace(current, {**changed, "state": to_state, "version": version, "updated_at": now,
                                "event_hash": event.hash, "workflow": self.workflow.version})
        if record is not None:
            record = IdempotencyRecord(record.scope, record.key, record.suggestion_id, version, record.command,
                                       record.fingerprint)
        personal = None if personal_of is None else personal_of(current, now, version)
        stored = self._commit_change(new, event, current.version, record, notices, personal, redacted,
                                     forget_keys=trigger == ERASE)
        return new, stored

    def _salt(self) -> str:
        salt = self._salts()
        try:
            ok = isinstance(salt, str) and len(bytes.fromhex(salt)) >= 16 and len(salt) <= 64
        except ValueError:
            ok = False
        if not ok:
            raise ValidationError("salts", "must give hex text of 16 to 32 random bytes", code="wrong_type")
        return salt

    @staticmethod
    def _recorded_actor(actor: Actor, proposer: Proposer) -> Actor:
        """The actor as an event of a vaulted suggestion records it: the proposer by a pseudonym.

        Only the proposer themselves (their portal account): any other actor, a proposer-role
        one under ``ALLOW_ALL`` included, is recorded as it is, for accountability.
        """
        if proposer.vaulted and actor.role is Role.PROPOSER and actor.id == proposer.account:
            return _PSEUDONYMOUS_PROPOSER
        return actor

    def _event(
        self, sid: str, version: int, kind: str, from_state: State | None, to_state: State, actor: Actor,
        at: dt.datetime, reason: str | None, changes: Mapping[str, Any], payload: Mapping[str, Any], prev_hash: str,
        recipients: Sequence[str],
    ) -> Event:
        return sealed_event(sid, version, kind, from_state, to_state, actor, at, reason, changes, payload, prev_hash,
                            tuple(recipients), self.workflow.version, self.policy_version,
                            key=None if self.anchor is None else self.anchor.key)

    def _commit_change(
        self, new: Suggestion, event: Event, expected_version: int, record: IdempotencyRecord | None,
        recipients: Sequence[str], personal: PersonalRecord | None = None, redacted: Sequence[Event] = (),
        forget_keys: bool = False,
    ) -> Event:
        payload = {"state": new.state.value}  # one for the command's messages: they say the same
        messages = tuple(
            OutboxMessage(topic=event.kind, suggestion_id=new.id, version=new.version, recipient=r,
                          created_at=event.at, payload=payload)
            for r in recipients
        )
        return self.store.commit(Change(suggestion=new, event=event, expected_version=expected_version,
                                        messages=messages, idempotency=record, personal_data=personal,
                                        redacted=tuple(redacted), forget_keys=forget_keys))

    def _commit(
        self, actor: Actor, new: Suggestion, event: Event, expected_version: int, record: IdempotencyRecord | None,
        recipients: Sequence[str], personal: PersonalRecord | None = None,
    ) -> Suggestion:
        """Commit a new suggestion; a racing retry under the same key gets the winner's result."""
        try:
            self._commit_change(new, event, expected_version, record, recipients, personal)
        except (ConcurrencyConflict, IdempotencyKeyReused, DuplicateSuggestion):
            if record is not None:
                done = self._replayed(actor, record.key, record.command, record.fingerprint)
                if done is not None:
                    return done
            raise
        return self._view(actor, new)


def _erasing(kind: str) -> Changes:
    def changes(s: Suggestion, now: dt.datetime) -> dict[str, Any]:
        p = s.proposer
        return {"proposer": Proposer(name=ERASURE_LABELS[kind], kind=p.kind, confidential=p.confidential,
                                     vaulted=True, erased=kind)}
    return changes


def _tombstone(s: Suggestion, now: dt.datetime, version: int) -> PersonalRecord:
    return PersonalRecord.tombstone(s.id, now, version)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _state_set(states: Iterable[State] | None) -> frozenset[State] | None:
    if states is None:
        return None
    if isinstance(states, (str, bytes)) or not isinstance(states, Iterable):
        raise ValidationError("states", "must be a list of states, not a single value", code="not_a_list")
    return frozenset(v.member("states", State, s) for s in states)


def _opt_aware(field: str, value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else v.aware(field, value)


def _codes_arg(value: object) -> object:
    return tuple(value) if isinstance(value, (list, tuple)) else value


_RELATION_FILTERS: Mapping[Relation, str] = {Relation.LEAD: "lead_unit", Relation.CO_HANDLING: "co_unit",
                                              Relation.RECOMMENDING: "recommending_unit"}


def _relation_filter(relation: Relation | None, unit: str | None) -> dict[str, Any]:
    if unit is None:
        return {}
    if relation is None:
        return {"unit": unit}
    return {_RELATION_FILTERS[relation]: unit}


"""jianyi_flow: a people's-suggestion (人民建议) campaign as persisted state machines.

The public API, in the order data flows: a portal calls :class:`Flow` with an
:class:`Actor`; ``Flow`` asks the workflow (defined once with ``transitions``) where a
command leads and commits the new :class:`Suggestion` with its :class:`Event` through a
:class:`Store` (:class:`MemoryStore` here, ``jianyi_flow.sql.SqlStore`` for databases).
Time always comes from an injected :class:`Clock`.
"""

from .domain.calendar import BusinessCalendar, ChinaCalendar, default_calendar
from .domain.clock import SHANGHAI, Clock, FakeClock, SystemClock
from .domain.deadlines import DEFAULT_POLICY, CalendarDays, DeadlinePolicy, Step, WorkingDays
from .domain.model import (
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
    replay,
)
from .errors import (
    CalendarNotCovered,
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    InvalidTransition,
    JianyiFlowError,
    NotFound,
    PermissionDenied,
    PhaseClosed,
    StoreError,
    ValidationError,
)
from .service.flow import Flow
from .storage.base import Change, OutboxMessage, Query, Store
from .storage.memory import MemoryStore

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_POLICY",
    "SHANGHAI",
    "Actor",
    "BusinessCalendar",
    "CalendarDays",
    "CalendarNotCovered",
    "Change",
    "Channel",
    "ChinaCalendar",
    "Clock",
    "ConcurrencyConflict",
    "DeadlinePolicy",
    "DuplicateSuggestion",
    "Evaluation",
    "Event",
    "FakeClock",
    "Flow",
    "IdempotencyKeyReused",
    "InvalidTransition",
    "JianyiFlowError",
    "MemoryStore",
    "NotFound",
    "OutboxMessage",
    "Outcome",
    "PermissionDenied",
    "PhaseClosed",
    "Proposer",
    "ProposerKind",
    "Query",
    "Rating",
    "ReportForm",
    "RewardTier",
    "Role",
    "State",
    "Step",
    "Store",
    "StoreError",
    "Suggestion",
    "SuggestionDraft",
    "SystemClock",
    "ValidationError",
    "WorkingDays",
    "default_calendar",
    "replay",
]

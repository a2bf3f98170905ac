"""jianyi_flow: a people's-suggestion (人民建议) campaign as persisted state machines.

The public API, in the order data flows: a portal calls :class:`Flow` with an
:class:`Actor`; ``Flow`` asks the workflow (defined once with ``transitions``) where a
command leads and commits the new :class:`Suggestion` with its :class:`Event` through a
:class:`Store` (:class:`MemoryStore` here, ``jianyi_flow.sql.SqlStore`` for databases).
Time always comes from an injected :class:`Clock`.

The layers: :mod:`jianyi_flow.domain` (what a suggestion is and its rules),
:mod:`jianyi_flow.service` (``Flow``, guards, permissions, visibility) and
:mod:`jianyi_flow.storage` (the store interface and its backends).
"""

from .domain.calendar import (
    BusinessCalendar,
    CalendarMode,
    CalendarOverrides,
    ChinaCalendar,
    calendar_health,
    default_calendar,
    strict_calendar,
)
from .domain.clock import SHANGHAI, Clock, FakeClock, SystemClock
from .domain.codec import replay
from .domain.deadlines import DEFAULT_POLICY, CalendarDays, DeadlinePolicy, Due, WorkingDays
from .domain.model import (
    Actor,
    AdoptionForm,
    Channel,
    Evaluation,
    Event,
    ExtensionRequest,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Step,
    Suggestion,
    SuggestionDraft,
)
from .domain.personal import PersonalRecord
from .domain.workflow import WORKFLOW, Workflow
from .errors import (
    CalendarNotCovered,
    ClockWentBackwards,
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    InvalidTransition,
    JianyiFlowError,
    MigrationMissing,
    NotFound,
    PermissionDenied,
    PhaseClosed,
    PhaseWindow,
    Problem,
    SchemaMismatch,
    StoreError,
    ValidationError,
    WindowClosed,
)
from .service.audit import Anchor, Checkpoint
from .service.campaign_flow import make_flow
from .service.flow import (
    Availability,
    AvailableCommand,
    ErasureResult,
    Flow,
    FlowCalendarHealth,
    Page,
    Relation,
    RetimeResult,
    UnavailableCommand,
)
from .service.permissions import ALLOW_ALL, PermissionGuard, PermissionTable
from .storage.base import (
    BatchingStore,
    Change,
    HistoryScanner,
    IdempotencyRecord,
    MetadataStore,
    Order,
    OutboxMessage,
    PersonalDataVault,
    Query,
    Store,
    TransactingStore,
)
from .storage.memory import MemoryStore

__version__ = "0.2.0"

__all__ = [
    "ALLOW_ALL",
    "DEFAULT_POLICY",
    "SHANGHAI",
    "WORKFLOW",
    "Actor",
    "AdoptionForm",
    "Anchor",
    "Availability",
    "AvailableCommand",
    "BatchingStore",
    "BusinessCalendar",
    "CalendarDays",
    "CalendarMode",
    "CalendarNotCovered",
    "CalendarOverrides",
    "Change",
    "Channel",
    "Checkpoint",
    "ChinaCalendar",
    "Clock",
    "ClockWentBackwards",
    "ConcurrencyConflict",
    "DeadlinePolicy",
    "Due",
    "DuplicateSuggestion",
    "ErasureResult",
    "Evaluation",
    "Event",
    "ExtensionRequest",
    "FakeClock",
    "Flow",
    "FlowCalendarHealth",
    "HistoryScanner",
    "IdempotencyKeyReused",
    "IdempotencyRecord",
    "InvalidTransition",
    "JianyiFlowError",
    "MemoryStore",
    "MetadataStore",
    "MigrationMissing",
    "NotFound",
    "Order",
    "OutboxMessage",
    "Outcome",
    "Page",
    "PermissionDenied",
    "PermissionGuard",
    "PermissionTable",
    "PersonalDataVault",
    "PersonalRecord",
    "PhaseClosed",
    "PhaseWindow",
    "Problem",
    "Proposer",
    "ProposerKind",
    "Query",
    "Rating",
    "Relation",
    "ReplyForm",
    "ReportForm",
    "ResearchMethod",
    "RetimeResult",
    "RewardTier",
    "Role",
    "SchemaMismatch",
    "State",
    "Step",
    "Store",
    "StoreError",
    "Suggestion",
    "SuggestionDraft",
    "SystemClock",
    "TransactingStore",
    "UnavailableCommand",
    "ValidationError",
    "WindowClosed",
    "Workflow",
    "WorkingDays",
    "calendar_health",
    "default_calendar",
    "make_flow",
    "replay",
    "strict_calendar",
]

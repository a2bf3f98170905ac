"""The library's errors: one base class, one subclass per way a command can fail.

Every error a caller can see from :class:`jianyi_flow.Flow` or a store is a
:class:`JianyiFlowError`; no driver or third-party exception leaks through.  A command
that raises wrote nothing.
"""

from __future__ import annotations

from collections.abc import Sequence


class JianyiFlowError(Exception):
    """Base class of every error raised by jianyi_flow."""


class InvalidTransition(JianyiFlowError):
    """A command is not allowed in the suggestion's current state."""

    def __init__(self, command: str, state: str, allowed: Sequence[str] = (), detail: str | None = None) -> None:
        self.command = command
        self.state = state
        self.allowed = tuple(allowed)
        self.detail = detail
        if detail is not None:
            hint = f": {detail}"
        else:
            hint = f"; allowed in {state!r}: {', '.join(self.allowed) or 'nothing (final state)'}"
        super().__init__(f"command {command!r} is not allowed in state {state!r}{hint}")


class ValidationError(JianyiFlowError, ValueError):
    """An input broke a documented rule.  ``field`` names the input, ``rule`` the rule."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class NotFound(JianyiFlowError, LookupError):
    """No suggestion (or other record) with that id exists."""

    def __init__(self, what: str, key: object) -> None:
        self.what = what
        self.key = key
        super().__init__(f"{what} {key!r} not found")


class DuplicateSuggestion(JianyiFlowError):
    """A suggestion with that id already exists."""

    def __init__(self, suggestion_id: str) -> None:
        self.suggestion_id = suggestion_id
        super().__init__(f"suggestion {suggestion_id!r} already exists")


class ConcurrencyConflict(JianyiFlowError):
    """Someone else changed the suggestion first: the expected version is stale.

    Nothing was written.  Reload the suggestion and decide again.
    """

    def __init__(self, suggestion_id: str, expected_version: int, actual_version: int | None = None) -> None:
        self.suggestion_id = suggestion_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        found = "" if actual_version is None else f", found version {actual_version}"
        super().__init__(
            f"suggestion {suggestion_id!r} changed concurrently: expected version {expected_version}{found}"
        )


class PhaseClosed(JianyiFlowError):
    """A command was issued outside the campaign phase window that allows it."""

    def __init__(self, command: str, day: object, windows: str) -> None:
        self.command = command
        self.day = day
        self.windows = windows
        super().__init__(f"command {command!r} is not open on {day}: allowed {windows}")


class PermissionDenied(JianyiFlowError):
    """The actor's role or unit may not run this command on this suggestion."""

    def __init__(self, actor: str, command: str, reason: str) -> None:
        self.actor = actor
        self.command = command
        self.reason = reason
        super().__init__(f"{actor} may not {command}: {reason}")


class CalendarNotCovered(JianyiFlowError, LookupError):
    """The business calendar has no holiday schedule for that year; it never guesses."""

    def __init__(self, year: int, covered: str) -> None:
        self.year = year
        self.covered = covered
        super().__init__(
            f"no holiday schedule is known for {year} (covered: {covered}); "
            "add the State Council notice for that year as calendar overrides"
        )


class StoreError(JianyiFlowError):
    """The storage backend failed (connection lost, disk full...).  Nothing was written."""


class IdempotencyKeyReused(JianyiFlowError):
    """An idempotency key was reused for a different command or suggestion."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        super().__init__(f"idempotency key {key!r} was already used for {detail}")

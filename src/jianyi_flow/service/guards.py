"""Command guards: rules checked before a command runs (campaign phases, permissions...).

A guard looks at who wants to run which command on which suggestion and when, and
raises a :class:`~jianyi_flow.errors.JianyiFlowError` subclass to refuse.  Guards run
before anything is computed or written, so a refused command writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from ..domain.model import Actor, Suggestion, SuggestionDraft


@attrs.frozen
class CommandContext:
    """What a guard is shown: the command, the actor, the time and the target."""

    command: str
    actor: Actor
    now: dt.datetime
    suggestion: Suggestion | None = None
    """The current row (``None`` for ``receive``)."""
    draft: SuggestionDraft | None = None
    """What is being received (``receive`` only)."""
    args: Mapping[str, Any] = attrs.field(factory=dict)
    """The command's own arguments (``lead_unit`` for transfer...)."""


class Guard(Protocol):
    """A rule that may refuse a command by raising."""

    def check(self, ctx: CommandContext) -> None: ...

"""The library's Chinese labels and error messages, in one place for the portal's templates."""

from __future__ import annotations

from jianyi_flow import labels
from jianyi_flow.errors import JianyiFlowError, ValidationError


def command_label(command: str) -> str:
    """The Chinese name of a command."""
    return labels.command_label(command)


def describe(exc: JianyiFlowError) -> tuple[str, str]:
    """``(code, message_zh)`` of a library error: the stable code and the message shown to people."""
    return exc.code, exc.message_zh


def problems_of(exc: JianyiFlowError) -> dict[str, str]:
    """Field → Chinese message, for every problem a :class:`ValidationError` reports (shown next to the fields)."""
    if not isinstance(exc, ValidationError):
        return {}
    out: dict[str, str] = {}
    for problem in exc.problems:
        out.setdefault(problem.field, problem.message_zh)
    return out


__all__ = ["command_label", "describe", "labels", "problems_of"]

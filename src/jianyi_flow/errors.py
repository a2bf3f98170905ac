"""The library's errors: one base class, one subclass per way a command can fail.

Every error a caller can see from :class:`jianyi_flow.Flow` or a store is a
:class:`JianyiFlowError`; no driver or third-party exception leaks through.  A command
that raises wrote nothing.  Every error carries:

* ``code`` — a stable machine code (``"not_found"``, ``"phase_closed"``...); a
  :class:`ValidationError` with one problem has the code of the rule it broke
  (``"required"``, ``"too_long"``...).  Match on codes, never on message wording.
* ``field`` and ``fields`` — the input(s) involved (``None`` and ``()`` when none is).
* ``details`` — structured, JSON-ready data: limits as numbers, days and times as ISO
  text, allowed values as lists.
* ``str(exc)`` (also ``message``) — the English message, for logs and developers.
* ``message_zh`` — a Chinese message written for a citizen or a clerk, built from the
  structured data and the labels of :mod:`jianyi_flow.labels`.
* ``to_dict()`` — all of the above for a JSON API.

docs/glossary.md lists every code with its Chinese message (:func:`catalogue`).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from . import labels

__all__ = [
    "ERRORS",
    "RULES",
    "CalendarNotCovered",
    "ClockWentBackwards",
    "ConcurrencyConflict",
    "DuplicateSuggestion",
    "IdempotencyKeyReused",
    "InvalidTransition",
    "JianyiFlowError",
    "MigrationMissing",
    "NotFound",
    "PermissionDenied",
    "PhaseClosed",
    "PhaseWindow",
    "Problem",
    "SchemaMismatch",
    "StoreError",
    "ValidationError",
    "WindowClosed",
    "catalogue",
]

_SHANGHAI = ZoneInfo("Asia/Shanghai")


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dates and times as ISO text, enum members as their
    values, tuples and sets as lists (sets sorted), mappings as dicts with text keys."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def zh_date(day: dt.date) -> str:
    """2024-08-01 → ``2024年8月1日``."""
    return f"{day.year}年{day.month}月{day.day}日"


def zh_time(when: dt.datetime) -> str:
    """An aware time as a clerk reads it, in Asia/Shanghai: the day alone for a deadline
    (the end of its day), else the day and the minute (``2024年8月9日 17:30``)."""
    local = when.astimezone(_SHANGHAI) if when.tzinfo is not None else when
    if local.time() == dt.time(23, 59, 59, 999999):
        return zh_date(local.date())
    return f"{zh_date(local.date())} {local:%H:%M}"


def _quoted(text: str) -> str:
    return f"“{text}”"


def _field_zh(field: str) -> str:
    """A field's Chinese name, or its code in quotes when it has none."""
    return labels.field_label(field) or _quoted(field)


class JianyiFlowError(Exception):
    """Base class of every error raised by jianyi_flow.

    ``JianyiFlowError(message)`` (and ``StoreError(message)``) still works: the code is
    the class's, the Chinese message the class's ``summary_zh``.
    """

    code: str = "error"
    """The stable machine code (class default; an instance may be more precise)."""
    summary_zh: str = "操作未能完成，请稍后重试；如仍不成功，请联系工作人员。"
    """The class's Chinese message when nothing more precise can be said."""

    def __init__(
        self,
        message: str = "",
        *,
        field: str | None = None,
        fields: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
        message_zh: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        named = [field] if field is not None else []
        self.fields: tuple[str, ...] = tuple(dict.fromkeys([*named, *fields]))
        self.field: str | None = self.fields[0] if self.fields else None
        self.details: dict[str, Any] = plain(details or {})
        self.message_zh: str = message_zh or self.summary_zh

    @property
    def message(self) -> str:
        """The English message (``str(exc)``)."""
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data (``json.dumps`` takes it as is)."""
        return {
            "error": type(self).__name__,
            "code": self.code,
            "message": self.message,
            "message_zh": self.message_zh,
            "field": self.field,
            "fields": list(self.fields),
            "details": self.details,
        }


class InvalidTransition(JianyiFlowError):
    """A command is not allowed in the suggestion's current state.

    ``detail`` replaces the list of allowed commands in the English message (a rule
    beyond the state machine: "only once..."); ``detail_zh`` says the same in Chinese.
    """

    code = "invalid_transition"
    summary_zh = "该建议当前的状态不允许这项操作，请刷新后查看。"

    def __init__(
        self,
        command: str,
        state: str,
        allowed: Sequence[str] = (),
        detail: str | None = None,
        *,
        detail_zh: str | None = None,
    ) -> None:
        self.command = command
        self.state = state
        self.allowed = tuple(allowed)
        self.detail = detail
        if detail is not None:
            hint = f": {detail}"
        else:
            hint = f"; allowed in {state!r}: {', '.join(self.allowed) or 'nothing (final state)'}"
        state_zh = _quoted(labels.code_label(labels.STATE, state))
        zh = f"该建议当前处于{state_zh}状态，不能进行{_quoted(labels.command_label(command))}操作"
        if detail_zh is not None:
            zh += f"：{detail_zh}"
        elif detail is None and self.allowed:
            zh += "；当前可进行的操作：" + "、".join(labels.command_label(c) for c in self.allowed)
        elif detail is None:
            zh += "；当前状态下不能再进行任何操作"
        details: dict[str, Any] = {"command": command, "state": state, "allowed": list(self.allowed)}
        if detail is not None:
            details["detail"] = detail
        super().__init__(f"command {command!r} is not allowed in state {state!r}{hint}", details=details,
                         message_zh=zh + "。")


# --- validation ---------------------------------------------------------------------------

RULES: Mapping[str, str] = {
    "required": "请填写{field}。",
    "blank": "{field}不能为空。",
    "not_text": "{field}应为文字。",
    "too_long": "{field}最多{max_length}个字，现为{length}个字。",
    "forbidden_character": "{field}含有不允许的字符（{character}），请删除后重试。",
    "not_a_phone": "{field}应为11位手机号码或带区号的固定电话（如023-49299053）。",
    "not_a_code": "{field}格式不正确（应为1至{max_length}位字母、数字或“_”“.”“-”）。",
    "unknown_code": "{field}{value}不在可选范围内。",
    "not_one_of": "{field}不在可选范围内。",
    "not_a_list": "{field}应为多个代码组成的列表。",
    "duplicate": "{field}有重复项{value}。",
    "not_a_datetime": "{field}应为日期时间。",
    "not_aware": "{field}应为带时区的日期时间。",
    "not_a_date": "{field}应为日期（如2024-08-01）。",
    "not_a_bool": "{field}应为“是”或“否”。",
    "not_an_integer": "{field}应为整数。",
    "out_of_range": "{field}应为{min}至{max}之间的整数。",
    "too_small": "{field}不能小于{min}。",
    "wrong_type": "{field}的格式不正确。",
    "unknown_key": "{field}中有无法识别的项：{keys}。",
    "out_of_order": "{field}的日期顺序不正确。",
    "not_json": "{field}不是有效的JSON。",
    "unreadable": "无法读取{field}。",
    "accused_unit": "{field}含有该建议所反映的单位，按规定不能承办（信访工作条例第三十条）。",
    "already_done": "{field}已办理过，不能重复办理。",
    "not_applicable": "该建议当前的情况下不能填写{field}。",
    "no_vault": ("所用存储没有个人信息库，建议人的个人信息将写入无法删除的历史记录；"
                 "请改用带个人信息库的存储，或明确设置{field}为False。"),
    "invalid": "{field}填写有误，请检查后重试。",
}
"""The rule codes of :class:`ValidationError` and their Chinese message templates.

``{field}`` is the field's Chinese name (:data:`jianyi_flow.labels.FIELD`, else its code in
quotes); the other placeholders are keys of the problem's ``details`` (``{value}`` is shown in
quotes).  A problem with a
code not listed here, or whose details lack a placeholder, gets the ``invalid`` message."""


def _rule_zh(field: str, code: str, details: Mapping[str, Any]) -> str:
    values = {k: (_quoted(v) if k == "value" else ("、".join(map(str, v)) if isinstance(v, list) else v))
              for k, v in details.items()}
    template = RULES.get(code, RULES["invalid"])
    try:
        return template.format(**{**values, "field": _field_zh(field)})
    except (KeyError, IndexError):
        return RULES["invalid"].format(field=_field_zh(field))


@attrs.frozen
class Problem:
    """One broken rule: the field, the rule's code, the English rule, the Chinese message, details.

    Build one with :meth:`of` (which writes ``message_zh`` from :data:`RULES`).
    """

    field: str
    code: str
    rule: str
    """The English rule as the message states it, e.g. ``is required``."""
    message_zh: str
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    @classmethod
    def of(
        cls, field: str, code: str, rule: str, details: Mapping[str, Any] | None = None, message_zh: str | None = None
    ) -> Problem:
        found = plain(details or {})
        return cls(field, code, rule, message_zh or _rule_zh(field, code, found), found)

    @property
    def message(self) -> str:
        """The English message: ``title: is required``."""
        return f"{self.field}: {self.rule}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "code": self.code, "message": self.message, "message_zh": self.message_zh,
                "details": dict(self.details)}


class ValidationError(JianyiFlowError, ValueError):
    """An input broke a documented rule.  ``field`` names the input, ``rule`` the rule.

    It carries one or more :class:`Problem` records in ``problems``; ``field`` and
    ``rule`` are those of the first, ``fields`` those of all.  With one problem ``code``
    and ``details`` are the problem's (see :data:`RULES`; ``ValidationError(field, rule)``
    without a code has the generic code ``invalid``).  With several (:meth:`many`) ``code``
    is ``"validation"``, ``details`` is empty, the messages join the problems' messages,
    and each problem has its own code and details.  ``more`` adds problems after the first.
    """

    code = "validation"
    summary_zh = "填写的内容有误，请按提示修改后重试。"

    def __init__(
        self,
        field: str,
        rule: str,
        *,
        code: str = "invalid",
        details: Mapping[str, Any] | None = None,
        message_zh: str | None = None,
        more: Sequence[Problem] = (),
    ) -> None:
        first = Problem.of(field, code, rule, details, message_zh)
        self.problems: tuple[Problem, ...] = (first, *more)
        self.rule = rule
        if more:
            super().__init__("; ".join(p.message for p in self.problems),
                             fields=[p.field for p in self.problems],
                             message_zh="".join(p.message_zh for p in self.problems))
        else:
            super().__init__(first.message, field=field, details=first.details, message_zh=first.message_zh,
                             code=code)

    @classmethod
    def many(cls, problems: Iterable[Problem]) -> ValidationError:
        """One error for every problem found (say, by :func:`~jianyi_flow.domain.validation.check_draft`)."""
        found = tuple(problems)
        if not found:
            raise ValueError("ValidationError.many needs at least one problem")
        first = found[0]
        return cls(first.field, first.rule, code=first.code, details=first.details, message_zh=first.message_zh,
                   more=found[1:])

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "problems": [p.to_dict() for p in self.problems]}


# --- the other errors -----------------------------------------------------------------------


class NotFound(JianyiFlowError, LookupError):
    """No suggestion (or other record: ``what``) with that id exists."""

    code = "not_found"
    summary_zh = "未找到相关记录，请核对后重试。"

    def __init__(self, what: str, key: object) -> None:
        self.what = what
        self.key = key
        thing = labels.code_label(labels.RECORD, what)
        super().__init__(f"{what} {key!r} not found", details={"what": what, "key": key},
                         message_zh=f"未找到{thing}{_quoted(str(key))}，请核对后重试。")


class DuplicateSuggestion(JianyiFlowError):
    """A suggestion with that id already exists."""

    code = "duplicate_suggestion"
    summary_zh = "该建议已经提交过，请勿重复提交。"

    def __init__(self, suggestion_id: str) -> None:
        self.suggestion_id = suggestion_id
        super().__init__(f"suggestion {suggestion_id!r} already exists", details={"suggestion_id": suggestion_id})


class ConcurrencyConflict(JianyiFlowError):
    """Someone else changed the suggestion first: the expected version is stale.

    Nothing was written.  Reload the suggestion and decide again.
    """

    code = "concurrency_conflict"
    summary_zh = "该建议已被他人处理，请刷新后重试。"

    def __init__(self, suggestion_id: str, expected_version: int, actual_version: int | None = None) -> None:
        self.suggestion_id = suggestion_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        found = "" if actual_version is None else f", found version {actual_version}"
        super().__init__(
            f"suggestion {suggestion_id!r} changed concurrently: expected version {expected_version}{found}",
            details={"suggestion_id": suggestion_id, "expected_version": expected_version,
                     "actual_version": actual_version},
        )


@attrs.frozen
class PhaseWindow:
    """One campaign phase a command is open in: its code, Chinese name and inclusive days."""

    code: str
    name_zh: str
    start: dt.date
    end: dt.date

    @property
    def text(self) -> str:
        """``launch 启动阶段 2024-08-01..2024-08-20`` (as :attr:`Phase.window` writes it)."""
        return f"{self.code} {self.name_zh} {self.start.isoformat()}..{self.end.isoformat()}"


class PhaseClosed(JianyiFlowError):
    """A command was issued outside the campaign phase windows that allow it.

    ``phases`` are those windows (:class:`PhaseWindow`), ``periods`` their (first day,
    last day) pairs and ``windows`` their text; build it with
    :meth:`~jianyi_flow.domain.campaign.Campaign.phase_closed`.  ``windows`` may still be
    given as text alone (then ``phases`` is empty).
    """

    code = "phase_closed"
    summary_zh = "当前不在该项工作的开放时间内。"

    def __init__(self, command: str, day: dt.date, windows: str | None = None, *,
                 phases: Sequence[PhaseWindow] = ()) -> None:
        self.command = command
        self.day = day
        self.phases = tuple(phases)
        self.periods: tuple[tuple[dt.date, dt.date], ...] = tuple((p.start, p.end) for p in self.phases)
        self.windows = windows if windows is not None else ", ".join(p.text for p in self.phases) or "never"
        zh = f"{zh_date(day)}不在{_quoted(labels.command_label(command))}的开放时间内"
        if self.phases:
            zh += "，开放时间：" + "、".join(f"{p.name_zh}（{zh_date(p.start)}至{zh_date(p.end)}）"
                                          for p in self.phases)
        elif windows is not None:
            zh += f"，开放时间：{windows}"
        super().__init__(
            f"command {command!r} is not open on {day}: allowed {self.windows}",
            details={"command": command, "day": day, "windows": [
                {"phase": p.code, "name": p.name_zh, "start": p.start, "end": p.end} for p in self.phases]},
            message_zh=zh + "。",
        )


class WindowClosed(JianyiFlowError):
    """A time window that allows a command has closed (or never opened).

    E.g. the lead unit's 5-working-day objection window for returning a misrouted
    transfer (信访工作条例 Art. 23): ``WindowClosed("return_transfer", "objection",
    closed_at, field="objection_due_at", source="信访工作条例 Art. 23")``.  ``window`` is a
    code (see :data:`jianyi_flow.labels.WINDOW`); ``closed_at`` ``None`` means there is no
    such window for this suggestion now.  Not a :class:`ValidationError`: the input was
    fine, the time was not.
    """

    code = "window_closed"
    summary_zh = "办理期限已过，不能再进行这项操作。"

    def __init__(self, command: str, window: str, closed_at: dt.datetime | None, *, field: str | None = None,
                 source: str | None = None) -> None:
        self.command = command
        self.window = window
        self.closed_at = closed_at
        self.source = source
        name = window.replace("_", " ")
        cited = f" ({source})" if source else ""
        window_zh = labels.code_label(labels.WINDOW, window)
        doing = f"不能再进行{_quoted(labels.command_label(command))}操作"
        if closed_at is None:
            english = f"command {command!r} is refused: the {name} window is not open{cited}"
            zh = f"{window_zh}未开放或已结束，{doing}"
        else:
            english = f"command {command!r} is refused: the {name} window closed at {closed_at.isoformat()}{cited}"
            zh = f"{window_zh}已于{zh_time(closed_at)}截止，{doing}"
        if source:
            zh += f"（{source}）"
        super().__init__(english, field=field, message_zh=zh + "。",
                         details={"command": command, "window": window, "closed_at": closed_at, "source": source})


class PermissionDenied(JianyiFlowError):
    """The actor's role or unit may not run this command on this suggestion.

    ``reason`` is English; ``reason_zh``, when given, is added to the Chinese message.
    """

    code = "permission_denied"
    summary_zh = "您没有权限进行这项操作。"

    def __init__(self, actor: str, command: str, reason: str, *, reason_zh: str | None = None) -> None:
        self.actor = actor
        self.command = command
        self.reason = reason
        zh = f"您没有权限对该建议进行{_quoted(labels.command_label(command))}操作"
        if reason_zh:
            zh += f"：{reason_zh}"
        super().__init__(f"{actor} may not {command}: {reason}", message_zh=zh + "。",
                         details={"actor": actor, "command": command, "reason": reason})


class CalendarNotCovered(JianyiFlowError, LookupError):
    """The business calendar has no holiday schedule for that year; it never guesses."""

    code = "calendar_not_covered"
    summary_zh = "尚未录入该年度的法定节假日安排，暂时无法计算办理期限，请联系管理员。"

    def __init__(self, year: int, covered: str) -> None:
        self.year = year
        self.covered = covered
        super().__init__(
            f"no holiday schedule is known for {year} (covered: {covered}); "
            "add the State Council notice for that year as calendar overrides",
            details={"year": year, "covered": covered},
            message_zh=f"尚未录入{year}年的法定节假日安排，暂时无法计算办理期限，请联系管理员。",
        )


class ClockWentBackwards(JianyiFlowError):
    """A command's time is before the suggestion's last change: the clock went backwards.

    Nothing was written: a history must not run backwards in time.
    """

    code = "clock_went_backwards"
    summary_zh = "系统时间早于该建议上一次办理的时间，操作未执行，请联系管理员检查服务器时钟。"

    def __init__(self, suggestion_id: str, at: dt.datetime, previous_at: dt.datetime) -> None:
        self.suggestion_id = suggestion_id
        self.at = at
        self.previous_at = previous_at
        super().__init__(
            f"suggestion {suggestion_id!r}: the time {at.isoformat()} is before its last change at "
            f"{previous_at.isoformat()} (the clock went backwards)",
            details={"suggestion_id": suggestion_id, "at": at, "previous_at": previous_at},
        )


class StoreError(JianyiFlowError):
    """The storage backend failed (connection lost, disk full...).  Nothing was written."""

    code = "store_error"
    summary_zh = "数据暂时无法读取或保存，请稍后重试；如仍不成功，请联系管理员。"


class SchemaMismatch(StoreError):
    """The database schema is not the revision this version needs: an operator must upgrade it.

    ``url`` goes into the command to run; pass it with its password hidden.
    """

    code = "schema_mismatch"
    summary_zh = "数据库结构版本与本程序不一致，请管理员先升级数据库。"

    def __init__(self, found: str | None, expected: str, *, url: str = "URL") -> None:
        self.found = found
        self.expected = expected
        self.run = f"jianyi-flow db upgrade {url}"
        super().__init__(
            f"the database schema is at revision {found or '(none)'}, this version needs {expected}: "
            f"run `{self.run}`",
            details={"found": found, "expected": expected, "run": self.run},
            message_zh=f"数据库结构版本（{found or '无'}）与本程序需要的版本（{expected}）不一致，"
                       f"请管理员先运行 {self.run}。",
        )


class MigrationMissing(StoreError):
    """Stored data names a workflow state or command the running definition does not have.

    ``kind`` is ``"state"`` or ``"command"``; ``migration`` names the migration that
    converts it, when one is known.
    """

    code = "migration_missing"
    summary_zh = "数据中有本程序无法识别的内容，请管理员先运行数据迁移。"

    _KIND_ZH: Mapping[str, str] = {"state": "办理状态", "command": "操作"}

    def __init__(self, kind: str, value: str, *, migration: str | None = None,
                 suggestion_id: str | None = None) -> None:
        self.kind = kind
        self.value = value
        self.migration = migration
        self.suggestion_id = suggestion_id
        where = f" (suggestion {suggestion_id!r})" if suggestion_id is not None else ""
        needed = f"run migration {migration}" if migration else "a data migration is needed"
        zh_needed = f"数据迁移 {migration}" if migration else "数据迁移"
        super().__init__(
            f"stored {kind} {value!r}{where} is not in this workflow definition: {needed}",
            details={"kind": kind, "value": value, "migration": migration, "suggestion_id": suggestion_id},
            message_zh=f"数据中有本程序无法识别的{self._KIND_ZH.get(kind, kind)}{_quoted(value)}，"
                       f"请管理员先运行{zh_needed}。",
        )


class IdempotencyKeyReused(JianyiFlowError):
    """An idempotency key was reused for a different command or suggestion."""

    code = "idempotency_key_reused"
    summary_zh = "该提交编号已用于另一项操作，请刷新页面后重新提交。"

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        super().__init__(f"idempotency key {key!r} was already used for {detail}",
                         details={"key": key, "used_for": detail})


# --- the catalogue ------------------------------------------------------------------------

ERRORS: tuple[type[JianyiFlowError], ...] = (
    JianyiFlowError,
    ValidationError,
    InvalidTransition,
    NotFound,
    DuplicateSuggestion,
    ConcurrencyConflict,
    PhaseClosed,
    WindowClosed,
    PermissionDenied,
    CalendarNotCovered,
    ClockWentBackwards,
    IdempotencyKeyReused,
    StoreError,
    SchemaMismatch,
    MigrationMissing,
)
"""Every error class of this module, in the order docs list them."""


def catalogue() -> str:
    """The error codes of docs/glossary.md, as Markdown: each class's code and Chinese
    message, then each validation rule's code and Chinese template."""
    lines = ["| code | class | 中文 (general message) |", "|---|---|---|"]
    lines.extend(f"| `{e.code}` | `{e.__name__}` | {e.summary_zh} |" for e in ERRORS)
    lines += ["", "Rule codes of a `ValidationError` (`{field}` is the field's Chinese name; other "
              "placeholders are keys of `details`):", "", "| code | 中文 |", "|---|---|"]
    lines.extend(f"| `{code}` | {template} |" for code, template in RULES.items())
    return "\n".join(lines) + "\n"

"""Command forms, built from the library's own description of each command's arguments.

``Flow.available_commands`` says which commands an actor may run now and gives each one's
:class:`~jianyi_flow.service.commands.Argument`\\ s (name, kind, required, choices, range).
:func:`fields` turns those into form fields with Chinese labels; :func:`parse` turns a
posted form back into the keyword arguments of the ``Flow`` method.  Nothing here knows a
particular command: a command added to the library gets a form without a change here.
Values are passed on as typed (an empty text is ``None``, a number stays text if it is not
one), so the library's validation — not the portal's — says what is wrong, in Chinese.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.service.commands import Argument

from .compat import labels

LABEL_OVERRIDES: Mapping[tuple[str, str], str] = {
    ("reply", "form"): "答复方式",
    ("report_upward", "form"): "呈报方式",
    ("record_adoption", "form"): "转化形式",
    ("research", "method"): "调研论证方式",
    ("reply", "text"): "答复内容",
    ("not_accept", "reason"): "不予受理理由",
    ("object_transfer", "reason"): "异议理由（不属于本单位职责的依据）",
    ("decide", "reason"): "理由（不予采纳时必填）",
    ("decide", "adopted_part"): "采纳部分（部分采纳时必填）",
}
"""Labels that depend on the command: one field name (``form``) means different things."""

CHOICE_TABLES: Sequence[Mapping[str, str]] = tuple(labels.BY_ENUM.values())


@attrs.frozen
class Option:
    value: str
    label: str


@attrs.frozen
class Field:
    name: str
    label: str
    widget: str
    """``input``, ``textarea``, ``number``, ``select`` or ``checkboxes``."""
    required: bool
    options: tuple[Option, ...] = ()
    minimum: int | None = None
    maximum: int | None = None


def _choice_labels(choices: Sequence[str]) -> Mapping[str, str]:
    """The label table whose codes are exactly ``choices`` (Argument names the values, not the enum)."""
    wanted = set(choices)
    for table in CHOICE_TABLES:
        if set(table) == wanted:
            return table
    return {}


def _unit_options(campaign: Campaign) -> tuple[Option, ...]:
    return tuple(Option(u.code, u.name) for u in campaign.units if not u.organiser)


def field_for(command: str, arg: Argument, campaign: Campaign) -> Field:
    label = LABEL_OVERRIDES.get((command, arg.name)) or labels.field_label(arg.name) or arg.name
    if arg.kind == "choice":
        table = _choice_labels(arg.choices)
        options = tuple(Option(c, table.get(c, c)) for c in arg.choices)
        return Field(arg.name, label, "select", arg.required, options)
    if arg.kind == "code":
        return Field(arg.name, label, "select", arg.required, _unit_options(campaign))
    if arg.kind == "codes":
        return Field(arg.name, label, "checkboxes", arg.required, _unit_options(campaign))
    if arg.kind == "int":
        return Field(arg.name, label, "number", arg.required, minimum=arg.minimum, maximum=arg.maximum)
    long_text = arg.maximum is None or arg.maximum > 200
    return Field(arg.name, label, "textarea" if long_text else "input", arg.required, maximum=arg.maximum)


def fields(command: str, arguments: Sequence[Argument], campaign: Campaign) -> list[Field]:
    return [field_for(command, a, campaign) for a in arguments]


def parse(arguments: Sequence[Argument], form: Any) -> dict[str, Any]:
    """The keyword arguments for the Flow method, from a posted form (a Starlette ``FormData``)."""
    out: dict[str, Any] = {}
    for arg in arguments:
        if arg.kind == "codes":
            out[arg.name] = [v for v in form.getlist(arg.name) if isinstance(v, str) and v]
            continue
        raw = form.get(arg.name)
        value = raw.strip() if isinstance(raw, str) else None
        if not value:
            if arg.required:
                out[arg.name] = None  # the library reports the missing field in Chinese
            continue
        if arg.kind == "int":
            out[arg.name] = int(value) if value.lstrip("-").isdigit() else value
        else:
            out[arg.name] = value
    return out

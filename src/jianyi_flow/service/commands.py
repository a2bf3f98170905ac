"""What each command needs and when it may run: one table shared by the commands and the portal.

:data:`ARGUMENTS` lists, per command, the arguments a portal must collect (what
``Flow.available_commands`` offers a form for).  :data:`PRECONDITIONS` holds the rules a
command checks on the suggestion itself before it runs — beyond the workflow's states,
the campaign phases and the permission table — such as "only once, after a
'dissatisfied' rating" or "within the objection window".  ``Flow`` runs the very same
functions when a command is issued and when it lists what an actor may do, so the two
never disagree.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from .. import labels
from ..domain.model import (
    AdoptionForm,
    Outcome,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Step,
    Suggestion,
)
from ..errors import InvalidTransition, WindowClosed

__all__ = ["ARGUMENTS", "NOTICES", "PRECONDITIONS", "Argument", "Notice", "Recipient", "outbox_catalogue",
           "precondition", "recipients"]


@attrs.frozen
class Argument:
    """One argument a command takes from the person who runs it."""

    name: str
    kind: str
    """``text``, ``code`` (a unit, area... code), ``codes`` (a list of them), ``choice`` or ``int``."""
    required: bool = True
    choices: tuple[str, ...] = ()
    """The allowed values of a ``choice`` (enum values)."""
    minimum: int | None = None
    maximum: int | None = None
    """For ``int``: the allowed range; for ``text``: the longest length."""
    of: str | None = None
    """What the values are: the enum of a ``choice`` (``"Outcome"``, a key of
    :data:`jianyi_flow.labels.BY_ENUM`), or what a ``code`` or ``codes`` names (``"unit"``)."""

    @property
    def label_zh(self) -> str:
        """The argument's Chinese name (without its command: see :func:`jianyi_flow.labels.field_label`)."""
        return labels.field_label(self.name)


def _choice(name: str, kind: type[Outcome] | type[Rating] | type[ReportForm] | type[RewardTier] | type[ResearchMethod]
            | type[ReplyForm] | type[AdoptionForm], required: bool = True) -> Argument:
    return Argument(name, "choice", required, tuple(m.value for m in kind), of=kind.__name__)


_REASON = 2_000
_BODY = 10_000

ARGUMENTS: Mapping[str, tuple[Argument, ...]] = MappingProxyType({
    "register": (Argument("registration_number", "text", False, maximum=64),),
    "not_accept": (Argument("reason", "text", maximum=_REASON),),
    "transfer": (Argument("lead_unit", "code", of="unit"), Argument("co_units", "codes", False, of="unit"),
                 Argument("note", "text", False, maximum=_REASON)),
    "object_transfer": (Argument("reason", "text", maximum=_REASON),),
    "accept_objection": (Argument("note", "text", False, maximum=_REASON),),
    "reject_objection": (Argument("reason", "text", maximum=_REASON),),
    "research": (Argument("findings", "text", maximum=_BODY), _choice("method", ResearchMethod)),
    "decide": (_choice("outcome", Outcome), Argument("reason", "text", False, maximum=_REASON),
               Argument("adopted_part", "text", False, maximum=_REASON)),
    "reply": (Argument("text", "text", maximum=_BODY), _choice("form", ReplyForm)),
    "rate": (_choice("rating", Rating), Argument("comment", "text", False, maximum=_REASON)),
    "withdraw": (Argument("reason", "text", False, maximum=_REASON),),
    "reopen": (Argument("reason", "text", maximum=_REASON),),
    "request_extension": (Argument("days", "int", minimum=1, maximum=30), Argument("reason", "text", maximum=_REASON)),
    "approve_extension": (Argument("note", "text", False, maximum=_REASON),),
    "reject_extension": (Argument("reason", "text", maximum=_REASON),),
    "report_upward": (_choice("form", ReportForm), Argument("note", "text", False, maximum=_REASON)),
    "forward_to_city": (Argument("note", "text", False, maximum=_REASON),),
    "evaluate": (Argument("quality", "int", minimum=0, maximum=10), Argument("value", "int", minimum=0, maximum=10),
                 Argument("effect", "int", minimum=0, maximum=10), Argument("evaluator", "text", maximum=50)),
    "nominate_reward": (_choice("tier", RewardTier),),
    "record_adoption": (Argument("adopted_into", "text", maximum=_REASON), _choice("form", AdoptionForm, False)),
    "mark_typical": (Argument("note", "text", False, maximum=_REASON),),
    "erase_personal_data": (Argument("reason", "text", maximum=_REASON),),
})
"""Command → the arguments a person gives it (``decide``'s outcome picks the trigger)."""


_Check = Callable[[Suggestion, dt.datetime], None]

_ADOPTED = (Outcome.ADOPTED, Outcome.PARTIALLY_ADOPTED)
_EXTENSIBLE = (Step.RESEARCH, Step.REPLY)


def _not_now(command: str, s: Suggestion, detail: str) -> InvalidTransition:
    return InvalidTransition(command, s.state.value, detail=detail)


def _object_transfer(s: Suggestion, now: dt.datetime) -> None:
    if s.objection_due_at is None:
        raise _not_now("object_transfer", s, "only a fresh transfer can be objected to; "
                                             "this one was reopened or already objected to")
    if now > s.objection_due_at:
        raise WindowClosed("object_transfer", "objection", s.objection_due_at, field="objection_due_at",
                           source="信访工作条例 (2022) Art. 23 para. 3: 5 working days")


def _reopen(s: Suggestion, now: dt.datetime) -> None:
    if s.rating is not Rating.DISSATISFIED or s.reopen_count >= 1:
        raise _not_now("reopen", s, "only once, and only after a 'dissatisfied' rating")


def _request_extension(s: Suggestion, now: dt.datetime) -> None:
    if s.due_at is None or s.due_step not in _EXTENSIBLE:
        raise _not_now("request_extension", s, "only the research and reply deadlines can be extended "
                                              "(信访工作条例 Art. 22 allows no extension of registration)")
    if s.extended:
        raise _not_now("request_extension", s, "this step was already extended once")
    if s.extension_request is not None:
        raise _not_now("request_extension", s, "an extension request is already waiting for a decision")


def _pending_extension(command: str) -> _Check:
    def check(s: Suggestion, now: dt.datetime) -> None:
        if s.extension_request is None:
            raise _not_now(command, s, "no extension request is waiting for a decision")
        if s.extended:
            raise _not_now(command, s, "this step was already extended once")
    return check


def _forward_to_city(s: Suggestion, now: dt.datetime) -> None:
    if s.forwarded_to_city_at is not None:
        raise _not_now("forward_to_city", s, "already forwarded to the municipal office")


def _nominate_reward(s: Suggestion, now: dt.datetime) -> None:
    if s.outcome not in _ADOPTED:
        raise _not_now("nominate_reward", s, "only an adopted or partially adopted suggestion can be a reward "
                                             "candidate (优秀建议: adopted, with effect)")
    if s.evaluation is None:
        raise _not_now("nominate_reward", s, "a suggestion is evaluated before it is nominated for a reward")


def _record_adoption(s: Suggestion, now: dt.datetime) -> None:
    if s.outcome not in _ADOPTED:
        raise _not_now("record_adoption", s, "only an adopted or partially adopted suggestion is turned into a measure")


def _mark_typical(s: Suggestion, now: dt.datetime) -> None:
    if s.typical_case:
        raise _not_now("mark_typical", s, "already marked as a typical case")


def _erase_personal_data(s: Suggestion, now: dt.datetime) -> None:
    if s.proposer.erased:  # the command itself answers an erased one as done; this is what a portal is told
        raise InvalidTransition("erase_personal_data", s.state.value, detail="its personal data is already erased",
                                detail_zh="其个人信息已删除")
    if not s.proposer.vaulted:
        raise InvalidTransition("erase_personal_data", s.state.value,
                                detail="its personal data is still inside its history: move it to the vault first "
                                       "(Flow.vault_personal_data)",
                                detail_zh="其个人信息仍在办理记录中，请先迁移至个人信息库")


PRECONDITIONS: Mapping[str, _Check] = MappingProxyType({
    "erase_personal_data": _erase_personal_data,
    "object_transfer": _object_transfer,
    "reopen": _reopen,
    "request_extension": _request_extension,
    "approve_extension": _pending_extension("approve_extension"),
    "reject_extension": _pending_extension("reject_extension"),
    "forward_to_city": _forward_to_city,
    "nominate_reward": _nominate_reward,
    "record_adoption": _record_adoption,
    "mark_typical": _mark_typical,
})
"""Command → the rule on the suggestion it checks before running (commands not listed have none)."""


def precondition(command: str, s: Suggestion, now: dt.datetime) -> None:
    """Raise the command's refusal if its rule on ``s`` does not hold at ``now``."""
    check = PRECONDITIONS.get(command)
    if check is not None:
        check(s, now)


# --- the outbox: who hears of what ------------------------------------------------------------


class Recipient(enum.StrEnum):
    """Who an outbox message goes to, as the catalogue names them (meanings: :data:`_RECIPIENT_DOCS`)."""

    OFFICE = "office"
    PROPOSER = "proposer"
    TRANSFER_UNITS = "transfer_units"
    LEAD_UNIT_OR_OFFICE = "lead_unit_or_office"
    LEAD_UNIT_AND_OFFICE = "lead_unit_and_office"
    RESPONSIBLE = "responsible"
    LEADERSHIP = "leadership"
    MUNICIPAL_OFFICE = "municipal_office"


@attrs.frozen
class Notice:
    """The messages one command leaves in the outbox: to whom, and when only under a condition."""

    recipients: tuple[Recipient, ...]
    when: str | None = None


R = Recipient
NOTICES: Mapping[str, Notice] = MappingProxyType({
    "receive": Notice((R.OFFICE,)),
    "register": Notice((R.PROPOSER,)),
    "not_accept": Notice((R.PROPOSER,)),
    "transfer": Notice((R.TRANSFER_UNITS,)),
    "object_transfer": Notice((R.OFFICE,)),
    "accept_objection": Notice((R.LEAD_UNIT_AND_OFFICE,)),
    "reject_objection": Notice((R.LEAD_UNIT_OR_OFFICE,)),
    "reply": Notice((R.PROPOSER,)),
    "rate": Notice((R.LEAD_UNIT_OR_OFFICE,), when="the rating is 'dissatisfied' (不满意)"),
    "withdraw": Notice((R.LEAD_UNIT_OR_OFFICE,)),
    "reopen": Notice((R.LEAD_UNIT_OR_OFFICE,)),
    "approve_extension": Notice((R.PROPOSER, R.LEAD_UNIT_OR_OFFICE)),
    "reject_extension": Notice((R.LEAD_UNIT_OR_OFFICE,)),
    "report_upward": Notice((R.LEADERSHIP,)),
    "forward_to_city": Notice((R.MUNICIPAL_OFFICE,)),
    "flag_overdue": Notice((R.RESPONSIBLE,)),
})
"""Command → the outbox messages it writes (commands not listed write none).  Every message has
the command as its ``topic`` and ``{"state": <the state after the command>}`` as its payload."""
del R

_HOLDING = frozenset({"transferred", "researched", "adopted", "partially_adopted", "declined"})


def recipients(command: str, s: Suggestion, args: Mapping[str, object]) -> list[str]:
    """The recipients of ``command`` run on ``s`` (the row before it) with ``args``, per :data:`NOTICES`."""
    notice = NOTICES.get(command)
    if notice is None or (command == "rate" and args.get("rating") != Rating.DISSATISFIED):
        return []
    out: list[str] = []
    for r in notice.recipients:
        if r is Recipient.OFFICE:
            out.append("office")
        elif r is Recipient.PROPOSER:
            out.append(f"proposer:{s.id}")
        elif r is Recipient.TRANSFER_UNITS:
            co = args.get("co_units") or ()
            out.extend(f"unit:{u}" for u in (args["lead_unit"], *co))  # type: ignore[misc]
        elif r is Recipient.LEAD_UNIT_OR_OFFICE:
            out.append(f"unit:{s.lead_unit}" if s.lead_unit else "office")
        elif r is Recipient.LEAD_UNIT_AND_OFFICE:
            out.extend([f"unit:{s.lead_unit}", "office"] if s.lead_unit else ["office"])
        elif r is Recipient.RESPONSIBLE:
            out.append(f"unit:{s.lead_unit}" if s.lead_unit and s.state.value in _HOLDING else "office")
        else:
            out.append(r.value)  # leadership, municipal_office
    return out


def outbox_catalogue() -> str:
    """The outbox catalogue of docs/outbox.md, as Markdown (a test keeps the page equal to it)."""
    lines = ["| command (topic) | recipients | when |", "|---|---|---|"]
    for command, notice in NOTICES.items():
        who = ", ".join(f"`{r.value}`" for r in notice.recipients)
        lines.append(f"| `{command}` | {who} | {notice.when or 'always'} |")
    lines += ["", "| recipient | meaning |", "|---|---|"]
    lines.extend(f"| `{r.value}` | {_RECIPIENT_DOCS[r]} |" for r in Recipient)
    return "\n".join(lines) + "\n"


_RECIPIENT_DOCS: Mapping[Recipient, str] = {
    Recipient.OFFICE: "the collection office (区征集办): `office`",
    Recipient.PROPOSER: "the proposer (建议人): `proposer:<suggestion id>`",
    Recipient.TRANSFER_UNITS: "the lead and co-handling units the transfer names: `unit:<code>` each",
    Recipient.LEAD_UNIT_OR_OFFICE: "the lead unit (`unit:<code>`) if the suggestion has one, else `office`",
    Recipient.LEAD_UNIT_AND_OFFICE: "the lead unit the suggestion leaves (if any) and `office`",
    Recipient.RESPONSIBLE: "the lead unit while it handles the overdue step, else `office`",
    Recipient.LEADERSHIP: "the party committee and government (党委政府): `leadership`",
    Recipient.MUNICIPAL_OFFICE: "the municipal office (市信访办): `municipal_office`",
}

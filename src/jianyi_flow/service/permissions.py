"""Who may run which command on which suggestion, who may see it, and what they see.

Three rules protect a suggestion and its proposer:

* **Permissions.**  A :class:`PermissionTable` maps every command to the :class:`Rule`\\ s
  that allow it; a rule is a :class:`~jianyi_flow.domain.model.Role` and a :class:`Scope` (how
  the actor must relate to *this* suggestion: its lead unit, its proposer...).  The table
  is data, so a portal can read it, render it (``docs/security.md`` is rendered from it)
  and override it (:meth:`PermissionTable.with_rule`, :meth:`PermissionTable.from_mapping`)
  without touching code.  A command the table does not name is refused: a new command
  stays closed until someone decides who may run it.
* **Visibility.**  :func:`can_see` says whether an actor may see a suggestion at all.  It
  is a ceiling no table rule lifts: a unit sees only suggestions transferred (lead or co)
  or recommended to it, so it can neither read nor act on anything else.
* **Confidentiality.**  :func:`view_for` gives the suggestion as an actor may see it: the
  proposer's phone and address are masked for everyone but the collection office and the
  proposer themself, and a confidential (保密) proposer's name is masked too.

Material that accuses a unit is never transferred to that unit (信访工作条例 Art. 30, as
cited in :class:`~jianyi_flow.domain.model.SuggestionDraft`).  ``Flow.transfer`` itself refuses
such a transfer with :class:`~jianyi_flow.errors.ValidationError` (field ``lead_unit`` or
``co_units``), guards or not; :class:`PermissionGuard` raises the very same error before
anything is computed, whatever its table says, because a statute is not a portal setting.
It is a ValidationError, not a PermissionDenied: the office may transfer, the target it
named is what the rule forbids, and one rule should fail one way with or without guards.

:class:`PermissionGuard` is the :class:`~jianyi_flow.service.guards.Guard` that enforces all of
this inside :class:`~jianyi_flow.Flow`; Flow runs guards before it computes or writes
anything, so a refused command leaves the store untouched.  The guard trusts the
:class:`~jianyi_flow.domain.model.Actor` it is given: authenticating the person behind it is the
portal's job.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NoReturn

import attrs

from ..domain.model import (
    Actor,
    Role,
    State,
    Suggestion,
    SuggestionDraft,
)
from ..errors import NotFound, PermissionDenied, ValidationError
from ..storage.base import Store
from .guards import CommandContext
from .visibility import (
    FREE_TEXT_FIELDS,
    can_see,
    history_for,
    is_submitter,
    scrub,
    sees_unmasked,
    view_for,
)

__all__ = [
    "ALLOW_ALL",
    "COMMANDS",
    "DEFAULT_RULES",
    "FREE_TEXT_FIELDS",
    "ROLE_COMMANDS",
    "SYSTEM_COMMANDS",
    "AllowAll",
    "PermissionGuard",
    "PermissionTable",
    "Rule",
    "Scope",
    "accused_targets",
    "can_see",
    "history_for",
    "scrub",
    "sees_unmasked",
    "view_for",
]

COMMANDS: tuple[str, ...] = (
    "receive",
    "register",
    "not_accept",
    "transfer",
    "object_transfer",
    "accept_objection",
    "reject_objection",
    "research",
    "decide",
    "reply",
    "rate",
    "withdraw",
    "reopen",
    "request_extension",
    "approve_extension",
    "reject_extension",
    "report_upward",
    "forward_to_city",
    "evaluate",
    "nominate_reward",
    "record_adoption",
    "mark_typical",
    "close_unrated",
    "flag_overdue",
    "retime",
    "migrate_state",
    "erase_personal_data",
    "vault_personal_data",
)
"""Every command :class:`~jianyi_flow.Flow` passes to its guards, by the name guards see."""

_COMMAND_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")

SYSTEM_COMMANDS: frozenset[str] = frozenset({"close_unrated", "flag_overdue", "retime", "migrate_state",
                                             "vault_personal_data"})
"""Commands only ``Flow.tick`` runs, always as :data:`~jianyi_flow.domain.model.SYSTEM_ACTOR`."""

_HANDLED_STATES = frozenset(
    {State.ADOPTED, State.PARTIALLY_ADOPTED, State.DECLINED, State.REPLIED, State.RATED, State.UNRATED}
)
"""States in which a suggestion has been decided: what the summary-phase evaluators look at."""

_UNIT_ROLES = frozenset({Role.RECOMMENDING_UNIT, Role.HANDLING_UNIT, Role.HANDLING_UNIT_HEAD})


class Scope(enum.StrEnum):
    """How an actor must relate to the suggestion (or, for ``receive``, the draft) for a rule to apply.

    On an existing suggestion:

    * ``any`` — the role is enough (district-wide bodies such as the collection office).
    * ``own_suggestion`` — the actor is the proposer: ``actor.id == suggestion.proposer.account``.
    * ``submitted`` — the actor received it (the actor of its ``receive`` event, same id
      and role); needs the guard's ``store`` to look that up, and fails closed without it.
    * ``recommending_unit`` — ``actor.unit == suggestion.recommending_unit``.
    * ``lead_unit`` — ``actor.unit == suggestion.lead_unit`` (主办单位).
    * ``handling_unit`` — the actor's unit is the lead or a co-handling unit.

    On a draft being received, naming a recommending unit counts towards that unit's
    recommendation quota, so every scope but ``any`` refuses a draft that names a
    recommending unit other than the actor's own:

    * ``own_suggestion`` — ``draft.proposer.account == actor.id`` (a proposer files for
      themself, under the account that will later rate and withdraw).
    * ``submitted`` — the actor is submitting it now (an information officer filing for
      someone else).
    * ``recommending_unit`` — the draft names the actor's unit as its recommending unit
      (a unit that files a suggestion recommends it; otherwise it could not see it afterwards).
    * ``lead_unit``, ``handling_unit`` — never: a draft has no handling unit yet.
    """

    ANY = "any"
    OWN_SUGGESTION = "own_suggestion"
    SUBMITTED = "submitted"
    RECOMMENDING_UNIT = "recommending_unit"
    LEAD_UNIT = "lead_unit"
    HANDLING_UNIT = "handling_unit"


_SCOPE_LABELS: Mapping[Scope, str] = {
    Scope.ANY: "any",
    Scope.OWN_SUGGESTION: "its proposer",
    Scope.SUBMITTED: "who submitted it",
    Scope.RECOMMENDING_UNIT: "its recommending unit",
    Scope.LEAD_UNIT: "its lead unit",
    Scope.HANDLING_UNIT: "its lead or a co-handling unit",
}


def _member(kind: type[enum.StrEnum], value: object, field: str) -> Any:
    """``value`` as a member of ``kind``; a typo in a portal's table fails when the table is built."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)  # type: ignore[arg-type]  # a wrong type is what the except reports
    except ValueError:
        raise ValidationError(f"permissions.{field}", f"must be one of {[m.value for m in kind]}") from None


def _to_role(value: object) -> Role:
    role: Role = _member(Role, value, "role")
    return role


def _to_scope(value: object) -> Scope:
    scope: Scope = _member(Scope, value, "scope")
    return scope


@attrs.frozen
class Rule:
    """One way to be allowed a command: act as ``role``, related to the suggestion as ``scope``."""

    role: Role = attrs.field(converter=_to_role)
    scope: Scope = attrs.field(default=Scope.ANY, converter=_to_scope)

    def __str__(self) -> str:
        return self.role.value if self.scope is Scope.ANY else f"{self.role.value} ({_SCOPE_LABELS[self.scope]})"


R = Role
DEFAULT_RULES: Mapping[str, tuple[Rule, ...]] = MappingProxyType(
    {
        # intake: on-line by the proposer, gathered by an information officer or a
        # recommending unit, or taken on site / by letter / by phone by the office
        "receive": (
            Rule(R.PROPOSER, Scope.OWN_SUGGESTION),
            Rule(R.INFORMATION_OFFICER, Scope.SUBMITTED),
            Rule(R.RECOMMENDING_UNIT, Scope.RECOMMENDING_UNIT),
            Rule(R.COLLECTION_OFFICE),
        ),
        # the collection office routes and supervises
        "register": (Rule(R.COLLECTION_OFFICE),),
        "not_accept": (Rule(R.COLLECTION_OFFICE),),
        "transfer": (Rule(R.COLLECTION_OFFICE),),
        "reopen": (Rule(R.COLLECTION_OFFICE),),
        # a misroute objection (Art. 23): the lead unit objects, the office verifies and decides
        "object_transfer": (Rule(R.HANDLING_UNIT, Scope.LEAD_UNIT),),
        "accept_objection": (Rule(R.COLLECTION_OFFICE),),
        "reject_objection": (Rule(R.COLLECTION_OFFICE),),
        # the lead unit asks for more time; by default its head approves (a portal may name
        # the collection office instead: PermissionTable.with_rules)
        "request_extension": (Rule(R.HANDLING_UNIT, Scope.LEAD_UNIT),),
        "approve_extension": (Rule(R.HANDLING_UNIT_HEAD, Scope.LEAD_UNIT),),
        "reject_extension": (Rule(R.HANDLING_UNIT_HEAD, Scope.LEAD_UNIT),),
        "report_upward": (Rule(R.COLLECTION_OFFICE),),
        "forward_to_city": (Rule(R.COLLECTION_OFFICE),),
        # only the lead unit handles; co-handling units contribute through it
        "research": (Rule(R.HANDLING_UNIT, Scope.LEAD_UNIT),),
        "decide": (Rule(R.HANDLING_UNIT, Scope.LEAD_UNIT),),
        "reply": (Rule(R.HANDLING_UNIT, Scope.LEAD_UNIT),),
        # the proposer's own acts; an information officer may withdraw for the person
        # they filed for, who often has no portal account of their own
        "rate": (Rule(R.PROPOSER, Scope.OWN_SUGGESTION),),
        "withdraw": (Rule(R.PROPOSER, Scope.OWN_SUGGESTION), Rule(R.INFORMATION_OFFICER, Scope.SUBMITTED)),
        # summary phase: evaluators score; the office, which organises the reward
        # selection, may also put a scored suggestion on the candidate list
        "evaluate": (Rule(R.EVALUATOR),),
        "nominate_reward": (Rule(R.EVALUATOR), Rule(R.COLLECTION_OFFICE)),
        "record_adoption": (Rule(R.HANDLING_UNIT, Scope.LEAD_UNIT), Rule(R.COLLECTION_OFFICE)),
        "mark_typical": (Rule(R.COLLECTION_OFFICE), Rule(R.LEADERSHIP)),
        # time-driven work: only the engine
        "close_unrated": (Rule(R.SYSTEM),),
        "flag_overdue": (Rule(R.SYSTEM),),
        "retime": (Rule(R.SYSTEM),),
        "migrate_state": (Rule(R.SYSTEM),),
        # personal data (PIPL Art. 47): the office, which holds it, erases it; the engine moves
        # the data of suggestions received before the vault into it
        "erase_personal_data": (Rule(R.COLLECTION_OFFICE),),
        "vault_personal_data": (Rule(R.SYSTEM),),
    }
)
"""The default permission table: command → the rules that allow it (any one suffices)."""
del R


def _rules(value: Iterable[Rule | Role | str | Mapping[str, str] | tuple[Any, ...]]) -> tuple[Rule, ...]:
    """Rules from the forms a portal may write them in: ``Rule``, a role, ``(role, scope)`` or ``{"role", "scope"}``."""
    if isinstance(value, (str, Rule, Mapping)):
        raise ValidationError("permissions.rules", "give a list of rules, not a single rule")
    out: list[Rule] = []
    for item in value:
        if isinstance(item, Rule):
            out.append(item)
        elif isinstance(item, (Role, str)):
            out.append(Rule(item))
        elif isinstance(item, Mapping):
            unknown = set(item) - {"role", "scope"}
            if unknown or "role" not in item:
                raise ValidationError("permissions.rules", f"a rule is {{'role': ..., 'scope': ...}}, got {dict(item)}")
            out.append(Rule(item["role"], item.get("scope", Scope.ANY)))
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(Rule(item[0], item[1]))
        else:
            raise ValidationError("permissions.rules", f"not a rule: {item!r}")
    return tuple(dict.fromkeys(out))


def _command(command: object) -> str:
    if command not in COMMANDS:
        raise ValidationError("permissions.command", f"unknown command {command!r}; commands are {list(COMMANDS)}")
    assert isinstance(command, str)
    return command


def _freeze_table(mapping: object) -> Mapping[str, tuple[Rule, ...]]:
    """Freeze a command → rules mapping: the built-in commands in :data:`COMMANDS` order, added ones after."""
    if not isinstance(mapping, Mapping):
        raise ValidationError("permissions", "must be a mapping of command → rules")
    frozen: dict[str, tuple[Rule, ...]] = {}
    for command, rules in mapping.items():
        if not isinstance(command, str):
            raise ValidationError("permissions.command", f"not a command name: {command!r}")
        frozen[command] = _rules(rules)
    ordered = {c: frozen[c] for c in COMMANDS if c in frozen}
    ordered.update((c, frozen[c]) for c in sorted(frozen) if c not in ordered)
    return MappingProxyType(ordered)


def _freeze_added(value: Iterable[str]) -> frozenset[str]:
    added = frozenset(value)
    for command in added:
        if not isinstance(command, str) or not _COMMAND_NAME.fullmatch(command) or command in COMMANDS:
            raise ValidationError("permissions.command", f"{command!r}: an added command is a new name of "
                                                         "lower-case letters, digits and '_'")
    return added


@attrs.frozen
class PermissionTable:
    """Command → rules, immutable.  Build it with :meth:`default`, :meth:`from_mapping` or the ``with_*`` methods.

    A command is allowed when any of its rules matches; a command with no rules is refused
    to everyone.  Unknown commands, roles or scopes raise
    :class:`~jianyi_flow.errors.ValidationError` when the table is built, so a typo in a
    portal's configuration fails at start-up instead of silently opening or closing a door.
    """

    rules: Mapping[str, tuple[Rule, ...]] = attrs.field(converter=_freeze_table)
    added: frozenset[str] = attrs.field(default=frozenset(), converter=_freeze_added)
    """Commands a deployment added to its workflow (:meth:`with_command`), beside :data:`COMMANDS`."""
    _by_role: Mapping[tuple[str, Role], tuple[Rule, ...]] = attrs.field(init=False, repr=False, eq=False)
    """(command, role) → that role's rules for the command, in the table's order: grouped once, when the table
    is built."""

    @_by_role.default
    def _group_by_role(self) -> Mapping[tuple[str, Role], tuple[Rule, ...]]:
        by_role: dict[tuple[str, Role], tuple[Rule, ...]] = {}
        for command, rules in self.rules.items():
            for rule in rules:
                by_role[(command, rule.role)] = (*by_role.get((command, rule.role), ()), rule)
        return MappingProxyType(by_role)

    def __attrs_post_init__(self) -> None:
        for command in self.rules:
            if command not in COMMANDS and command not in self.added:
                _command(command)  # raises, naming the known commands

    @classmethod
    def default(cls) -> PermissionTable:
        """:data:`DEFAULT_RULES`: the rules docs/security.md documents."""
        return cls(DEFAULT_RULES)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Iterable[Rule | Role | str | Mapping[str, str] | tuple[Any, ...]]]
    ) -> PermissionTable:
        """A table from plain data, e.g. loaded from a portal's JSON configuration.

        ``{"withdraw": [{"role": "proposer", "scope": "own_suggestion"}, "collection_office"]}``;
        commands left out are refused to everyone.
        """
        return cls(mapping)

    def _known(self, command: object) -> str:
        if isinstance(command, str) and command in self.added:
            return command
        return _command(command)

    def with_rule(self, command: str, *rules: Rule | Role | str | tuple[Any, ...]) -> PermissionTable:
        """A copy that also allows ``command`` by ``rules`` (added to the existing ones)."""
        command = self._known(command)
        return PermissionTable({**self.rules, command: (*self.rules.get(command, ()), *_rules(rules))}, self.added)

    def with_rules(self, command: str, rules: Iterable[Rule | Role | str | tuple[Any, ...]]) -> PermissionTable:
        """A copy in which ``command`` is allowed by exactly ``rules`` (an empty list closes it)."""
        return PermissionTable({**self.rules, self._known(command): _rules(rules)}, self.added)

    def with_command(self, command: str, rules: Iterable[Rule | Role | str | tuple[Any, ...]]) -> PermissionTable:
        """A copy that knows ``command``, a command the deployment added to its workflow, allowed by ``rules``.

        Added commands run through :meth:`jianyi_flow.Flow.run_command`.
        """
        added = _freeze_added({*self.added, command})
        return PermissionTable({**self.rules, command: _rules(rules)}, added)

    def without_role(self, command: str, role: Role | str) -> PermissionTable:
        """A copy in which ``role`` may no longer run ``command`` in any scope."""
        command = self._known(command)
        gone = _to_role(role)
        kept = tuple(r for r in self.rules.get(command, ()) if r.role is not gone)
        return PermissionTable({**self.rules, command: kept}, self.added)

    def rules_for(self, command: str) -> tuple[Rule, ...]:
        """The rules that allow ``command`` (empty: nobody may run it)."""
        return self.rules.get(command, ())

    def rules_of(self, command: str, role: Role) -> tuple[Rule, ...]:
        """The rules that allow ``command`` to an actor acting as ``role``, in the table's order."""
        return self._by_role.get((command, role), ())

    def allows_role(self, role: Role, command: str) -> bool:
        """Whether some actor acting as ``role`` may ever run ``command`` (the scope aside)."""
        return bool(self.rules_of(command, role))

    def matrix(self) -> dict[tuple[Role, str], bool]:
        """Every (role, command) pair → whether the role may ever run it: the table for the docs."""
        return {(role, command): self.allows_role(role, command) for role in Role for command in COMMANDS}

    def to_markdown(self) -> str:
        """The table as Markdown: one row per command, one column per role, the scope in each cell.

        ``docs/security.md`` embeds this for the default table; a test keeps the two equal.
        """
        header = "| command | " + " | ".join(role.value for role in Role) + " |"
        lines = [header, "|---|" + "---|" * len(Role)]
        for command in COMMANDS:
            cells = []
            for role in Role:
                scopes = [r.scope for r in self.rules_for(command) if r.role is role]
                if not scopes:
                    cells.append("—")
                elif Scope.ANY in scopes:
                    cells.append("yes")
                else:
                    cells.append(" or ".join(_SCOPE_LABELS[s] for s in scopes))
            lines.append(f"| {command} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_mapping(self) -> dict[str, list[dict[str, str]]]:
        """The table as plain data (JSON-ready), the inverse of :meth:`from_mapping`."""
        return {c: [{"role": r.role.value, "scope": r.scope.value} for r in rules] for c, rules in self.rules.items()}


class AllowAll:
    """The named opt-out of permission checks: ``Flow(..., permissions=ALLOW_ALL)``.

    For trusted jobs only (an import, a migration, a simulation that plays every role
    itself): every actor may then run every command on every suggestion and sees
    everything unmasked.  A portal never uses it.
    """

    def __repr__(self) -> str:
        return "ALLOW_ALL"


ALLOW_ALL = AllowAll()
"""The one :class:`AllowAll` value."""


ROLE_COMMANDS: Mapping[tuple[Role, str], bool] = MappingProxyType(PermissionTable.default().matrix())
"""(role, command) → allowed by the default table (scope aside): the matrix docs/security.md shows."""


def accused_targets(suggestion: Suggestion, args: Mapping[str, Any]) -> list[str]:
    """The units a transfer with ``args`` would send ``suggestion`` to that it names as accused, in order."""
    co = args.get("co_units", ())
    targets = [args.get("lead_unit"), *(co if isinstance(co, (list, tuple)) else ())]  # Flow checks the rest
    return [u for u in targets if isinstance(u, str) and u in suggestion.accused_units]


def accused_unit_error(accused: Sequence[str], lead_unit: object) -> ValidationError:
    """The refusal of a transfer to units the suggestion accuses (信访工作条例 Art. 30), code ``accused_unit``:
    one error whether the permission guard or the command itself finds them."""
    field = "lead_unit" if lead_unit in accused else "co_units"
    units = ", ".join(accused)
    return ValidationError(field, f"{units} is accused in this suggestion and may not handle it (信访工作条例 Art. 30)",
                           code="accused_unit", details={"value": units})


# --- the guard --------------------------------------------------------------------------------


def _draft_recommender_ok(actor: Actor, draft: SuggestionDraft) -> bool:
    return draft.recommending_unit is None or (actor.unit is not None and draft.recommending_unit == actor.unit)


@attrs.frozen
class PermissionGuard:
    """The :class:`~jianyi_flow.service.guards.Guard` that enforces a :class:`PermissionTable`.

    For every command it checks, in order: that some rule of the table names the actor's
    role, that the actor can see the suggestion (:func:`can_see`), and that a rule's scope
    matches; it raises :class:`~jianyi_flow.errors.PermissionDenied` naming the actor, the
    command and the reason.  For ``transfer`` it then refuses an accused target unit
    (Art. 30) with the :class:`~jianyi_flow.errors.ValidationError` ``Flow.transfer``
    raises for it, so the error is the same with or without this guard.

    ``store`` lets the ``submitted`` scope find who received a suggestion; pass the store
    the Flow uses.  Without it that scope never matches (it fails closed).
    """

    table: PermissionTable = attrs.field(factory=PermissionTable.default)
    store: Store | None = None

    def submitter_of(self, suggestion: Suggestion) -> Actor | None:
        """Who received the suggestion (its ``received_by``, else its ``receive`` event's actor), or ``None``."""
        if suggestion.received_by is not None:
            role, _, ident = suggestion.received_by.partition(":")
            return Actor(ident, role) if role in Role.__members__.values() else None
        if self.store is None:
            return None
        try:
            events = self.store.history(suggestion.id)
        except NotFound:
            return None
        return events[0].actor if events and events[0].kind == "receive" else None

    def _submitter_for(self, actor: Actor, suggestion: Suggestion) -> Actor | None:
        # only an information officer's visibility depends on the submitter: nobody else's costs a look-up
        return self.submitter_of(suggestion) if actor.role is Role.INFORMATION_OFFICER else None

    def can_see(self, actor: Actor, suggestion: Suggestion) -> bool:
        """:func:`can_see`, with the submitter looked up in the guard's store."""
        return can_see(actor, suggestion, submitter=self._submitter_for(actor, suggestion))

    def view_for(self, actor: Actor, suggestion: Suggestion) -> Suggestion:
        """:func:`view_for`, with the submitter looked up in the guard's store."""
        return view_for(actor, suggestion, submitter=self._submitter_for(actor, suggestion))

    def check(self, ctx: CommandContext) -> None:
        actor = ctx.actor
        mine = self.table.rules_of(ctx.command, actor.role)
        if not mine:
            rules = self.table.rules_for(ctx.command)
            self._deny(ctx, f"only {', '.join(str(r) for r in rules)} may {ctx.command}" if rules
                       else "no rule allows this command")
        if ctx.suggestion is None:
            self._check_draft(ctx, mine)
            return
        s = ctx.suggestion
        submitter: Actor | None = None
        if actor.role is Role.INFORMATION_OFFICER or Scope.SUBMITTED in [r.scope for r in mine]:
            submitter = self.submitter_of(s)
        if not can_see(actor, s, submitter=submitter):
            self._deny(ctx, f"suggestion {s.id!r} is not visible to {actor.role.value}"
                            + (f" {actor.unit}" if actor.unit else ""))
        for rule in mine:  # a loop, not any() over a generator: this runs on every command
            if self._matches(rule, actor, s, submitter):
                break
        else:
            self._deny(ctx, f"only {', '.join(str(r) for r in self.table.rules_for(ctx.command))} may "
                            f"{ctx.command}" + self._who(s, mine))
        if ctx.command == "transfer":
            accused = accused_targets(s, ctx.args)
            if accused:
                raise accused_unit_error(accused, ctx.args.get("lead_unit"))

    @staticmethod
    def _matches(rule: Rule, actor: Actor, s: Suggestion, submitter: Actor | None) -> bool:
        scope = rule.scope
        if scope is Scope.ANY:
            return True
        if scope is Scope.OWN_SUGGESTION:
            return s.proposer.account is not None and actor.id == s.proposer.account
        if scope is Scope.SUBMITTED:
            return is_submitter(actor, submitter)
        unit = actor.unit
        if unit is None:
            return False
        if scope is Scope.RECOMMENDING_UNIT:
            return unit == s.recommending_unit
        if scope is Scope.LEAD_UNIT:
            return unit == s.lead_unit
        return unit == s.lead_unit or unit in s.co_units  # Scope.HANDLING_UNIT

    def _check_draft(self, ctx: CommandContext, mine: Sequence[Rule]) -> None:
        actor, draft = ctx.actor, ctx.draft
        if draft is None:
            self._deny(ctx, "there is neither a suggestion nor a draft to judge the command by")
        for rule in mine:
            scope = rule.scope
            if scope is Scope.ANY:
                return
            if scope is Scope.OWN_SUGGESTION and draft.proposer.account == actor.id \
                    and _draft_recommender_ok(actor, draft):
                return
            if scope is Scope.SUBMITTED and _draft_recommender_ok(actor, draft):
                return
            if scope is Scope.RECOMMENDING_UNIT and actor.unit is not None \
                    and draft.recommending_unit == actor.unit:
                return
        wanted = " or ".join(_SCOPE_LABELS[r.scope] for r in mine)
        self._deny(ctx, f"a {actor.role.value} may receive a draft only as {wanted}: a proposer under their own "
                        "account, and a recommending unit named only by that unit")

    @staticmethod
    def _who(s: Suggestion, mine: Sequence[Rule]) -> str:
        scopes = {r.scope for r in mine}
        if Scope.LEAD_UNIT in scopes:
            return f" (lead unit: {s.lead_unit or 'none'})"
        return ""

    @staticmethod
    def _deny(ctx: CommandContext, reason: str) -> NoReturn:
        raise PermissionDenied(str(ctx.actor), ctx.command, reason)

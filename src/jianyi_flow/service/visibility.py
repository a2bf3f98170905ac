"""Who may see a suggestion, and what they see of it: visibility and masking.

* **Visibility.**  :func:`can_see` says whether an actor may see a suggestion at all.  It
  is a ceiling no permission rule lifts: a unit sees only suggestions transferred (lead or
  co) or recommended to it, so it can neither read nor act on anything else.
* **Confidentiality.**  :func:`view_for` gives the suggestion as an actor may see it: the
  proposer's phone and address are masked for everyone but the collection office and the
  proposer themself, and a confidential (保密) proposer's name is masked too; free text is
  passed through :func:`scrub`, which also masks any ID, bank-card, phone number or e-mail
  address written in it (:func:`~jianyi_flow.domain.masking.mask_personal_data`).
  :func:`history_for` does the same for the events of its history, and masks the proposer
  where they are the actor of an event (:func:`masked_actor`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..domain.codec import decode_proposer, encode_proposer, replace
from ..domain.masking import mask_personal_data
from ..domain.model import Actor, Event, Proposer, Role, State, Suggestion, mask_name
from ..errors import PermissionDenied, ValidationError

__all__ = [
    "FREE_TEXT_FIELDS",
    "MASKED_ACTOR_ID",
    "can_see",
    "history_for",
    "masked_actor",
    "scrub",
    "sees_unmasked",
    "view_for",
]

_HANDLED_STATES = frozenset(
    {State.ADOPTED, State.PARTIALLY_ADOPTED, State.DECLINED, State.REPLIED, State.RATED, State.UNRATED}
)
"""States in which a suggestion has been decided: what the summary-phase evaluators look at."""

_UNIT_ROLES = frozenset({Role.RECOMMENDING_UNIT, Role.HANDLING_UNIT, Role.HANDLING_UNIT_HEAD})


def _is_proposer(actor: Actor, s: Suggestion) -> bool:
    return actor.role is Role.PROPOSER and s.proposer.account is not None and actor.id == s.proposer.account


def is_submitter(actor: Actor, submitter: Actor | None) -> bool:
    return submitter is not None and submitter.id == actor.id and submitter.role is actor.role


def can_see(actor: Actor, suggestion: Suggestion, *, submitter: Actor | None = None) -> bool:
    """Whether ``actor`` may see ``suggestion`` at all.

    ``submitter`` is the actor who received it (its first event's actor; see
    :meth:`PermissionGuard.submitter_of`): it lets an information officer see what they
    filed.  Who sees what, and why:

    * collection office and the system: everything — they route and supervise all of it;
    * a proposer: their own suggestions (``proposer.account``);
    * an information officer: what they submitted;
    * a recommending or handling unit: suggestions whose recommending, lead or
      co-handling unit is theirs — never one that names their unit as accused, and a lead
      unit that returned a transfer stops seeing it;
    * leadership: suggestions reported upward to it (呈报), the way it learns of them;
    * the municipal office: suggestions forwarded to the city;
    * an evaluator: decided suggestions (the ones evaluated in the summary phase).
    """
    role = actor.role
    if role in (Role.COLLECTION_OFFICE, Role.SYSTEM):
        return True
    if role is Role.PROPOSER:
        return _is_proposer(actor, suggestion)
    if role is Role.INFORMATION_OFFICER:
        return is_submitter(actor, submitter)
    if role in _UNIT_ROLES:
        unit = actor.unit
        return unit is not None and unit not in suggestion.accused_units and unit in suggestion.units()
    if role is Role.LEADERSHIP:
        return bool(suggestion.upward_reports)
    if role is Role.MUNICIPAL_OFFICE:
        return suggestion.forwarded_to_city_at is not None
    if role is Role.EVALUATOR:
        return suggestion.state in _HANDLED_STATES
    return False  # a role added later sees nothing until a rule is written for it


def sees_unmasked(actor: Actor, suggestion: Suggestion) -> bool:
    """Whether ``actor`` sees the proposer's personal data in full: only the office and the proposer themself."""
    return actor.role is Role.COLLECTION_OFFICE or _is_proposer(actor, suggestion)


def _refuse_unseen(actor: Actor, suggestion: Suggestion, submitter: Actor | None) -> None:
    if not can_see(actor, suggestion, submitter=submitter):
        raise PermissionDenied(str(actor), "view", f"suggestion {suggestion.id!r} is not visible to {actor.role.value}")


FREE_TEXT_FIELDS: tuple[str, ...] = (
    "title", "subject", "problem", "measures", "research_notes", "outcome_reason", "adopted_part", "reply",
    "rating_comment", "adopted_into", "objection_reason",
)
"""Suggestion fields written in free text, where a proposer's own details may turn up."""


def scrub(text: str, proposer: Proposer | None) -> str:
    """``text`` as someone not entitled to personal data may read it.

    First the proposer's own phone and address (and name, when confidential) are replaced
    wherever they occur: proposers write their number into the problem description, and a
    masked view that hid the phone field but showed it in the text would hide nothing.
    Then every ID-card, bank-card, mobile or landline number and e-mail address left in the
    text — a neighbour's phone, the proposer's own number written another way — is masked
    by :func:`~jianyi_flow.domain.masking.mask_personal_data`.  ``proposer`` ``None`` does
    the second step only.  The campaign report (:mod:`jianyi_flow.report`) masks its text
    with this function too.  A one-character name is left alone: replacing every
    occurrence of one character would wreck the text and hide nobody.
    """
    if proposer is not None:
        if proposer.phone:
            text = text.replace(proposer.phone, "*" * len(proposer.phone))
        if proposer.address:
            text = text.replace(proposer.address, "***")
        if proposer.confidential and len(proposer.name) > 1:
            text = text.replace(proposer.name, mask_name(proposer.name))
    return mask_personal_data(text)


MASKED_ACTOR_ID = "***"
"""The id a masked view gives the proposer where they are an event's actor (see :func:`masked_actor`)."""


def masked_actor(actor: Actor, proposer: Proposer) -> Actor:
    """``actor`` as a masked history shows it: the proposer hidden behind :data:`MASKED_ACTOR_ID`.

    The proposer is the actor of their own ``receive``, ``rate`` and ``withdraw``; their
    actor id is their portal account, which may be a phone number or an e-mail address.
    An actor is taken for the proposer when its role is ``proposer`` or its id is the
    proposer's account.  Its id becomes ``"***"`` (the token masked addresses show; the
    role still says who acted, and a fixed token cannot be mistaken for a real account
    the way a word like ``"proposer"`` could); its name is dropped when the proposer is
    confidential and kept otherwise (with any number or e-mail address in it masked), as
    the proposer's own name is.  Any other actor is returned unchanged.
    """
    own = proposer.account is not None and actor.id == proposer.account
    if actor.role is not Role.PROPOSER and not own:
        return actor
    name = None if proposer.confidential or actor.name is None else mask_personal_data(actor.name)
    return attrs.evolve(actor, id=MASKED_ACTOR_ID, name=name)


def _masked_value(value: Any, proposer: Proposer) -> Any:
    """``value`` with every text in it scrubbed (payload values: texts, lists and mappings of them)."""
    if isinstance(value, str):
        return scrub(value, proposer)
    if isinstance(value, Mapping):
        return {k: _masked_value(v, proposer) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked_value(v, proposer) for v in value]
    return value


def _masked_fields(values: Mapping[str, Any], proposer: Proposer) -> dict[str, Any]:
    """The free-text fields among ``values``, scrubbed of ``proposer``'s details."""
    out: dict[str, Any] = {}
    for name in FREE_TEXT_FIELDS:
        value = values.get(name)
        if isinstance(value, str):
            out[name] = scrub(value, proposer)
    return out


def _masked_ref(ref: str | None, proposer: Proposer) -> str | None:
    """``received_by`` (``role:id``) with the proposer's account hidden: ``proposer:***``."""
    if ref is None:
        return None
    role, _, ident = ref.partition(":")
    if role == Role.PROPOSER.value or (proposer.account is not None and ident == proposer.account):
        return f"{role}:{MASKED_ACTOR_ID}"
    return ref


def view_for(actor: Actor, suggestion: Suggestion, *, submitter: Actor | None = None) -> Suggestion:
    """``suggestion`` as ``actor`` may see it; :class:`PermissionDenied` if they may not see it.

    Everyone but the collection office and the proposer themself gets the proposer
    through :meth:`~jianyi_flow.domain.model.Proposer.masked` (phone and address masked always,
    the name too when the proposer is confidential; the portal account dropped) and the
    free-text fields through :func:`scrub` (the proposer's own details, and any ID, card,
    phone number or e-mail address written in them, masked).  The view is for display:
    its ``event_hash`` still names the stored event, whose content it no longer matches.
    """
    _refuse_unseen(actor, suggestion, submitter)
    if sees_unmasked(actor, suggestion):
        return suggestion
    p = suggestion.proposer
    fields = {name: getattr(suggestion, name) for name in FREE_TEXT_FIELDS}
    request = suggestion.extension_request
    return replace(suggestion, {
        **_masked_fields(fields, p), "proposer": p.masked(), "received_by": _masked_ref(suggestion.received_by, p),
        "extension_request": None if request is None else attrs.evolve(request, reason=scrub(request.reason, p)),
    })


def history_for(
    actor: Actor, suggestion: Suggestion, events: Iterable[Event], *, submitter: Actor | None = None
) -> list[Event]:
    """The events of ``suggestion`` as ``actor`` may see them (the same masking as :func:`view_for`).

    The ``receive`` event carries the proposer in full; a unit shown the raw history would
    read the phone number :func:`view_for` hides.  For an actor who does not see the
    proposer unmasked (:func:`sees_unmasked`), each event's proposer is masked, its free
    text, reason and text payload values (an extension's approver...) go through
    :func:`scrub`, and an event the proposer acted in shows them through
    :func:`masked_actor`.  The suggestion's current proposer is used, and the one an event
    records where it records one.  Masked events no longer match their hashes: verify the
    stored history, show this one.
    """
    _refuse_unseen(actor, suggestion, submitter)
    out = list(events)
    for event in out:
        if event.suggestion_id != suggestion.id:
            raise ValidationError("events", f"event of suggestion {event.suggestion_id!r}, not {suggestion.id!r}")
    if sees_unmasked(actor, suggestion):
        return out
    masked: list[Event] = []
    for event in out:
        recorded = event.changes.get("proposer")
        p = decode_proposer(recorded) if isinstance(recorded, Mapping) else suggestion.proposer
        changes = {**event.changes, **_masked_fields(event.changes, p)}
        if isinstance(recorded, Mapping):
            changes["proposer"] = encode_proposer(p.masked())
        if isinstance(changes.get("received_by"), str):
            changes["received_by"] = _masked_ref(changes["received_by"], p)
        if isinstance(changes.get("extension_request"), Mapping):
            changes["extension_request"] = _masked_value(changes["extension_request"], p)
        reason = None if event.reason is None else scrub(event.reason, p)
        shown = masked_actor(masked_actor(event.actor, p), suggestion.proposer)
        payload = {key: _masked_value(value, p) for key, value in event.payload.items()}
        masked.append(attrs.evolve(event, actor=shown, changes=changes, reason=reason, payload=payload))
    return masked

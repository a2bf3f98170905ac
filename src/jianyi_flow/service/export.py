"""A store export for analysts that carries no personal data: :func:`pseudonymised_export`.

``jianyi-flow export --store URL --pseudonymise`` writes it as JSON lines.  What an analyst
gets, per suggestion: its row and its events with every field a statistic needs (kind,
channel, area, topic, units, states, times, outcomes, ratings, deadlines...), and nothing
that identifies a person:

* the proposer is their kind and whether they asked for confidentiality, and whether their
  data was erased (已删除) or pseudonymised (已脱敏) — never a name, phone, address or account,
  whether the suggestion is vaulted or not;
* an actor is their role and unit; ids and names of people are dropped (officials' too), and
  ``received_by`` and an extension request's ``requested_by`` keep only the role;
* an evaluation keeps its scores, not the evaluator's name;
* every free text (title, the three parts, notes, reasons, replies...) goes through
  :func:`~jianyi_flow.domain.masking.mask_personal_data`, and has the proposer's own name,
  phone, address and account blotted out of it where the store still holds them;
* the vault's digests and the hashes of a vault migration's rewritten events are left out
  (a hash of a short text can be guessed back), and so are the events' own hashes and keyed
  seals; the export is for counting, not for auditing (the store verifies itself).

Free text can still *describe* a person in words ("my neighbour, the head of building 3"):
no pattern finds that.  The export is pseudonymised data in the sense of PIPL Art. 73(3),
to be handled as such.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..domain.codec import SUGGESTION_FIELDS, encode_datetime, encode_value
from ..domain.masking import mask_personal_data
from ..domain.model import Event, Proposer, Suggestion
from ..storage.base import Order, Query, Store, iter_suggestions
from .visibility import FREE_TEXT_FIELDS

__all__ = ["EXPORT_FORMAT", "pseudonymised_event", "pseudonymised_export", "pseudonymised_row"]

EXPORT_FORMAT = "jianyi-flow pseudonymised export 1"
"""The first line's ``format``: what the lines after it hold."""

_DROPPED_PAYLOAD = frozenset({"personal_data", "redacted"})
_FREE = frozenset(FREE_TEXT_FIELDS)


def _proposer(p: Proposer | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(p, Proposer):
        return {"kind": p.kind.value, "confidential": p.confidential, "erased": p.erased}
    return {"kind": p.get("kind"), "confidential": bool(p.get("confidential")), "erased": p.get("erased")}


def _scrubbed(text: str, proposer: Proposer | None) -> str:
    """``text`` with ID, card and phone numbers and e-mail addresses masked, and the proposer's own
    name (two characters or more), phone, address and account blotted out."""
    if proposer is not None and not proposer.erased:
        for own in (proposer.phone, proposer.address, proposer.account, proposer.name):
            if own and len(own) > 1:
                text = text.replace(own, "*" * len(own))
    return mask_personal_data(text)


def _text(value: Any, proposer: Proposer | None) -> Any:
    if isinstance(value, str):
        return _scrubbed(value, proposer)
    if isinstance(value, list):
        return [_text(v, proposer) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _text(v, proposer) for k, v in value.items()}
    return value


def _role_of(ref: Any) -> Any:
    """``role:id@unit`` or ``role:id`` → ``role@unit`` / ``role``."""
    if not isinstance(ref, str):
        return ref
    role, _, rest = ref.partition(":")
    _, at, unit = rest.partition("@")
    return f"{role}@{unit}" if at else role


def _field(name: str, value: Any, proposer: Proposer | None) -> Any:
    if value is None:
        return None
    if name == "proposer":
        return _proposer(value)
    if name == "received_by":
        return _role_of(value)
    if name == "evaluation" and isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k != "evaluator"}
    if name == "extension_request" and isinstance(value, Mapping):
        return {**_text({k: v for k, v in value.items() if k != "requested_by"}, proposer),
                "requested_by": _role_of(value.get("requested_by"))}
    if name in _FREE:
        return _text(value, proposer)
    return value


def pseudonymised_row(s: Suggestion) -> dict[str, Any]:
    """The row as JSON-ready data without personal data (see the module docstring)."""
    out: dict[str, Any] = {}
    for name in SUGGESTION_FIELDS:
        if name == "event_hash":
            continue
        value = getattr(s, name)
        out[name] = _field(name, value if name == "proposer" else encode_value(name, value), s.proposer)
    return out


def pseudonymised_event(e: Event, proposer: Proposer | None = None) -> dict[str, Any]:
    """The event as JSON-ready data without personal data: ``proposer`` is scrubbed from its texts."""
    return {
        "version": e.version,
        "kind": e.kind,
        "from_state": None if e.from_state is None else e.from_state.value,
        "to_state": e.to_state.value,
        "actor": {"role": e.actor.role.value, "unit": e.actor.unit},
        "at": encode_datetime(e.at),
        "reason": _text(e.reason, proposer),
        "changes": {name: _field(name, value, proposer) for name, value in e.changes.items()},
        "payload": {k: _text(v, proposer) for k, v in e.payload.items() if k not in _DROPPED_PAYLOAD},
        "notices": list(e.notices),
        "workflow": e.workflow,
        "policy": e.policy,
    }


def pseudonymised_export(store: Store, *, campaign: str | None = None, page: int = 500) -> Iterator[dict[str, Any]]:
    """A header, then one ``{"id", "suggestion", "events"}`` record per suggestion, in id order."""
    yield {"format": EXPORT_FORMAT, "campaign": campaign, "pseudonymised": True}
    for s in iter_suggestions(store, Query(campaign=campaign, order=Order.ID), page):
        yield {"id": s.id, "suggestion": pseudonymised_row(s),
               "events": [pseudonymised_event(e, s.proposer) for e in store.history(s.id)]}

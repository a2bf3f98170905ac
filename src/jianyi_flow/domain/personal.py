"""Personal data kept apart from the hashed history: the vault record, its digest, its checks.

A proposer's name, phone, address and portal account (and whatever a citizen typed into
those contact fields about someone else) are *personal data* (个人信息, PIPL Art. 4).  A
suggestion received into a store that has a vault (:class:`~jianyi_flow.storage.base.PersonalDataVault`)
keeps them in one :class:`PersonalRecord` per suggestion, outside the events:

* the ``receive`` event's ``changes`` hold the proposer *without* them — its kind and
  whether it is confidential, and ``"vaulted": true`` (:func:`~jianyi_flow.domain.codec.encode_proposer`);
* its ``payload`` holds ``{"personal_data": digest}``, the keyed digest
  (:func:`digest_of`: HMAC-SHA256 under the record's own random salt) of the four fields.
  The hash chain covers the digest, so the vault's data is bound to the history: changed
  data no longer matches the digest, and no one can find other data that does without
  breaking HMAC-SHA256;
* the store's row and every read resolve the proposer from the vault (the row shows what
  was committed), while the replay of the events gives the proposer without the data:
  :func:`pseudonymous_row` is what the two have in common, and what ``verify_history``
  compares.

Erasing (:meth:`jianyi_flow.Flow.erase_personal_data`, or the retention run
:meth:`jianyi_flow.Flow.erase_expired`) writes one ``erase_personal_data`` event and, in
the same transaction, replaces the record by a tombstone without data and without the
salt.  Afterwards the digest in the history is a keyed hash whose key is gone: it says
nothing about the data.  :func:`verify_personal_data` checks that the vault and the history
agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .codec import replace
from .model import Event, Proposer, Suggestion

__all__ = [
    "ERASE",
    "ERASED",
    "ERASURE_LABELS",
    "PERSONAL_DATA_KINDS",
    "PSEUDONYMISED",
    "VAULT",
    "PersonalRecord",
    "digest_of",
    "pseudonymous_row",
    "recorded_digest",
    "verify_personal_data",
]

ERASE = "erase_personal_data"
"""The kind of the event that erases a suggestion's personal data."""
VAULT = "vault_personal_data"
"""The kind of the event that moves the personal data of a suggestion received before the vault into it."""
PERSONAL_DATA_KINDS = frozenset({ERASE, VAULT})
"""Events about personal data: allowed in every state, they never change it (not workflow edges)."""

ERASED = "erased"
"""``Proposer.erased`` after an erasure on request (shown 已删除)."""
PSEUDONYMISED = "pseudonymised"
"""``Proposer.erased`` after the retention period ended (shown 已脱敏)."""
ERASURE_LABELS: Mapping[str, str] = {ERASED: "已删除", PSEUDONYMISED: "已脱敏"}
"""What reports show where the data was."""

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@attrs.frozen(repr=False)
class PersonalRecord:
    """One suggestion's personal data in the vault, or its tombstone once erased.

    ``salt`` (hex) keys the digest; it is erased with the data.  A tombstone has no data,
    no salt, and says when (``erased_at``) and by which event version it was erased.
    """

    suggestion_id: str
    name: str | None = None
    phone: str | None = None
    address: str | None = None
    account: str | None = None
    salt: str | None = None
    erased_at: dt.datetime | None = None
    erased_version: int | None = None

    def __repr__(self) -> str:  # never the data itself
        state = "erased" if self.erased else "held"
        return f"PersonalRecord({self.suggestion_id!r}, {state})"

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    @classmethod
    def of(cls, suggestion_id: str, proposer: Proposer, salt: str) -> PersonalRecord:
        return cls(suggestion_id, proposer.name, proposer.phone, proposer.address, proposer.account, salt)

    @classmethod
    def tombstone(cls, suggestion_id: str, at: dt.datetime, version: int) -> PersonalRecord:
        return cls(suggestion_id, erased_at=at, erased_version=version)

    def resolve(self, proposer: Proposer) -> Proposer:
        """``proposer`` (as the history has it, without its data) with this record's data filled in."""
        if self.erased or proposer.erased:
            return proposer
        return Proposer(self.name or "", proposer.kind, self.phone, self.address, proposer.confidential, self.account,
                        proposer.vaulted, proposer.erased)

    def fields(self) -> dict[str, Any]:
        """The record as JSON-ready data (the SQL store's column values)."""
        return {"name": self.name, "phone": self.phone, "address": self.address, "account": self.account}


def digest_of(record: PersonalRecord) -> str:
    """HMAC-SHA256 (hex) of the record's four fields, keyed by its salt."""
    if record.salt is None:
        raise ValueError("an erased record has no digest")
    text = _ENCODER.encode([record.name, record.phone, record.address, record.account])
    return hmac.new(bytes.fromhex(record.salt), text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def pseudonymous_row(s: Suggestion) -> Suggestion:
    """``s`` with the proposer's vaulted data left out: what the replay of its history gives."""
    p = s.proposer
    if not p.vaulted:
        return s
    return replace(s, {"proposer": p.pseudonymous()})


def recorded_digest(events: Sequence[Event]) -> str | None:
    """The digest the history recorded for the vault's data (the latest one), if any."""
    found = None
    for e in events:
        value = e.payload.get("personal_data") if isinstance(e.payload, Mapping) else None
        if isinstance(value, str):
            found = value
    return found


def verify_personal_data(
    suggestion_id: str, events: Sequence[Event], record: PersonalRecord | None,
) -> list[tuple[int, str]]:
    """What is wrong between a history and its vault record, as ``(version, problem)`` pairs.

    * data whose digest is not the one recorded (the vault was edited);
    * data erased (a tombstone) with no ``erase_personal_data`` event, or an erase event
      with the data still there;
    * the record missing while the history says the data was put in the vault.
    """
    digest = recorded_digest(events)
    erase = next((e for e in events if e.kind == ERASE), None)
    if digest is None:
        if record is not None and not record.erased:
            return [(0, "personal data in the vault that no event of the history recorded")]
        return []
    last = len(events)
    if record is None:
        if erase is not None:
            return [(erase.version, "the tombstone of erased personal data is missing from the vault")]
        return [(last, "personal data missing from the vault (deleted without an erase event)")]
    if record.erased:
        if erase is None:
            return [(last, "personal data erased from the vault without an erase event")]
        return []
    if erase is not None:
        return [(erase.version, "personal data still in the vault after its erase event")]
    try:
        ok = record.salt is not None and hmac.compare_digest(digest_of(record), digest)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        return [(last, "personal data in the vault does not match the digest its history recorded")]
    return []

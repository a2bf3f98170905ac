"""The hash chain's canonical text: stored hashes keep verifying, and the hash covers what it says.

The golden hashes below were computed by the previous canonical writer (jianyi_flow 0.1.0,
commit 6355db5: orjson, with json's encoder as the fallback) with that version's
``history.event_hash`` on the same events built with its ``model.Event``; the chain
further down is what that version's ``Flow`` stored for a receive, a register and a
transfer.  The writer is now one ``json.JSONEncoder``: every hash a database holds must
come out the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jianyi_flow.domain.codec import SUGGESTION_FIELDS, decode_value, encode_changes, encode_value
from jianyi_flow.domain.history import canonical, canonical_bytes, event_hash, mac_of, seal, verify_events
from jianyi_flow.domain.model import Actor, Event, Role, State
from jianyi_flow.testing import make_maximal

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区征集办")

GOLDEN_EVENTS: dict[str, Event] = {
    "ascii_receive": Event(
        suggestion_id="S0001", version=1, kind="receive", from_state=None, to_state=State.RECEIVED,
        actor=Actor(id="clerk", role=Role.COLLECTION_OFFICE, unit="XFB"),
        at=dt.datetime(2024, 8, 1, 9, tzinfo=SHANGHAI),
        changes={"title": "Bus stop", "area": "xinqiao", "accused_units": [], "received_at":
                 "2024-08-01T01:00:00+00:00"},
    ),
    "chinese_and_emoji": Event(
        suggestion_id="S0002", version=2, kind="register", from_state=State.RECEIVED,
        to_state=State.REGISTERED, actor=OFFICE,
        at=dt.datetime(2024, 10, 8, 23, 59, 59, 999_999, tzinfo=SHANGHAI),
        reason="建议人不满意，重新办理 😀👨‍👩‍👧 “引号”『括号』",
        changes={"registration_number": "永川-20241008-S0002", "title": "关于🚌公交“最后一公里”的建议 𠀀𪚥"},
        payload={"备注": "请于十五日内办理 ⏰", "列表": ["一", "二"]},
        prev_hash="9f" * 32,
    ),
    "nested": Event(
        suggestion_id="S0003", version=7, kind="evaluate", from_state=State.RATED, to_state=State.RATED,
        actor=Actor(id="judge-1", role=Role.EVALUATOR, name="李评委"),
        at=dt.datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=45))),
        changes={"evaluation": {"quality": 9, "value": 8, "effect": 7, "evaluator": "李评委"},
                 "proposer": {"name": "张三", "kind": "citizen", "phone": "13812345678", "address": None,
                              "confidential": True, "account": "wx_zs"},
                 "co_units": ["u_env", "u_traffic"], "upward_reports": ["original", "analysis"]},
        payload={"z": {"b": [1, {"y": [], "x": {}}, None, True, False], "a": "A"}, "B": 2, "a": 1,
                 "ä": "non-ASCII key", "Z": [[[["deep"]]]]},
        prev_hash="0" * 64,
    ),
    "none_fields": Event(
        suggestion_id="S0004", version=3, kind="withdraw", from_state=State.REGISTERED,
        to_state=State.WITHDRAWN, actor=Actor(id="wx_anon", role=Role.PROPOSER),
        at=dt.datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1),
        reason=None, changes={"due_at": None, "due_step": None, "closed_at": "2024-11-03T06:30:00+00:00",
                              "research_notes": None},
        payload={}, prev_hash="ab" * 32,
    ),
    "large_ints_and_floats": Event(
        suggestion_id="S0005", version=2, kind="note", from_state=State.TRANSFERRED,
        to_state=State.TRANSFERRED, actor=Actor(id="sys", role=Role.SYSTEM),
        at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        changes={"reopen_count": 2**31 - 1},
        payload={"big": 2**70, "neg": -(2**63) - 1, "i64": 2**63 - 1, "huge": 10**30, "zero": 0,
                 "half": 2.5, "small": 1e-05, "large": 1e16, "neg_float": -0.0},
        prev_hash="cd" * 32,
    ),
    "unusual_strings": Event(
        suggestion_id="S-0006_a.b", version=4, kind="reply", from_state=State.ADOPTED, to_state=State.REPLIED,
        actor=Actor(id="clerk-u", role=Role.HANDLING_UNIT, unit="u_traffic", name="交通局\u3000经办人"),
        at=dt.datetime(2024, 2, 29, 12, 0, 0, 1, tzinfo=dt.timezone(-dt.timedelta(hours=9, minutes=30))),
        reason="".join(chr(c) for c in range(32)) + "\"\\/\x7f\u0080\u00a0\u2028\u2029\ufeff\uffff",
        changes={"reply": "tab\tnewline\nCR\r quote\" backslash\\ slash/ <b>&amp;</b> e\u0301 ß ﬁ ｋ",
                 "reply_form": "written", "": "empty key", " ": "space key"},
        payload={"\u2028": "line separator key", "emoji": "🏳️‍🌈", "astral": "\U0001f600\U00020000\U0010ffff"},
        prev_hash="ef" * 32,
    ),
    "lone_surrogate": Event(
        suggestion_id="S0007", version=2, kind="note", from_state=State.RECEIVED, to_state=State.RECEIVED,
        actor=OFFICE, at=dt.datetime(2024, 8, 21, 9, tzinfo=SHANGHAI),
        reason="lone \ud800 surrogate", changes={"k": ["\udfff"]}, payload={"\ud83d": "half an emoji"},
        prev_hash="12" * 32,
    ),
}

GOLDEN_HASHES: dict[str, str] = {
    "ascii_receive": "3a1346fbc1e7ff87b2f04e1049c8e1985681e599ad7fcb324c48e7631da82e95",
    "chinese_and_emoji": "2ca4b95f8baf1711e6b630fbb5b40d37678ebc63ac57350d8b7a8ef9d004285b",
    "nested": "10eda0ec0bcf76850ed0af9a0febb0fc6142fa1f5792dcce9114ef99b989fc26",
    "none_fields": "c0484ca41c46447b25647a75ca8a0b83a70432778cb9d09cd729bbf93f414d11",
    "large_ints_and_floats": "c2f6fd763c5b3dd930997349aa7588060d6c7e847db49136b0fe9a2e16f200f0",
    "unusual_strings": "0032efe7d6c92e2adec156290570a8fd8d4c859217a65c10fa743d6a36a479fa",
    "lone_surrogate": "55925c7068e068ed569ed0cc69878de77c2d89508782b6f32bc31032a34c8a9e",
}
"""``history.event_hash`` of each event above, as jianyi_flow 0.1.0 computed it."""


@pytest.mark.parametrize("name", sorted(GOLDEN_EVENTS))
def test_hashes_computed_by_the_previous_writer_still_verify(name: str) -> None:
    assert event_hash(GOLDEN_EVENTS[name]) == GOLDEN_HASHES[name]


def _stored(kind: str, version: int, from_state: str | None, to_state: str, at: str, reason: str | None,
            changes: dict[str, Any], prev_hash: str, hash: str) -> Event:
    return Event(suggestion_id="S0000001", version=version, kind=kind,
                 from_state=None if from_state is None else State(from_state), to_state=State(to_state),
                 actor=OFFICE, at=dt.datetime.fromisoformat(at), reason=reason, changes=changes, payload={},
                 prev_hash=prev_hash, hash=hash)


STORED_CHAIN = [
    _stored("receive", 1, None, "received", "2024-08-21T09:00:00.123456+08:00", None, {
        "campaign": "yc2024", "title": "关于在新桥医院站增设公交站台的建议", "subject": "新桥片区公交线路调整",
        "problem": "早高峰 231 路班次间隔过长，乘客候车超过 20 分钟；医院门口无站台。",
        "measures": "建议早高峰加密班次至 8 分钟一班，并增设新桥医院站。", "area": "xinqiao", "topic": "transport",
        "channel": "wechat", "proposer": {"name": "李四", "kind": "information_officer", "phone": "13912345678",
                                          "address": "重庆市永川区中山路 8 号", "confidential": True,
                                          "account": "wx_lisi"},
        "recommending_unit": "town-xinqiao", "accused_units": ["u_police"],
        "received_at": "2024-08-21T01:00:00.123456+00:00", "due_step": "register",
        "due_at": "2024-09-05T15:59:59.999999+00:00"},
        "", "b4fb3d55f6c3ac230232ed3ef858c65f0c4fb4e41db4e5b9d8e5b5ed73c49742"),
    _stored("register", 2, "received", "registered", "2024-08-21T12:00:00.123456+08:00", None,
            {"registration_number": "yc2024-20240821-S0000001"},
            "b4fb3d55f6c3ac230232ed3ef858c65f0c4fb4e41db4e5b9d8e5b5ed73c49742",
            "9a7e6610ba19123b33dded431c2e7fc262ca837887bafb5afe94b522441b0ada"),
    _stored("transfer", 3, "registered", "transferred", "2024-08-22T12:07:00.123456+08:00", "请办理 ✅",
            {"lead_unit": "u_traffic", "co_units": ["u_env"], "transferred_at": "2024-08-22T04:07:00.123456+00:00",
             "due_step": "research", "due_at": "2024-10-21T15:59:59.999999+00:00",
             "objection_due_at": "2024-08-29T15:59:59.999999+00:00", "extended": False},
            "9a7e6610ba19123b33dded431c2e7fc262ca837887bafb5afe94b522441b0ada",
            "158b488ef21956cf9d2d9b3ec8157bc49d084bc049512a874d70d24548041969"),
]
"""A chain jianyi_flow 0.1.0's Flow stored (receive, register, transfer), with its hashes as stored."""


def test_a_chain_stored_by_the_previous_version_still_verifies() -> None:
    for event in STORED_CHAIN:
        assert event_hash(event) == event.hash, event.kind
    assert verify_events("S0000001", STORED_CHAIN, None) == []
    edited = [STORED_CHAIN[0], attrs.evolve(STORED_CHAIN[1], reason="改过"), STORED_CHAIN[2]]
    assert [p.version for p in verify_events("S0000001", edited, None)] == [2]


# --- what the hash covers ------------------------------------------------------------------------
def test_notices_workflow_and_policy_are_hashed_only_when_present() -> None:
    """Events without them keep the old text (and hash); each one, when set, changes the hash."""
    base = GOLDEN_EVENTS["chinese_and_emoji"]
    assert canonical(base)[-1] == base.prev_hash  # nothing appended: the text of events written before them
    variants = {
        "notices": attrs.evolve(base, notices=("office",)),
        "two notices": attrs.evolve(base, notices=("office", "proposer:S0002")),
        "notices reordered": attrs.evolve(base, notices=("proposer:S0002", "office")),
        "workflow": attrs.evolve(base, workflow="suggestion@0123456789ab"),
        "other workflow": attrs.evolve(base, workflow="suggestion@ba9876543210"),
        "policy": attrs.evolve(base, policy="deadlines@0123456789ab"),
        "all three": attrs.evolve(base, notices=("office",), workflow="suggestion@0123456789ab",
                                  policy="deadlines@0123456789ab"),
    }
    hashes = {name: event_hash(e) for name, e in variants.items()}
    assert GOLDEN_HASHES["chinese_and_emoji"] not in hashes.values()
    assert len(set(hashes.values())) == len(variants), hashes
    assert canonical(variants["all three"])[-1] == {"notices": ["office"], "workflow": "suggestion@0123456789ab",
                                                    "policy": "deadlines@0123456789ab"}
    # an empty tuple and None are "not present": the old text
    assert event_hash(attrs.evolve(base, notices=(), workflow=None, policy=None)) == GOLDEN_HASHES["chinese_and_emoji"]


def test_seq_mac_and_the_hash_itself_are_not_hashed() -> None:
    """The store's ``seq``, the keyed ``mac`` and the stored ``hash`` are checked on their own."""
    for name, event in GOLDEN_EVENTS.items():
        sealed = seal(attrs.evolve(event, notices=("office",), workflow="w@1"))
        changed = attrs.evolve(sealed, seq=12_345, mac=mac_of(b"k" * 32, sealed.hash), hash="0" * 64)
        assert event_hash(changed) == event_hash(sealed) == sealed.hash, name
        assert event_hash(attrs.evolve(event, seq=1, mac="x")) == GOLDEN_HASHES[name], name


def test_the_mac_is_the_hmac_of_the_hash() -> None:
    key = b"a key kept outside the database"
    h = GOLDEN_HASHES["nested"]
    assert mac_of(key, h) == hmac.new(key, h.encode("ascii"), hashlib.sha256).hexdigest()
    assert mac_of(key, h) != mac_of(key + b"!", h)
    event = attrs.evolve(GOLDEN_EVENTS["ascii_receive"], hash=GOLDEN_HASHES["ascii_receive"])
    assert verify_events("S0001", [attrs.evolve(event, mac=mac_of(key, event.hash))], None, key=key) == []
    assert [p.problem for p in verify_events("S0001", [event], None, key=key)] == ["keyed seal (mac) missing or wrong"]
    wrong = attrs.evolve(event, mac=mac_of(b"another key entirely", event.hash))
    assert [p.problem for p in verify_events("S0001", [wrong], None, key=key)] == ["keyed seal (mac) missing or wrong"]


# --- the one writer ------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),  # includes lone surrogates, control characters and CJK
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _event_with_payload(payload: dict[str, Any]) -> Event:
    return Event(
        suggestion_id="S1", version=1, kind="receive", from_state=None, to_state=State.RECEIVED,
        actor=Actor("clerk", Role.COLLECTION_OFFICE, unit="XFB"), at=dt.datetime(2024, 8, 1, 9, tzinfo=SHANGHAI),
        changes={}, payload=payload,
    )


def _json_hash(event: Event) -> str:
    text = json.dumps(canonical(event), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@given(json_values)
def test_event_hash_is_the_sha256_of_compact_sorted_json(value: Any) -> None:
    event = _event_with_payload({"value": value})
    assert event_hash(event) == _json_hash(event)
    assert canonical_bytes(event) == json.dumps(canonical(event), ensure_ascii=False, sort_keys=True,
                                                separators=(",", ":")).encode("utf-8", "surrogatepass")


def test_special_floats_hash_as_json_writes_them() -> None:
    event = _event_with_payload({"score": math.inf, "nan": math.nan, "small": 1e-320})
    assert event_hash(event) == _json_hash(event)
    assert b'"nan":NaN' in canonical_bytes(event)


def test_values_json_cannot_write_raise_json_errors() -> None:
    circular: list[Any] = []
    circular.append(circular)
    for bad in ({1, 2}, object(), circular):
        with pytest.raises((TypeError, ValueError)):
            event_hash(_event_with_payload({"x": bad}))


# --- how field values are written inside events -------------------------------------------------
_JSON_TYPES = (str, int, bool, float, type(None), list, dict)


def _json_ready(value: Any) -> bool:
    if isinstance(value, list):
        return all(_json_ready(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_ready(v) for k, v in value.items())
    return type(value) in _JSON_TYPES


def test_every_field_encodes_to_plain_json_and_decodes_back() -> None:
    full = make_maximal("rules")
    values = {name: getattr(full, name) for name in SUGGESTION_FIELDS}
    assert None not in values.values()
    encoded = encode_changes(values)
    for name, value in values.items():
        assert _json_ready(encoded[name]), (name, encoded[name])
        back = decode_value(name, encoded[name])
        assert back == value and type(back) is type(value), name
        assert encode_value(name, None) is None
    assert json.loads(json.dumps(encoded, ensure_ascii=False)) == encoded
    # datetimes are written as the instant in UTC, whatever zone they came in
    assert encoded["received_at"] == full.received_at.astimezone(dt.UTC).isoformat()
    assert full.due_step is not None and encoded["due_step"] == full.due_step.value

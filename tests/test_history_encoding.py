"""The hash chain's canonical text: the fast writers write exactly what json's encoder writes."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import random
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jianyi_flow.domain import history
from jianyi_flow.domain.jsontext import NOT_PLAIN, prepare

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),  # includes lone surrogates, control characters and CJK
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.skipif(history._FAST is None, reason="json's C accelerator is not available")
@given(json_values)
def test_fast_encoder_writes_what_the_json_encoder_writes(value: Any) -> None:
    assert history._FAST is not None
    assert history._FAST(value) == history._ENCODER.encode(value)


def _json_bytes(value: Any) -> bytes:
    return history._ENCODER.encode(value).encode("utf-8", "surrogatepass")


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(plain_values)
def test_plain_values_are_written_as_json_writes_them(value: Any) -> None:
    """orjson's text for the values ``prepare`` lets through (big ints and lone surrogates included)."""
    assert history._canonical_bytes(value) == _json_bytes(value)


@given(json_values)
def test_any_value_is_written_as_json_writes_it(value: Any) -> None:
    assert history._canonical_bytes(value) == _json_bytes(value)


def test_every_code_point_is_written_as_json_writes_it() -> None:
    """ASCII (control characters, quote, backslash, DEL) through orjson's escaping, the rest as json's fragments."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(chars), 2048):
        block = chars[start:start + 2048]
        text = "".join(block)
        assert prepare(text) is not NOT_PLAIN
        assert history._canonical_bytes([text, {text: 1}]) == _json_bytes([text, {text: 1}])
        assert history._canonical_bytes(dict.fromkeys(block, 0)) == _json_bytes(dict.fromkeys(block, 0))
    ascii_chars = [chr(c) for c in range(128)]  # orjson's own escaping: control characters, quote, backslash, DEL
    ascii_values = [ascii_chars, "".join(ascii_chars), dict(zip("abcdefgh" * 16, ascii_chars, strict=True))]
    for value in ascii_values:
        assert prepare(value) is value
        assert history._canonical_bytes(value) == _json_bytes(value)
    ascii_keys = [chr(c) + chr(d) for c in range(128) for d in range(0, 128, 7)]
    random.Random(5).shuffle(ascii_keys)
    shuffled = dict.fromkeys(ascii_keys, 0)  # orjson sorts these keys itself (non-ASCII keys go to json)
    assert prepare(shuffled) is shuffled
    assert history._canonical_bytes(shuffled) == _json_bytes(shuffled)


def test_what_orjson_would_write_otherwise_goes_to_json() -> None:
    """Floats (``1e-05`` against orjson's ``0.00001``, ``NaN`` against ``null``), subclasses, enums, UUIDs."""

    class Text(str):
        pass

    class Level(enum.IntEnum):
        ONE = 1

    odd_values: list[Any] = [
        1e-05, math.nan, Text("x"), Level.ONE, {1: "int key"}, {Text("k"): 1}, [1.5], (None, 2.0), {"a": {"b": [1e16]}},
    ]
    for value in odd_values:
        assert prepare(value) is NOT_PLAIN, value
        assert prepare(["S1", 1, {"x": value}]) is NOT_PLAIN, value
        assert history._canonical_bytes(value) == _json_bytes(value)
    assert history._canonical_bytes([1e-05, math.nan]) == b"[1e-05,NaN]"
    with pytest.raises(TypeError):
        history._canonical_bytes({"id": uuid.UUID(int=1)})  # json cannot write it; orjson could, but is not asked


def test_prepare_leaves_the_callers_strings_and_containers_as_they_were() -> None:
    """orjson caches a UTF-8 copy on each str it reads; non-ASCII strings go in as json-escaped fragments instead."""
    title = "建议在永川区增加公交线路" * 8
    units = ("JW", "区教委")
    changes = {"title": title, "n": 1, "units": units, "tag": "ascii"}
    payload = {"note": "plain ascii", "list": [1, "two"]}
    size = sys.getsizeof(title)
    content = ["S1", 1, changes, payload, "教委"]
    assert prepare(payload) is payload  # nothing to replace: the same object
    ready = prepare(content)
    assert ready is not content and ready[2] is not changes and ready[2]["units"] is not units
    assert changes == {"title": title, "n": 1, "units": units, "tag": "ascii"}
    assert list(changes) == ["title", "n", "units", "tag"]
    assert history._canonical_bytes(content) == _json_bytes(content)
    assert sys.getsizeof(title) == size  # no UTF-8 copy cached on the caller's string
    assert history._canonical_bytes({"标题": 1}) == _json_bytes({"标题": 1})  # a non-ASCII key: json writes it


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_what_orjson_refuses_is_written_by_json() -> None:
    """Integers beyond 64 bits and lone surrogates pass ``prepare``; orjson refuses them."""
    for value in (2**64, -(2**63) - 1, "lone \ud800 surrogate", {"k": ["\udfff"]}):
        assert prepare(value) is not NOT_PLAIN
        assert history._canonical_bytes(value) == _json_bytes(value)


def test_nesting_deeper_than_orjson_goes_to_json() -> None:
    """orjson writes 254 levels and refuses 255; ``prepare`` draws the same line, and a cycle ends there."""
    assert prepare(_nested(254)) is not NOT_PLAIN and prepare(_nested(255)) is NOT_PLAIN
    for levels in (254, 255, 600):
        assert history._canonical_bytes(_nested(levels)) == _json_bytes(_nested(levels))


def test_event_hash_is_the_sha256_of_json_text() -> None:
    event = _event_with_payload({"note": "意见\n\"quoted\"", "n": 2**70, "units": ("A", "B")})
    text = json.dumps(history.canonical(event), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert history.event_hash(event) == hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def test_values_json_cannot_write_still_raise_json_errors() -> None:
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(ValueError, match="Circular reference"):
        history._ENCODER.encode(circular)
    for bad in ({1, 2}, object(), circular):
        event = _event_with_payload({"x": bad})
        with pytest.raises((TypeError, ValueError)):
            history.event_hash(event)


def test_special_floats_hash_as_json_writes_them() -> None:
    event = _event_with_payload({"score": math.inf, "nan": math.nan, "small": 1e-320})
    text = json.dumps(history.canonical(event), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert history.event_hash(event) == hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _event_with_payload(payload: dict[str, Any]) -> Any:
    import datetime as dt

    from jianyi_flow.domain.clock import SHANGHAI
    from jianyi_flow.domain.model import Actor, Event, Role, State

    return Event(
        suggestion_id="S1", version=1, kind="receive", from_state=None, to_state=State.RECEIVED,
        actor=Actor("clerk", Role.COLLECTION_OFFICE, unit="XFB"), at=dt.datetime(2024, 8, 1, 9, tzinfo=SHANGHAI),
        changes={}, payload=payload,
    )


def test_a_datetime_subclass_never_enters_the_shared_encoding_memo() -> None:
    """A subclass may format itself otherwise: a plain datetime at the same instant must keep its own text."""
    import datetime as dt

    from jianyi_flow.domain.model import encode_datetime

    class Millis(dt.datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return super().isoformat(sep, "milliseconds")

    odd = Millis(2024, 9, 5, 15, 59, 59, 999_999, tzinfo=dt.UTC)
    plain = dt.datetime(2024, 9, 5, 23, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert encode_datetime(odd) == "2024-09-05T15:59:59.999+00:00"
    assert encode_datetime(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # another value in between
    assert encode_datetime(plain) == "2024-09-05T15:59:59.999999+00:00"


# --- encode_value: the field rules, by one lookup -------------------------------------------
def _encode_by_the_rules(name: str, value: Any) -> Any:
    """encode_value as first written: one membership test after another."""
    from jianyi_flow.domain import model

    if value is None:
        return None
    if name in model._DATETIME_FIELDS:
        return value.astimezone(model.dt.UTC).isoformat()
    if name in model._ENUM_FIELDS:
        return value.value
    if name in model._TUPLE_FIELDS:
        return list(value)
    if name == "upward_reports":
        return [form.value for form in value]
    if name == "evaluation":
        return {"quality": value.quality, "value": value.value, "effect": value.effect, "evaluator": value.evaluator}
    if name == "proposer":
        return model.encode_proposer(value)
    return value


def test_encode_value_and_encode_changes_follow_the_field_rules() -> None:
    from jianyi_flow.domain import model
    from jianyi_flow.testing.contract import make_maximal

    full = make_maximal("rules")
    values = {name: getattr(full, name) for name in model.SUGGESTION_FIELDS}
    assert None not in values.values()
    expected = {name: _encode_by_the_rules(name, value) for name, value in values.items()}
    for name, value in values.items():
        assert model.encode_value(name, value) == expected[name], name
        assert type(model.encode_value(name, value)) is type(expected[name]), name
        assert model.encode_value(name, None) is None
    assert model.encode_changes({**values, "due_at": None}) == {**expected, "due_at": None}
    assert model._SPECIAL_FIELDS == {"accused_units", "co_units", "upward_reports", "evaluation", "proposer"}

"""The hash chain's canonical text: the fast encoder writes exactly what json's encoder writes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jianyi_flow import history

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
    import hashlib

    assert history.event_hash(event) == hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _event_with_payload(payload: dict[str, Any]) -> Any:
    import datetime as dt

    from jianyi_flow.clock import SHANGHAI
    from jianyi_flow.model import Actor, Event, Role, State

    return Event(
        suggestion_id="S1", version=1, kind="receive", from_state=None, to_state=State.RECEIVED,
        actor=Actor("clerk", Role.COLLECTION_OFFICE, unit="XFB"), at=dt.datetime(2024, 8, 1, 9, tzinfo=SHANGHAI),
        changes={}, payload=payload,
    )


def test_a_datetime_subclass_never_enters_the_shared_encoding_memo() -> None:
    """A subclass may format itself otherwise: a plain datetime at the same instant must keep its own text."""
    import datetime as dt

    from jianyi_flow.model import encode_datetime

    class Millis(dt.datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return super().isoformat(sep, "milliseconds")

    odd = Millis(2024, 9, 5, 15, 59, 59, 999_999, tzinfo=dt.UTC)
    plain = dt.datetime(2024, 9, 5, 23, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert encode_datetime(odd) == "2024-09-05T15:59:59.999+00:00"
    assert encode_datetime(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # another value in between
    assert encode_datetime(plain) == "2024-09-05T15:59:59.999999+00:00"

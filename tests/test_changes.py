"""An event's ``changes`` name the fields its command changed; replay rebuilds the row either way.

Events written before (every field a command set, no-op entries included) must keep
replaying and verifying: the second half runs the same commands with the previous rule
(``changed_fields`` replaced by a plain copy) and compares.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from jianyi_flow import Flow, MemoryStore, Rating, State, replay
from jianyi_flow.domain import codec
from jianyi_flow.domain.clock import FakeClock
from jianyi_flow.domain.codec import ALWAYS_RECORDED, changed_fields, encode_value, replace
from jianyi_flow.domain.history import verify_events
from jianyi_flow.domain.personal import pseudonymous_row
from jianyi_flow.service import flow as flow_module
from jianyi_flow.testing import STEPS, T0, actor_for, drive_to, make_draft, make_flow

PATH = ("register", "transfer", "object_transfer", "accept_objection", "transfer", "research", "adopt", "reply",
        "rate", "reopen", "research", "adopt", "reply")
"""A long lifecycle: an objection, a second transfer, a reopen and a second round."""


def _walk(flow: Flow) -> str:
    s = flow.receive(make_draft(), actor_for("receive"))
    for name in PATH:
        if name == "rate":
            flow.rate(s.id, actor_for("rate", flow.store.load(s.id)), rating=Rating.DISSATISFIED, comment="未解决")
        else:
            STEPS[name](flow, s.id)
    return s.id


def _events(flow: Flow, sid: str) -> dict[str, Any]:
    return {e.kind: e.changes for e in flow.store.history(sid)}


def test_a_transfer_records_only_what_it_changed() -> None:
    clock = FakeClock(T0)
    flow = make_flow(MemoryStore(), clock)
    row = drive_to(flow, State.REGISTERED)
    clock.advance(hours=1)
    STEPS["transfer"](flow, row.id)
    changes = _events(flow, row.id)["transfer"]
    assert set(changes) == {"lead_unit", "co_units", "transferred_at", "due_step", "due_at", "due_from",
                            "objection_due_at"}
    # set by the command, but to the values the row already held: not recorded
    for name in ("extended", "extension_days", "extension_request", "policy", "objection_reason"):
        assert name not in changes


def test_a_receive_leaves_out_defaults_but_keeps_every_field_without_one() -> None:
    flow = make_flow(MemoryStore(), campaign=None)
    s = flow.receive(make_draft(topic=None), actor_for("receive"))
    changes = flow.store.history(s.id)[0].changes
    # no default: always recorded, even when None or empty
    assert changes["campaign"] is None and changes["topic"] is None and changes["accused_units"] == []
    assert changes["recommending_unit"] is None
    # a default, and set to it: left out
    for name in ("institution", "due_provisional", "extended", "extension_days", "extension_request"):
        assert name not in changes
    assert changes["due_step"] == "register"


def test_due_step_is_recorded_when_set_to_the_step_it_already_was() -> None:
    """accept_objection sets ``register`` after object_transfer's ``register``: the report judges the objection."""
    flow = make_flow(MemoryStore())
    row = drive_to(flow, State.RETURNED)
    events = flow.store.history(row.id)
    objected, accepted = events[-2], events[-1]
    assert objected.changes["due_step"] == accepted.changes["due_step"] == "register"
    assert "due_step" in ALWAYS_RECORDED


def test_every_prefix_of_a_long_lifecycle_replays_to_the_row_it_produced() -> None:
    flow = make_flow(MemoryStore())
    rows = []
    s = flow.receive(make_draft(), actor_for("receive"))
    rows.append(flow.store.load(s.id))
    for name in PATH:
        if name == "rate":
            flow.rate(s.id, actor_for("rate", flow.store.load(s.id)), rating=Rating.DISSATISFIED, comment="未解决")
        else:
            STEPS[name](flow, s.id)
        rows.append(flow.store.load(s.id))
    events = flow.store.history(s.id)
    for n, row in enumerate(rows, start=1):
        assert replay(events[:n]) == pseudonymous_row(row)
    assert flow.verify_all() == []


def test_events_written_with_every_field_still_replay_and_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    new_flow = make_flow(MemoryStore())
    new_sid = _walk(new_flow)
    # the previous rule: the event records every field the command set
    monkeypatch.setattr(flow_module, "changed_fields", lambda changes, before: dict(changes))
    old_flow = make_flow(MemoryStore())
    old_sid = _walk(old_flow)
    old, new = old_flow.store.history(old_sid), new_flow.store.history(new_sid)
    assert sum(map(len, (e.changes for e in old))) > sum(map(len, (e.changes for e in new)))
    assert verify_events(old_sid, old, old_flow.store.load(old_sid)) == []
    assert old_flow.verify_all() == []
    old_row, new_row = old_flow.store.load(old_sid), new_flow.store.load(new_sid)
    assert replay(old) == pseudonymous_row(old_row)
    ignore = {"event_hash"}
    assert {k: v for k, v in vars_of(old_row).items() if k not in ignore} == \
           {k: v for k, v in vars_of(new_row).items() if k not in ignore}


def vars_of(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in codec.SUGGESTION_FIELDS}


def test_changed_fields_compares_value_type_and_offset() -> None:
    row = drive_to(make_flow(MemoryStore()), State.TRANSFERRED)
    assert row.due_at is not None and row.lead_unit is not None
    assert changed_fields({"lead_unit": row.lead_unit, "reopen_count": 0, "extended": False}, row) == {}
    # equal in Python, but another JSON value or another offset: recorded
    assert changed_fields({"reopen_count": False, "extended": 0}, row) == {"reopen_count": False, "extended": 0}
    in_utc = row.due_at.astimezone(dt.UTC)
    assert in_utc == row.due_at
    assert changed_fields({"due_at": in_utc}, row) == {"due_at": in_utc}
    assert changed_fields({"due_at": row.due_at, "due_step": row.due_step}, row) == {"due_step": row.due_step}
    # an unknown field is passed on, for replace to refuse
    assert changed_fields({"no_such_field": 1}, row) == {"no_such_field": 1}


def test_datetimes_that_differ_by_fold_alone_are_different_changes_and_texts() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first = dt.datetime(2024, 10, 27, 2, 30, tzinfo=berlin)  # the hour that happens twice
    second = first.replace(fold=1)
    assert first == second and first.astimezone(dt.UTC) != second.astimezone(dt.UTC)
    row = drive_to(make_flow(MemoryStore()), State.TRANSFERRED)
    at_first = replace(row, {"due_at": first})
    assert changed_fields({"due_at": second}, at_first) == {"due_at": second}
    assert encode_value("due_at", first) == "2024-10-27T00:30:00+00:00"
    assert encode_value("due_at", second) == "2024-10-27T01:30:00+00:00"


def test_equal_deadline_instants_share_one_text() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    a = dt.datetime(2024, 9, 5, 23, 59, 59, 999_999, tzinfo=shanghai)
    b = dt.datetime(2024, 9, 5, 15, 59, 59, 999_999, tzinfo=dt.UTC)
    text = encode_value("due_at", a)
    assert text == "2024-09-05T15:59:59.999999+00:00"
    assert encode_value("objection_due_at", b) is text


def test_the_memory_store_numbers_outbox_messages_from_one_and_ignores_unknown_ids() -> None:
    flow = make_flow(MemoryStore())
    drive_to(flow, State.TRANSFERRED)
    store = flow.store
    assert isinstance(store, MemoryStore)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    claimed = store.claim(100, now, dt.timedelta(minutes=1))
    assert [m.id for m in claimed] == list(range(1, len(claimed) + 1))
    pending = store.outbox_pending()
    store.mark_sent([0, -1, len(claimed) + 1, 10**30], now)
    assert store.outbox_pending() == pending
    store.mark_sent([1], now)
    assert store.outbox_pending() == pending - 1
    assert [m.id for m in store.claim(100, now + dt.timedelta(minutes=2), dt.timedelta(minutes=1))] == \
           list(range(2, len(claimed) + 1))


def test_the_memory_store_keeps_the_committed_row_and_numbers_messages_when_it_hands_them_out() -> None:
    flow = make_flow(MemoryStore())
    s = drive_to(flow, State.TRANSFERRED)
    store = flow.store
    assert isinstance(store, MemoryStore)
    row = store.load(s.id)
    assert row.proposer.vaulted and row.proposer.name  # the committed row, data and all
    assert store.load(s.id) is row  # kept as committed: nothing rebuilt per read
    record = store.personal_data(s.id)
    assert record is not None and record.resolve(row.proposer.pseudonymous()) == row.proposer
    [history] = store.scan_histories(None, 10)
    assert history.row is row
    assert [m.id for m in history.messages] == list(range(1, len(history.messages) + 1))
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    claimed = store.claim(1, now, dt.timedelta(minutes=1))
    store.mark_sent([claimed[0].id], now)
    [again] = store.scan_histories(None, 10)
    assert [(m.id, m.attempts, m.sent_at) for m in again.messages][:2] == [(1, 1, now), (2, 0, None)]


def test_the_memory_store_forgets_an_erased_proposer_with_the_row_it_replaces() -> None:
    flow = make_flow(MemoryStore())
    s = drive_to(flow, State.TRANSFERRED)
    name = flow.store.load(s.id).proposer.name
    erased = flow.erase_personal_data(s.id, actor_for("register", s), reason="建议人申请删除")
    row = flow.store.load(s.id)
    assert row.proposer.erased and row.proposer.name != name and row.proposer.phone is None
    assert erased.proposer.name == row.proposer.name
    record = flow.store.personal_data(s.id)  # type: ignore[attr-defined]
    assert record is not None and record.erased
    assert flow.verify_history(s.id) == []


def test_replay_builds_the_row_apply_event_folds_to_and_refuses_alike() -> None:
    flow = make_flow(MemoryStore())
    s = drive_to(flow, State.RATED, rating=Rating.SATISFIED)
    events = flow.store.history(s.id)
    for n in range(1, len(events) + 1):
        folded = None
        for event in events[:n]:
            folded = codec.apply_event(folded, event)
        assert replay(events[:n]) == folded
    assert replay([]) is None
    first = events[0]
    incomplete = attrs.evolve(first, changes={k: v for k, v in first.changes.items() if k != "title"})
    for rebuild in (lambda es: replay(es), lambda es: codec.apply_event(None, es[0])):
        with pytest.raises(TypeError):
            rebuild([incomplete, *events[1:]])
    unknown = attrs.evolve(events[1], changes={**events[1].changes, "no_such_field": 1})
    with pytest.raises(ValueError, match="no_such_field"):
        replay([first, unknown])


@pytest.mark.parametrize("value", ["no_such_state", 3, None, ["transferred"]])
def test_an_enum_field_decodes_known_values_only(value: object) -> None:
    decode = codec.FIELD_DECODERS["state"]
    assert decode("transferred") is State.TRANSFERRED
    with pytest.raises((ValueError, TypeError)):
        decode(value)


def test_equal_datetime_texts_decode_to_one_datetime() -> None:
    decode = codec.FIELD_DECODERS["due_at"]
    text = "2024-10-21T15:59:59.999999+00:00"
    assert decode(text) is decode("".join(text))
    assert decode(text) == dt.datetime(2024, 10, 21, 23, 59, 59, 999999, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert decode(text).tzinfo == ZoneInfo("Asia/Shanghai")


def test_a_stored_proposer_with_an_unknown_erasure_is_refused() -> None:
    stored = {"kind": "citizen", "confidential": False, "vaulted": True, "erased": "forgotten"}
    with pytest.raises(ValueError, match="unknown erasure"):
        codec.decode_proposer(stored)
    assert codec.decode_proposer({**stored, "erased": None}).name == ""


def test_memory_store_says_how_many_suggestions_it_holds() -> None:
    store = MemoryStore()
    assert repr(store) == "MemoryStore(0 suggestions)"
    make_flow(store).receive(make_draft(), actor_for("receive"))
    assert repr(store) == "MemoryStore(1 suggestions)"

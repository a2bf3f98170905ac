"""What the command path computes once must still follow what it depends on.

A ``Flow`` remembers its deadlines per step and start day: replacing its policy or its
calendar must give the new deadlines at once.  ``storage.base.matcher`` (a query's bounds
worked out once) must agree with ``matches`` row by row, and keep refusing a naive bound
only where ``matches`` would.
"""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from helpers import START, make_flow, receive
from jianyi_flow import CalendarDays, MemoryStore, Query, State, Step
from jianyi_flow.domain.calendar import CalendarMode, ChinaCalendar
from jianyi_flow.domain.codec import replace, suggestion_of, with_seq
from jianyi_flow.domain.model import Event, Suggestion
from jianyi_flow.errors import CalendarNotCovered, ValidationError
from jianyi_flow.storage.base import Order, matcher, matches


def test_deadlines_follow_a_replaced_policy() -> None:
    flow = make_flow()
    first = receive(flow)
    assert first.due_at == flow.policy.due_for(Step.REGISTER, START, flow.calendar)
    flow.policy = flow.policy.with_step(Step.REGISTER, CalendarDays(3), "test")
    second = receive(flow)
    assert second.due_at == flow.policy.due_for(Step.REGISTER, START, flow.calendar)
    assert second.due_at < first.due_at
    assert flow.due_for(Step.REGISTER, START) == second.due_at


def test_deadlines_follow_a_replaced_calendar() -> None:
    flow = make_flow()
    later = START.replace(year=2030)  # provisional in the default calendar, not covered in strict mode
    assert flow.due_for(Step.REGISTER, later) == flow.policy.due_for(Step.REGISTER, later, flow.calendar)
    flow.calendar = ChinaCalendar(mode=CalendarMode.STRICT)
    with pytest.raises(CalendarNotCovered):
        flow.due_for(Step.REGISTER, later)
    assert flow.due_for(Step.REGISTER, START) == flow.policy.due_for(Step.REGISTER, START, flow.calendar)


def test_due_for_refuses_a_naive_start_by_name() -> None:
    flow = make_flow()
    with pytest.raises(ValidationError) as raised:
        flow.due_for(Step.REGISTER, dt.datetime(2024, 8, 21, 9))
    assert raised.value.field == "start"


def test_a_naive_bound_is_refused_before_any_row_as_a_sql_store_refuses_it() -> None:
    flow = make_flow(MemoryStore())
    row = receive(flow)
    naive = dt.datetime(2024, 9, 1)
    for query in (Query(due_before=naive), Query(states=[State.WITHDRAWN], received_after=naive),
                  Query(order=Order.DUE, after=(naive, row.id))):
        with pytest.raises(ValidationError):
            matcher(query)
        with pytest.raises(ValidationError):
            matches(query, row)
        with pytest.raises(ValidationError):  # even when no row would reach the bound
            flow.store.query(query)


def test_rows_and_events_can_be_built_positionally() -> None:
    """``codec.replace`` and ``codec.with_seq`` pass every field by position, in declaration order."""
    for cls in (Suggestion, Event):
        assert all(a.init and not a.kw_only and a.alias == a.name for a in attrs.fields(cls)), cls
    flow = make_flow(MemoryStore())
    row = receive(flow)
    assert replace(row, {}) == row
    assert replace(row, {"title": "新标题"}) == attrs.evolve(row, title="新标题")
    with pytest.raises(TypeError, match="no_such_field"):
        replace(row, {"no_such_field": 1})
    event = flow.store.history(row.id)[0]
    assert with_seq(event, 99) == attrs.evolve(event, seq=99)


def test_suggestion_of_builds_a_row_from_fields_by_name() -> None:
    """``codec.suggestion_of`` (the SQL store's decoder) fills left-out fields with their defaults."""
    assert not any(isinstance(a.default, attrs.Factory) for a in attrs.fields(Suggestion))  # type: ignore[arg-type]
    row = receive(make_flow(MemoryStore()))
    fields = attrs.asdict(row, recurse=False)
    assert suggestion_of(fields) == row
    assert suggestion_of({**fields, "registration_number": None, "title": "新标题"}) == attrs.evolve(
        row, registration_number=None, title="新标题")
    defaults = {a.name: a.default for a in attrs.fields(Suggestion) if a.default is not attrs.NOTHING}
    required = {name: value for name, value in fields.items() if name not in defaults}
    assert suggestion_of(required) == attrs.evolve(row, **defaults)
    with pytest.raises(TypeError, match="title"):
        suggestion_of({name: value for name, value in fields.items() if name != "title"})
    with pytest.raises(TypeError, match="no_such_field"):
        suggestion_of({**fields, "no_such_field": 1})

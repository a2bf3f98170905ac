"""``Flow.list_suggestions`` (issue 23 item 1): filters, orders, cursor paging, totals, masking, scopes.

A world of 32 suggestions with mixed states, units, areas, topics, proposers, submitters,
receipt times (some equal) and ids in no particular order is listed through Flow, page by
page, and every answer is compared with what plain Python computes from the stored rows:
the filter written out here as a predicate and the order as a sort key, independently of
the store's own ``matches`` and ``order``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from helpers import (
    ACCOUNT,
    AREA,
    CO_UNIT,
    EVALUATOR,
    LEAD_UNIT,
    OFFICE,
    OFFICER,
    OTHER_AREA,
    OTHER_PROPOSER,
    OTHER_UNIT,
    PHONE,
    PROPOSER,
    REC_UNIT,
    START,
    UNIT,
    make_draft,
    make_flow,
    make_proposer,
    shanghai,
)
from jianyi_flow import (
    ALLOW_ALL,
    Actor,
    Flow,
    MemoryStore,
    Order,
    Outcome,
    Query,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    Role,
    State,
    Suggestion,
    ValidationError,
)
from jianyi_flow.domain.codec import encode_changes, replace
from jianyi_flow.domain.history import seal
from jianyi_flow.domain.model import SYSTEM_ACTOR, Event
from jianyi_flow.domain.workflow import HANDLED_STATES, OPEN_STATES
from jianyi_flow.storage.base import Change, matcher, order

N = 32
LEADER = Actor("leader-1", Role.LEADERSHIP)
CITY = Actor("city-1", Role.MUNICIPAL_OFFICE)
LEAD_STAFF = UNIT
CO_STAFF = Actor("unit-3", Role.HANDLING_UNIT, unit=CO_UNIT)
OTHER_STAFF = Actor("unit-2", Role.HANDLING_UNIT, unit=OTHER_UNIT)
REC_STAFF = Actor("rec-1", Role.RECOMMENDING_UNIT, unit=REC_UNIT)
SECRET_NAME = "欧阳娜娜"
SECRET_PHONE = "13987654321"


def _ids() -> Callable[[], str]:
    names = [f"{chr(ord('a') + (i * 7) % 26)}{(i * 37) % 100:02d}" for i in range(N + 40)]
    random.Random(23).shuffle(names)
    it = iter(names)
    return lambda: next(it)


def _make(flow: Flow, i: int) -> None:
    """Suggestion ``i`` of the world, received at its own time and walked to its own state."""
    confidential = i % 5 == 0
    proposer = make_proposer(
        name=SECRET_NAME if confidential else "张三", phone=SECRET_PHONE if confidential else PHONE,
        confidential=confidential, account=ACCOUNT if i % 3 == 0 else OTHER_PROPOSER.id)
    draft = make_draft(
        area=AREA if i % 3 else OTHER_AREA, topic="transport" if i % 2 else "housing",
        recommending_unit=REC_UNIT if i % 4 == 0 else None, proposer=proposer,
        problem=f"请回电 {proposer.phone}" if confidential else "班次太少")
    submitter = OFFICER if i % 6 == 1 else OFFICE
    sid = flow.receive(draft, submitter).id
    path = i % 8
    if path in (0, 6):
        if path == 6:
            flow.not_accept(sid, OFFICE, reason="个人诉求")
        return
    flow.register(sid, OFFICE)
    if i % 7 == 0:
        flow.report_upward(sid, OFFICE, form=ReportForm.EXCERPT)
    if i % 9 == 2:
        flow.forward_to_city(sid, OFFICE)
    if path == 1:
        return
    lead, co = (OTHER_UNIT, (LEAD_UNIT,)) if path == 3 else (LEAD_UNIT, (CO_UNIT,))
    flow.transfer(sid, OFFICE, lead_unit=lead, co_units=co)
    if path in (2, 3):
        return
    lead_staff = OTHER_STAFF if lead == OTHER_UNIT else LEAD_STAFF
    flow.research(sid, lead_staff, findings="调研", method=ResearchMethod.SURVEY)
    if path == 4:
        return
    flow.decide(sid, lead_staff, outcome=Outcome.ADOPTED)
    if path == 7:
        flow.reply(sid, lead_staff, text="已采纳", form=ReplyForm.WRITTEN)


def _build() -> Flow:
    flow = make_flow(ids=_ids())
    clock = flow.clock
    for i in range(N):
        if i not in (11, 12):  # 11 and 12 are received at the same instant as 10
            clock.advance(hours=7 + (i * 13) % 29)  # type: ignore[attr-defined]
        _make(flow, i)
    return flow


@pytest.fixture(scope="module")
def world() -> Flow:
    return _build()


def rows(flow: Flow) -> list[Suggestion]:
    """Every stored row (trusted read)."""
    return flow.store.query(Query())


SORT: dict[Order, Callable[[Suggestion], Any]] = {
    Order.RECEIVED: lambda s: (s.received_at, s.id),
    Order.DUE: lambda s: (s.due_at, s.id),
    Order.REGISTRATION: lambda s: (s.registration_number, s.id),
    Order.ID: lambda s: s.id,
}
LISTED_IN: dict[Order, Callable[[Suggestion], bool]] = {
    Order.RECEIVED: lambda s: True,
    Order.DUE: lambda s: s.due_at is not None,
    Order.REGISTRATION: lambda s: s.registration_number is not None,
    Order.ID: lambda s: True,
}
"""The documented order (then id) and which rows an order lists at all."""


def expected(flow: Flow, keep: Callable[[Suggestion], bool], order: Order = Order.RECEIVED,
             descending: bool = False) -> list[str]:
    chosen = [s for s in rows(flow) if keep(s) and LISTED_IN[order](s)]
    return [s.id for s in sorted(chosen, key=SORT[order], reverse=descending)]


@attrs.frozen
class Listing:
    ids: list[str]
    items: list[Suggestion]
    totals: list[int | None]
    pages: int


def listing(flow: Flow, actor: Actor, limit: int = 5, **filters: Any) -> Listing:
    """Every page of a list, followed by its cursors."""
    items: list[Suggestion] = []
    totals: list[int | None] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = flow.list_suggestions(actor, cursor=cursor, limit=limit, with_total=True, **filters)
        pages += 1
        assert len(page.items) <= limit
        items.extend(page.items)
        totals.append(page.total)
        if page.next_cursor is None:
            return Listing([s.id for s in items], items, totals, pages)
        cursor = page.next_cursor
        assert pages < 100, "paging does not end"


# --- the world is varied enough to test anything -----------------------------------------------


def test_the_world_has_what_the_tests_need(world: Flow) -> None:
    stored = rows(world)
    assert len(stored) == N
    assert sorted(s.id for s in stored) != [s.id for s in sorted(stored, key=lambda s: s.received_at)]
    assert len({s.received_at for s in stored}) < N  # some received at the same instant
    assert {s.state for s in stored} >= {State.RECEIVED, State.REGISTERED, State.TRANSFERRED, State.RESEARCHED,
                                         State.ADOPTED, State.REPLIED, State.NOT_ACCEPTED}
    assert any(CO_UNIT in s.co_units for s in stored) and any(LEAD_UNIT in s.co_units for s in stored)
    assert any(s.proposer.confidential for s in stored if LEAD_UNIT in s.units())
    assert any(s.upward_reports for s in stored) and any(s.forwarded_to_city_at for s in stored)
    assert any(s.received_by == OFFICER.ref for s in stored)


# --- every filter, for the office (which sees everything) ----------------------------------------

LATE = START + dt.timedelta(days=5)
DUE_FROM, DUE_TO = shanghai(2024, 9, 10), shanghai(2024, 11, 1)

FILTERS: dict[str, tuple[dict[str, Any], Callable[[Suggestion], bool]]] = {
    "none": ({}, lambda s: True),
    "states": ({"states": [State.REGISTERED, State.TRANSFERRED]},
               lambda s: s.state in (State.REGISTERED, State.TRANSFERRED)),
    "states_as_values": ({"states": ["adopted", "replied"]}, lambda s: s.state in (State.ADOPTED, State.REPLIED)),
    "no_states": ({"states": []}, lambda s: False),
    "unit_any_relation": ({"unit": LEAD_UNIT}, lambda s: LEAD_UNIT in (s.lead_unit, s.recommending_unit, *s.co_units)),
    "relation_lead": ({"relation": "lead", "unit": LEAD_UNIT}, lambda s: s.lead_unit == LEAD_UNIT),
    "relation_co": ({"relation": "co_handling", "unit": LEAD_UNIT}, lambda s: LEAD_UNIT in s.co_units),
    "relation_recommending": ({"relation": "recommending", "unit": REC_UNIT},
                              lambda s: s.recommending_unit == REC_UNIT),
    "area": ({"area": OTHER_AREA}, lambda s: s.area == OTHER_AREA),
    "topic": ({"topic": "housing"}, lambda s: s.topic == "housing"),
    "received_after": ({"received_after": LATE}, lambda s: s.received_at >= LATE),
    "received_before": ({"received_before": LATE}, lambda s: s.received_at < LATE),
    "received_range": ({"received_after": START + dt.timedelta(days=2), "received_before": LATE},
                       lambda s: START + dt.timedelta(days=2) <= s.received_at < LATE),
    "due_range": ({"due_after": DUE_FROM, "due_before": DUE_TO},
                  lambda s: s.due_at is not None and DUE_FROM <= s.due_at < DUE_TO),
    "provisional_false": ({"provisional": False}, lambda s: not s.due_provisional),
    "combined": ({"states": [State.TRANSFERRED, State.RESEARCHED, State.ADOPTED], "unit": LEAD_UNIT,
                  "area": AREA, "received_before": LATE + dt.timedelta(days=3)},
                 lambda s: s.state in (State.TRANSFERRED, State.RESEARCHED, State.ADOPTED)
                 and LEAD_UNIT in s.units() and s.area == AREA and s.received_at < LATE + dt.timedelta(days=3)),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_lists_exactly_the_matching_rows_with_their_total(world: Flow, name: str) -> None:
    filters, keep = FILTERS[name]
    want = expected(world, keep)
    got = listing(world, OFFICE, **filters)
    assert got.ids == want
    assert set(got.totals) == {len(want)}
    if name != "no_states":
        assert want, "the filter matches nothing in the world: it proves nothing"
    if name not in ("no_states", "none", "provisional_false"):  # nothing is provisional in the world
        assert len(want) < N, "the filter matches everything: it proves nothing"


def test_the_overdue_filter_uses_the_clock(world: Flow) -> None:
    flow = Flow(world.store, type(world.clock)(shanghai(2024, 10, 1)))
    now = flow.clock.now()
    want = expected(flow, lambda s: s.state in OPEN_STATES and s.due_at is not None and s.due_at < now)
    assert want and len(want) < len([s for s in rows(flow) if s.state in OPEN_STATES])
    assert listing(flow, OFFICE, overdue=True).ids == want
    both = listing(flow, OFFICE, overdue=True, states=[State.RECEIVED, State.NOT_ACCEPTED])
    assert both.ids == [i for i in want if flow.store.load(i).state is State.RECEIVED]


def test_the_provisional_filter_keeps_rows_with_a_provisional_deadline() -> None:
    """A deadline counted over provisional calendar days is flagged on the row; the filter finds it."""
    flow = _build()
    target = next(s for s in rows(flow) if s.state is State.TRANSFERRED)
    _mark_provisional(flow, target)
    assert listing(flow, OFFICE, provisional=True).ids == [target.id]
    assert target.id not in listing(flow, OFFICE, provisional=False).ids
    assert flow.verify_history(target.id) == []


def _retimed(flow: Flow, s: Suggestion, fields: dict[str, Any]) -> None:
    """What a re-timing by the system writes: one sealed event setting ``fields``."""
    at = flow.clock.now()
    event = seal(Event(suggestion_id=s.id, version=s.version + 1, kind="retime", from_state=s.state,
                       to_state=s.state, actor=SYSTEM_ACTOR, at=at, changes=encode_changes(fields),
                       prev_hash=s.event_hash, workflow=s.workflow))
    new = replace(s, {**fields, "version": s.version + 1, "updated_at": at, "event_hash": event.hash})
    flow.store.commit(Change(new, event, expected_version=s.version))


def _mark_provisional(flow: Flow, s: Suggestion) -> None:
    """A re-timing flagging the deadline provisional."""
    _retimed(flow, s, {"due_provisional": True})


def test_a_relation_needs_a_unit_for_the_office(world: Flow) -> None:
    with pytest.raises(ValidationError) as caught:
        world.list_suggestions(OFFICE, relation="lead")
    assert caught.value.field == "unit"
    with pytest.raises(ValidationError) as caught:
        world.list_suggestions(OFFICE, relation="boss", unit=LEAD_UNIT)
    assert caught.value.field == "relation"


# --- every order, ascending and descending --------------------------------------------------------


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("order", list(Order), ids=lambda o: o.value)
def test_every_order_both_ways_pages_through_every_row_once(world: Flow, order: Order, descending: bool) -> None:
    want = expected(world, lambda s: True, order, descending)
    for limit in (1, 4, 7, 100):
        got = listing(world, OFFICE, limit=limit, order=order, descending=descending)
        assert got.ids == want
        assert len(got.ids) == len(set(got.ids))
        assert set(got.totals) == {len(want)}
        assert got.pages == max(1, -(-len(want) // limit)) + (1 if want and len(want) % limit == 0 else 0)
    assert listing(world, OFFICE, order=order.value, descending=descending).ids == want  # the value works too


def test_orders_list_what_they_can_sort(world: Flow) -> None:
    """Due order lists open rows (those with a due time); registration order registered rows."""
    stored = rows(world)
    assert len(listing(world, OFFICE, order=Order.DUE).ids) == sum(s.due_at is not None for s in stored) < N
    assert len(listing(world, OFFICE, order=Order.REGISTRATION).ids) == sum(
        s.registration_number is not None for s in stored) < N


def test_a_page_without_total_and_an_empty_last_page(world: Flow) -> None:
    page = world.list_suggestions(OFFICE, limit=3)  # no total unless asked: a count reads every match
    assert page.total is None and len(page.items) == 3 and page.next_cursor is not None
    want = expected(world, lambda s: True)
    exact = world.list_suggestions(OFFICE, limit=N, with_total=True)
    assert [s.id for s in exact.items] == want and exact.total == N
    # a full last page may be followed by an empty one; it ends the list
    after = world.list_suggestions(OFFICE, limit=N, cursor=exact.next_cursor) if exact.next_cursor else None
    assert after is None or (after.items == () and after.next_cursor is None)


def test_a_cursor_belongs_to_its_order_and_direction(world: Flow) -> None:
    cursor = world.list_suggestions(OFFICE, limit=2, order=Order.RECEIVED).next_cursor
    assert cursor is not None
    for other in ({"order": Order.DUE}, {"descending": True}):
        with pytest.raises(ValidationError) as caught:
            world.list_suggestions(OFFICE, limit=2, cursor=cursor, **other)
        assert caught.value.field == "cursor"


# --- paging while others write --------------------------------------------------------------------


def _pages(flow: Flow, actor: Actor, between: Callable[[int], None], **kw: Any) -> Iterator[list[Suggestion]]:
    cursor: str | None = None
    n = 0
    while True:
        page = flow.list_suggestions(actor, cursor=cursor, **kw)
        yield list(page.items)
        if page.next_cursor is None:
            return
        between(n)
        n += 1
        cursor = page.next_cursor


def test_received_order_pages_stay_stable_while_rows_are_added_and_changed() -> None:
    """Every row present at the start comes exactly once, in order; rows received meanwhile come after them."""
    flow = _build()
    before = expected(flow, lambda s: True)
    added: list[str] = []
    changing = iter([s for s in rows(flow) if s.state is State.RECEIVED])

    def between(n: int) -> None:
        flow.clock.advance(hours=1)  # type: ignore[attr-defined]
        row = next(changing, None)
        if row is not None:
            flow.register(row.id, OFFICE)  # changes the row, not its receipt time
        added.append(flow.receive(make_draft(title=f"新建议{n}"), OFFICE).id)

    seen = [s.id for page in _pages(flow, OFFICE, between, limit=4) for s in page]
    assert len(seen) == len(set(seen)), "a row came twice"
    assert [i for i in seen if i in before] == before
    assert seen[len(before):] == added[: len(seen) - len(before)]
    assert len(seen) > len(before), "no row received meanwhile was listed: the test proves nothing about them"


def test_due_order_pages_keep_every_row_whose_due_time_did_not_move() -> None:
    """Keyset paging promises nothing about a row whose sort value changes under it; every other row
    comes exactly once, in order, while others change and rows are added."""
    flow = _build()
    before = expected(flow, lambda s: True, Order.DUE)
    moved: set[str] = set()
    registered = iter([s for s in rows(flow) if s.state is State.REGISTERED])

    def between(n: int) -> None:
        flow.clock.advance(hours=2)  # type: ignore[attr-defined]
        row = next(registered, None)
        if row is not None:
            flow.transfer(row.id, OFFICE, lead_unit=LEAD_UNIT)  # a new deadline: this row moves
            moved.add(row.id)
        flow.receive(make_draft(), OFFICE)

    seen = [s.id for page in _pages(flow, OFFICE, between, limit=3, order=Order.DUE) for s in page]
    steady = [i for i in before if i not in moved]
    assert [i for i in seen if i in steady] == steady
    assert all(seen.count(i) == 1 for i in steady)
    assert moved


# --- who sees what ---------------------------------------------------------------------------------


def _sees(s: Suggestion, actor: Actor) -> bool:
    """Who may see what, written out from Flow.list_suggestions' documentation."""
    role = actor.role
    if role is Role.COLLECTION_OFFICE:
        return True
    if role in (Role.HANDLING_UNIT, Role.HANDLING_UNIT_HEAD, Role.RECOMMENDING_UNIT):
        return actor.unit in (s.lead_unit, s.recommending_unit, *s.co_units) and actor.unit not in s.accused_units
    if role is Role.PROPOSER:
        return s.proposer.account == actor.id
    if role is Role.INFORMATION_OFFICER:
        return s.received_by == actor.ref
    if role is Role.LEADERSHIP:
        return bool(s.upward_reports)
    if role is Role.MUNICIPAL_OFFICE:
        return s.forwarded_to_city_at is not None
    if role is Role.EVALUATOR:
        return s.state in HANDLED_STATES
    return False


VIEWERS = {"lead_unit": LEAD_STAFF, "co_unit": CO_STAFF, "other_unit": OTHER_STAFF, "recommending_unit": REC_STAFF,
           "proposer": PROPOSER, "other_proposer": OTHER_PROPOSER, "officer": OFFICER, "leadership": LEADER,
           "municipal_office": CITY, "evaluator": EVALUATOR,
           "unit_head": Actor("head-1", Role.HANDLING_UNIT_HEAD, unit=LEAD_UNIT)}


@pytest.mark.parametrize("who", sorted(VIEWERS))
def test_each_actor_lists_what_it_may_see_and_as_it_may_see_it(world: Flow, who: str) -> None:
    actor = VIEWERS[who]
    want = expected(world, lambda s: _sees(s, actor))
    got = listing(world, actor, limit=4)
    assert got.ids == want
    assert set(got.totals) == {len(want)}
    assert want, f"{who} sees nothing in the world: the test proves nothing"
    assert len(want) < N
    for item in got.items:
        assert item == world.get(item.id, actor)  # each row is the actor's view, the same as get gives


def test_units_list_by_relation_and_only_their_own(world: Flow) -> None:
    for relation, keep in (("lead", lambda s: s.lead_unit == LEAD_UNIT),
                           ("co_handling", lambda s: LEAD_UNIT in s.co_units),
                           ("recommending", lambda s: s.recommending_unit == LEAD_UNIT)):
        assert listing(world, LEAD_STAFF, relation=relation).ids == expected(world, keep)
    assert listing(world, LEAD_STAFF, relation="lead").ids and listing(world, LEAD_STAFF, relation="co_handling").ids
    assert listing(world, REC_STAFF, relation="recommending").ids == expected(
        world, lambda s: s.recommending_unit == REC_UNIT)
    assert listing(world, LEAD_STAFF, unit=LEAD_UNIT).ids == listing(world, LEAD_STAFF).ids
    with pytest.raises(ValidationError) as caught:
        world.list_suggestions(LEAD_STAFF, unit=OTHER_UNIT)
    assert caught.value.field == "unit"
    with pytest.raises(ValidationError):
        world.list_suggestions(Actor("unit-9", Role.HANDLING_UNIT), relation="lead")


@pytest.mark.parametrize("who", ["proposer", "officer", "leadership", "evaluator"])
def test_only_units_list_by_relation(world: Flow, who: str) -> None:
    with pytest.raises(ValidationError) as caught:
        world.list_suggestions(VIEWERS[who], relation="lead")
    assert caught.value.field == "relation"


def test_a_proposer_lists_only_their_own_and_filters_narrow_it(world: Flow) -> None:
    mine = expected(world, lambda s: s.proposer.account == ACCOUNT)
    assert listing(world, PROPOSER).ids == mine
    assert listing(world, PROPOSER, area=OTHER_AREA).ids == expected(
        world, lambda s: s.proposer.account == ACCOUNT and s.area == OTHER_AREA)
    assert set(mine).isdisjoint(listing(world, OTHER_PROPOSER).ids)


def test_an_officer_lists_what_they_submitted(world: Flow) -> None:
    assert listing(world, OFFICER).ids == expected(world, lambda s: s.received_by == OFFICER.ref)
    colleague = Actor("io-2", Role.INFORMATION_OFFICER, unit=REC_UNIT)
    assert listing(world, colleague).ids == []
    assert world.list_suggestions(colleague, with_total=True).total == 0


def test_rows_are_masked_for_units_and_whole_for_the_office_and_the_proposer(world: Flow) -> None:
    secret = [s for s in rows(world) if s.proposer.confidential and LEAD_UNIT in s.units()]
    assert secret
    shown = {s.id: s for s in listing(world, LEAD_STAFF).items}
    for s in secret:
        view = shown[s.id]
        text = repr(attrs.asdict(view))
        assert SECRET_NAME not in text and SECRET_PHONE not in text and ACCOUNT not in text
        assert view.proposer.name == "欧***" and view.proposer.account is None
        assert view.problem == "请回电 " + "*" * len(SECRET_PHONE)
    office = {s.id: s for s in listing(world, OFFICE).items}
    assert all(office[s.id] == s for s in secret)
    own = {s.id: s for s in listing(world, PROPOSER).items}
    assert all(own[s.id] == s for s in secret if s.proposer.account == ACCOUNT)


def test_a_trusted_flow_lists_everything_unmasked(world: Flow) -> None:
    trusted = Flow(world.store, world.clock, permissions=ALLOW_ALL)
    assert listing(trusted, OTHER_STAFF).ids == expected(world, lambda s: True)
    assert listing(trusted, OTHER_STAFF).items == [world.store.load(i) for i in expected(world, lambda s: True)]


def test_a_list_sees_only_its_campaign() -> None:
    """A Flow of a campaign lists that campaign's suggestions; a Flow of no campaign lists every one."""
    everything = _build()
    other = Flow(everything.store, everything.clock, campaign="OTHER")
    assert other.list_suggestions(OFFICE, with_total=True).total == 0
    theirs = other.receive(make_draft(), OFFICE)
    assert [s.id for s in other.list_suggestions(OFFICE).items] == [theirs.id]
    assert everything.campaign is None and theirs.id in listing(everything, OFFICE).ids


def test_a_unit_cannot_recommend_a_suggestion_that_accuses_it() -> None:
    """Such a row would be on the unit's list but invisible to it; it is refused at intake (Art. 30)."""
    flow = make_flow()
    flow.receive(make_draft(recommending_unit=REC_UNIT), OFFICE)
    with pytest.raises(ValidationError) as caught:
        flow.receive(make_draft(recommending_unit=REC_UNIT, accused_units=(REC_UNIT,)), OFFICE)
    assert caught.value.code == "accused_unit"
    page = flow.list_suggestions(REC_STAFF, with_total=True)
    assert page.total == 1 and len(page.items) == 1


def test_memory_store_due_bounds_find_what_a_full_scan_finds(world: Flow) -> None:
    """MemoryStore reads only the rows due on or before a bound's UTC day: the rows a scan of all finds."""
    every = rows(world)
    dues = sorted({s.due_at for s in every if s.due_at is not None})
    assert len(dues) > 20
    for i, due in enumerate(dues):
        for bound in (due, due + dt.timedelta(microseconds=1), due.astimezone(dt.UTC) - dt.timedelta(hours=i % 24)):
            for query in (Query(due_before=bound), Query(due_before=bound, due_after=dues[i // 2]),
                          Query(due_before=bound, states=OPEN_STATES, order=Order.DUE, descending=True)):
                keep = matcher(query)
                expected = [s.id for s in order(query, [s for s in every if keep(s)])]
                assert [s.id for s in world.store.query(query)] == expected
                assert world.store.count(query) == len(expected)


def test_memory_store_moves_a_row_whose_due_time_changes() -> None:
    flow = make_flow(MemoryStore())
    s = flow.receive(make_draft(), OFFICE)
    due = s.due_at
    assert due is not None
    just_after = Query(due_before=due + dt.timedelta(microseconds=1))
    assert [r.id for r in flow.store.query(just_after)] == [s.id]
    flow.clock.advance(days=3)  # type: ignore[attr-defined]
    moved = flow.register(s.id, OFFICE)
    flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT)
    later = flow.store.load(s.id).due_at
    assert later is not None and later.date() > due.date() and moved.id == s.id
    assert flow.store.query(just_after) == []
    assert [r.id for r in flow.store.query(Query(due_before=later + dt.timedelta(microseconds=1)))] == [s.id]


def test_memory_store_files_a_due_time_by_its_utc_day() -> None:
    """A due time just after midnight in Shanghai is the evening before in UTC: a UTC bound that evening finds it."""
    flow = make_flow(MemoryStore())
    s = flow.receive(make_draft(), OFFICE)
    due = dt.datetime(2024, 9, 2, 0, 30, tzinfo=s.received_at.tzinfo)  # 2024-09-01 16:30 UTC
    _retimed(flow, s, {"due_at": due})
    bound = dt.datetime(2024, 9, 1, 17, 0, tzinfo=dt.UTC)
    assert [r.id for r in flow.store.query(Query(due_before=bound))] == [s.id]
    assert flow.store.query(Query(due_before=bound - dt.timedelta(hours=1))) == []

"""Flow beyond the state machine: idempotency, concurrency, validation, masking, outbox,
supervision queries, deadlines set by each command, and the generated diagram."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from helpers import (
    ADDRESS,
    AREA,
    CO_UNIT,
    KNOWN_AREAS,
    LEAD_UNIT,
    OFFICE,
    OTHER_AREA,
    OTHER_UNIT,
    PHONE,
    PROPOSER,
    START,
    UNIT,
    assert_unchanged,
    drain,
    drive_to,
    end_of,
    fake_clock,
    make_clock,
    make_draft,
    make_flow,
    make_proposer,
    receive,
    shanghai,
    snapshot,
    stored,
    stored_history,
)
from jianyi_flow import (
    ALLOW_ALL,
    SHANGHAI,
    ConcurrencyConflict,
    DuplicateSuggestion,
    FakeClock,
    Flow,
    IdempotencyKeyReused,
    InvalidTransition,
    MemoryStore,
    NotFound,
    Outcome,
    Proposer,
    Query,
    Rating,
    ReplyForm,
    ResearchMethod,
    State,
    ValidationError,
)
from jianyi_flow.diagram import commands_table, mermaid
from jianyi_flow.domain.calendar import DayKind
from jianyi_flow.domain.history import seal
from jianyi_flow.domain.model import Event
from jianyi_flow.domain.workflow import TRANSITIONS
from jianyi_flow.service.guards import CommandContext
from jianyi_flow.storage.base import Change

ROOT = Path(__file__).resolve().parents[1]


# --- idempotency keys ---------------------------------------------------------------------------

def _count(flow: Flow) -> int:
    return flow.store.count(Query())


def test_retrying_a_command_with_its_key_returns_the_same_result_and_writes_nothing() -> None:
    flow = make_flow()
    s = receive(flow)
    first = flow.register(s.id, OFFICE, idempotency_key="reg-1")
    before = snapshot(flow, s.id)
    assert flow.register(s.id, OFFICE, idempotency_key="reg-1") == first
    assert_unchanged(flow, s.id, before)

    # later commands do not change what the retry answers, and the retry still writes nothing
    flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT)
    flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM)
    later = snapshot(flow, s.id)
    again = flow.register(s.id, OFFICE, idempotency_key="reg-1")
    assert again == first
    assert (again.state, again.version) == (State.REGISTERED, 2)
    assert_unchanged(flow, s.id, later)


def test_receive_retry_returns_the_same_suggestion_and_another_draft_under_its_key_is_refused() -> None:
    """A retried receive returns the suggestion it made; a different draft under the same key is a
    different request (issue 20 defect 3), not a retry: refused, not answered with the first result."""
    flow = make_flow()
    first = flow.receive(make_draft(), OFFICE, idempotency_key="portal-42")
    assert flow.receive(make_draft(), OFFICE, idempotency_key="portal-42") == first
    with pytest.raises(IdempotencyKeyReused):
        flow.receive(make_draft(title="另一个标题"), OFFICE, idempotency_key="portal-42")
    assert _count(flow) == 1
    assert len(stored_history(flow, first.id)) == 1


def test_a_key_used_for_another_command_is_refused() -> None:
    flow = make_flow()
    s = receive(flow)
    flow.register(s.id, OFFICE, idempotency_key="k")
    before = snapshot(flow, s.id)
    with pytest.raises(IdempotencyKeyReused) as info:
        flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, idempotency_key="k")
    assert info.value.key == "k"
    assert "register" in str(info.value)
    assert_unchanged(flow, s.id, before)
    with pytest.raises(IdempotencyKeyReused):
        flow.receive(make_draft(), OFFICE, idempotency_key="k")
    assert _count(flow) == 1


def test_a_key_used_for_another_suggestion_is_refused() -> None:
    flow = make_flow()
    a = receive(flow)
    b = receive(flow)
    flow.register(a.id, OFFICE, idempotency_key="k")
    before = snapshot(flow, b.id)
    with pytest.raises(IdempotencyKeyReused):
        flow.register(b.id, OFFICE, idempotency_key="k")
    assert_unchanged(flow, b.id, before)


def test_a_refused_command_does_not_use_up_its_key() -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    with pytest.raises(InvalidTransition):
        flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED, idempotency_key="r")
    assert flow.store.idempotency(UNIT.key, "r") is None
    flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM)
    done = flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED, idempotency_key="r")
    assert done.state is State.ADOPTED


@pytest.mark.parametrize("key", ["", "  ", "k" * 129, "bad\x00key", 123, b"k", ["k"]])
def test_a_malformed_key_is_refused(key: object) -> None:
    flow = make_flow()
    s = receive(flow)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.register(s.id, OFFICE, idempotency_key=key)  # type: ignore[arg-type]
    assert info.value.field == "idempotency_key"
    assert_unchanged(flow, s.id, before)


# --- concurrency -----------------------------------------------------------------------------------

class _Race:
    """A guard that lets another Flow act on the same suggestion between load and commit."""

    def __init__(self, command: str, act: Callable[[Flow, str], object]) -> None:
        self.command = command
        self.act = act
        self.other: Flow | None = None
        self.fired = False

    def check(self, ctx: CommandContext) -> None:
        if ctx.command == self.command and not self.fired:
            assert self.other is not None and ctx.suggestion is not None
            self.fired = True
            self.act(self.other, ctx.suggestion.id)


def _two_flows(race: _Race) -> Flow:
    """A Flow with ``race`` as its guard, and a second Flow on the same store for the race to use."""
    store, clock = MemoryStore(), make_clock()
    race.other = make_flow(store, clock)
    return make_flow(store, clock, guards=[race])


def test_concurrent_change_between_load_and_commit_is_a_conflict() -> None:
    race = _Race("register", lambda other, sid: other.withdraw(sid, PROPOSER, reason="不需要了"))
    flow = _two_flows(race)
    s = receive(flow)
    drain(flow.store)

    with pytest.raises(ConcurrencyConflict) as info:
        flow.register(s.id, OFFICE, idempotency_key="reg")
    assert race.fired
    err = info.value
    assert (err.suggestion_id, err.expected_version, err.actual_version) == (s.id, 1, 2)
    # only the winner's write is there
    assert stored(flow, s.id).state is State.WITHDRAWN
    assert [e.kind for e in stored_history(flow, s.id)] == ["receive", "withdraw"]
    assert [m.topic for m in drain(flow.store)] == ["withdraw"]
    assert flow.store.idempotency(OFFICE.key, "reg") is None
    assert flow.verify_history(s.id) == []


def test_a_concurrent_retry_of_the_same_keyed_command_returns_the_winners_result() -> None:
    race = _Race("register", lambda other, sid: other.register(sid, OFFICE, idempotency_key="reg"))
    flow = _two_flows(race)
    s = receive(flow)
    result = flow.register(s.id, OFFICE, idempotency_key="reg")
    assert race.fired
    assert result == flow.get(s.id, OFFICE)
    assert (result.state, result.version) == (State.REGISTERED, 2)
    assert len(stored_history(flow, s.id)) == 2


def test_committing_a_stale_change_directly_is_a_conflict() -> None:
    flow = make_flow()
    stale = receive(flow)
    flow.register(stale.id, OFFICE)
    before = snapshot(flow, stale.id)
    event = seal(Event(suggestion_id=stale.id, version=2, kind="not_accept", from_state=State.RECEIVED,
                       to_state=State.NOT_ACCEPTED, actor=OFFICE, at=START, reason="x", prev_hash=stale.event_hash))
    row = attrs.evolve(stale, state=State.NOT_ACCEPTED, version=2, event_hash=event.hash)
    with pytest.raises(ConcurrencyConflict) as info:
        flow.store.commit(Change(row, event, expected_version=1))
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)
    assert_unchanged(flow, stale.id, before)


def test_tick_skips_a_row_changed_meanwhile_and_handles_it_next_time() -> None:
    race = _Race("flag_overdue", lambda other, sid: other.register(sid, OFFICE))
    flow = _two_flows(race)
    s = receive(flow)
    at = shanghai(2024, 9, 6)
    assert flow.tick(at) == []
    assert race.fired
    assert [e.kind for e in stored_history(flow, s.id)] == ["receive", "register"]
    assert [e.kind for e in flow.tick(at)] == ["flag_overdue"]


def test_duplicate_id_and_unknown_id() -> None:
    flow = make_flow()
    s = receive(flow, suggestion_id="fixed-1")
    before = snapshot(flow, s.id)
    with pytest.raises(DuplicateSuggestion):
        receive(flow, make_draft(title="另一条"), suggestion_id="fixed-1")
    assert_unchanged(flow, s.id, before)
    with pytest.raises(NotFound):
        flow.get("nope", OFFICE)
    with pytest.raises(NotFound):
        flow.register("nope", OFFICE)
    with pytest.raises(NotFound):
        flow.history("nope", OFFICE)
    assert flow.store.history("nope") == []


# --- validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "标" * 101}, "title"),
        ({"problem": "问" * 1_000_000}, "problem"),
        ({"measures": "x" * 10_001}, "measures"),
        ({"title": "响铃\x07"}, "title"),
        ({"subject": "空\x00字符"}, "subject"),
        ({"problem": "escape \x1b[31m red"}, "problem"),
        ({"measures": "看似无害\u202etxt.exe"}, "measures"),
        ({"title": "隔离\u2066x\u2069"}, "title"),
        ({"subject": "孤立代理\ud800"}, "subject"),
        ({"proposer": make_proposer(phone="12345")}, "proposer.phone"),
        ({"proposer": make_proposer(phone="1381234567")}, "proposer.phone"),
        ({"proposer": make_proposer(phone="23-49299053")}, "proposer.phone"),
        ({"proposer": make_proposer(name="")}, "proposer.name"),
        ({"proposer": make_proposer(address="地址\u202e")}, "proposer.address"),
        ({"area": "no such area"}, "area"),
        ({"area": "atlantis"}, "area"),
        ({"topic": "话题"}, "topic"),
    ],
)
def test_receive_validation_names_the_field(overrides: dict[str, Any], field: str) -> None:
    flow = make_flow(known_areas=KNOWN_AREAS)
    with pytest.raises(ValidationError) as info:
        flow.receive(make_draft(**overrides), OFFICE)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert _count(flow) == 0


def test_forbidden_characters_are_named_in_the_message() -> None:
    flow = make_flow()
    with pytest.raises(ValidationError) as info:
        flow.receive(make_draft(measures="看似无害\u202etxt.exe"), OFFICE)
    assert "U+202E" in str(info.value)


def test_unknown_area_is_fine_without_a_list_of_known_areas() -> None:
    assert make_flow().receive(make_draft(area="atlantis"), OFFICE).area == "atlantis"


def test_receive_refuses_something_that_is_not_a_draft_without_permissions() -> None:
    flow = make_flow(permissions=ALLOW_ALL)
    with pytest.raises(ValidationError) as info:
        flow.receive({"title": "x"}, OFFICE)  # type: ignore[arg-type]
    assert info.value.field == "draft"


def test_receive_refuses_something_that_is_not_a_draft() -> None:
    """The office may receive anything: a form that is not a draft is a bad input, not a refusal of the office."""
    flow = make_flow()
    with pytest.raises(ValidationError) as info:
        flow.receive({"title": "x"}, OFFICE)  # type: ignore[arg-type]
    assert info.value.field == "draft"


@pytest.mark.parametrize("phone", ["13812345678", "19912345678", "023-49299053", "02349299053", "0571-88888888", None])
def test_valid_phones_are_accepted(phone: str | None) -> None:
    s = make_flow().receive(make_draft(proposer=make_proposer(phone=phone)), OFFICE)
    assert s.proposer.phone == phone


def test_text_is_stored_byte_exact() -> None:
    flow = make_flow()
    title = "'; DROP TABLE suggestions; -- <script>alert(1)</script>"
    problem = "第一行\n第二行\t缩进\r\n第三行 😀"
    s = flow.receive(make_draft(title=title, problem=problem), OFFICE)
    assert (flow.get(s.id, OFFICE).title, flow.get(s.id, OFFICE).problem) == (title, problem)
    assert flow.verify_history(s.id) == []


def test_command_text_is_validated_too() -> None:
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.research(s.id, UNIT, findings="结论\u202e反转", method=ResearchMethod.FORUM)
    assert info.value.field == "findings"
    with pytest.raises(ValidationError) as info:
        flow.research(s.id, UNIT, findings="x" * 10_001, method=ResearchMethod.FORUM)
    assert info.value.field == "findings"
    assert_unchanged(flow, s.id, before)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lead_unit": "no such unit"}, "lead_unit"),
        ({"lead_unit": "u_unknown"}, "lead_unit"),
        ({"lead_unit": LEAD_UNIT, "co_units": (LEAD_UNIT,)}, "co_units"),
        ({"lead_unit": LEAD_UNIT, "co_units": (CO_UNIT, CO_UNIT)}, "co_units"),
        ({"lead_unit": LEAD_UNIT, "co_units": ("u_unknown",)}, "co_units"),
        ({"lead_unit": LEAD_UNIT, "note": "备注\x07"}, "note"),
    ],
)
def test_transfer_validation(kwargs: dict[str, Any], field: str) -> None:
    flow = make_flow(known_units=[LEAD_UNIT, CO_UNIT, OTHER_UNIT])
    s = drive_to(flow, State.REGISTERED)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        flow.transfer(s.id, OFFICE, **kwargs)
    assert info.value.field == field
    assert_unchanged(flow, s.id, before)


@pytest.mark.parametrize("co_units", [(), (CO_UNIT,)])
def test_never_transferred_to_a_unit_it_accuses(co_units: tuple[str, ...]) -> None:
    """SuggestionDraft.accused_units: "it is never transferred to them (信访工作条例 Art. 30)"."""
    flow = make_flow()
    accused = (OTHER_UNIT,)
    s = flow.receive(make_draft(accused_units=accused), OFFICE)
    flow.register(s.id, OFFICE)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as info:
        if co_units:
            flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, co_units=accused)
        else:
            flow.transfer(s.id, OFFICE, lead_unit=OTHER_UNIT)
    assert info.value.field == ("co_units" if co_units else "lead_unit")
    assert OTHER_UNIT in str(info.value) and "Art. 30" in str(info.value)
    assert_unchanged(flow, s.id, before)
    assert flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,)).state is State.TRANSFERRED


def test_naive_datetimes_are_refused() -> None:
    naive = dt.datetime(2024, 8, 21, 9)
    with pytest.raises(ValidationError) as info:
        FakeClock(naive)
    assert info.value.field == "start"
    flow = make_flow()
    with pytest.raises(ValidationError) as info:
        flow.overdue(OFFICE, naive)
    assert info.value.field == "now"
    with pytest.raises(ValidationError) as info:
        flow.due_soon(OFFICE, dt.timedelta(days=1), naive)
    assert info.value.field == "now"


def test_a_clock_that_returns_naive_time_is_refused() -> None:
    class NaiveClock:
        def now(self) -> dt.datetime:
            return dt.datetime(2024, 8, 21, 9)

    flow = Flow(MemoryStore(), NaiveClock())
    with pytest.raises(ValidationError) as info:
        flow.receive(make_draft(), OFFICE)
    assert info.value.field == "clock.now()"
    assert _count(flow) == 0


# --- masking ----------------------------------------------------------------------------------------

def test_proposer_repr_never_shows_phone_or_address() -> None:
    p = make_proposer()
    assert PHONE not in repr(p) and ADDRESS not in repr(p)
    assert "'***'" in repr(p)
    assert repr(Proposer(name="李四")).count("None") >= 2
    flow = make_flow()
    s = flow.receive(make_draft(proposer=p), OFFICE)
    for shown in (repr(make_draft(proposer=p)), repr(s), repr(flow.get(s.id, OFFICE)), str(s)):
        assert PHONE not in shown
        assert ADDRESS not in shown
        assert PHONE[3:9] not in shown
    assert s.proposer.phone == PHONE  # stored in full, only hidden from repr


def test_masked_view() -> None:
    p = make_proposer(name="张三丰", confidential=True)
    m = p.masked()
    assert (m.name, m.phone, m.address) == ("张**", "138******78", "***")
    assert make_proposer(name="张三丰").masked().name == "张三丰"
    assert make_proposer(phone="023-49299053").masked().phone == "023*******53"
    assert make_proposer(phone=None, address=None).masked().phone is None


# --- outbox ----------------------------------------------------------------------------------------

def test_outbox_messages_and_recipients() -> None:
    flow = make_flow()
    s = receive(flow)
    assert [(m.topic, m.recipient, m.version, m.suggestion_id) for m in drain(flow.store)] == [
        ("receive", "office", 1, s.id)]
    flow.register(s.id, OFFICE)
    assert [(m.topic, m.recipient, m.version) for m in drain(flow.store)] == [("register", f"proposer:{s.id}", 2)]
    fake_clock(flow).advance(hours=1)
    flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT, OTHER_UNIT))
    messages = drain(flow.store)
    assert [(m.topic, m.recipient) for m in messages] == [
        ("transfer", f"unit:{LEAD_UNIT}"), ("transfer", f"unit:{CO_UNIT}"), ("transfer", f"unit:{OTHER_UNIT}")]
    assert {(m.version, m.created_at) for m in messages} == {(3, flow.clock.now())}
    assert all(m.payload == {"state": "transferred"} for m in messages)
    flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM)
    flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED)
    assert drain(flow.store) == []  # research and decide notify nobody
    flow.reply(s.id, UNIT, text="已采纳", form=ReplyForm.WRITTEN)
    assert [(m.topic, m.recipient, m.payload) for m in drain(flow.store)] == [
        ("reply", f"proposer:{s.id}", {"state": "replied"})]


def test_outbox_delivery_is_leased_and_at_least_once() -> None:
    flow = make_flow()
    s = receive(flow)
    flow.register(s.id, OFFICE)
    store = flow.store
    lease = dt.timedelta(minutes=5)
    first = store.claim(10, START, lease)
    assert [m.topic for m in first] == ["receive", "register"]
    assert [m.attempts for m in first] == [1, 1]
    assert first[0].id is not None and first[1].id is not None and first[0].id < first[1].id
    assert store.claim(10, START + dt.timedelta(minutes=4), lease) == []  # still leased
    store.mark_sent([first[0].id], START)
    again = store.claim(10, START + dt.timedelta(minutes=6), lease)  # lease ran out: redelivered
    assert [(m.topic, m.attempts) for m in again] == [("register", 2)]
    assert store.claim(1, START + dt.timedelta(hours=1), lease)[0].id == first[1].id


# --- supervision queries ----------------------------------------------------------------------------

@pytest.fixture
def supervised() -> tuple[Flow, dict[str, str]]:
    """A: received Wed 08-21 (register due Thu 09-05); B: received Thu 08-22, other area (due Fri 09-06);
    E: received Fri 08-23 (08-23 + 15 = Sat 09-07 -> due Mon 09-09); C: transferred Wed 08-21
    (research due 10-20 is a Sunday -> Mon 10-21); D: not accepted (nothing due)."""
    flow = make_flow()
    clock = fake_clock(flow)
    ids = {"A": receive(flow).id, "C": drive_to(flow, State.TRANSFERRED).id,
           "D": drive_to(flow, State.NOT_ACCEPTED).id}
    clock.set(shanghai(2024, 8, 22, 10))
    ids["B"] = receive(flow, make_draft(area=OTHER_AREA)).id
    clock.set(shanghai(2024, 8, 23, 10))
    ids["E"] = receive(flow).id
    due = {k: stored(flow, v).due_at for k, v in ids.items()}
    assert due == {"A": end_of(dt.date(2024, 9, 5)), "B": end_of(dt.date(2024, 9, 6)),
                   "E": end_of(dt.date(2024, 9, 9)), "C": end_of(dt.date(2024, 10, 21)), "D": None}
    return flow, ids


def _names(rows: list[Any], ids: dict[str, str]) -> list[str]:
    back = {v: k for k, v in ids.items()}
    return [back[r.id] for r in rows]


def test_overdue_most_overdue_first_with_filters(supervised: tuple[Flow, dict[str, str]]) -> None:
    flow, ids = supervised
    at = shanghai(2024, 9, 10)
    assert _names(flow.overdue(OFFICE, at), ids) == ["A", "B", "E"]
    assert _names(flow.overdue(OFFICE, at, area=AREA), ids) == ["A", "E"]
    assert _names(flow.overdue(OFFICE, at, area=OTHER_AREA), ids) == ["B"]
    assert _names(flow.overdue(OFFICE, at, limit=2), ids) == ["A", "B"]
    assert _names(flow.overdue(OFFICE, at, states=[State.REGISTERED]), ids) == []
    assert _names(flow.overdue(OFFICE, at, states=["received"]), ids) == ["A", "B", "E"]  # type: ignore[list-item]
    assert _names(flow.overdue(OFFICE, at, unit=LEAD_UNIT), ids) == []
    assert _names(flow.overdue(OFFICE, end_of(dt.date(2024, 9, 6))), ids) == ["A"]  # B is due at that very instant
    later = shanghai(2024, 10, 22)
    assert _names(flow.overdue(OFFICE, later), ids) == ["A", "B", "E", "C"]
    assert _names(flow.overdue(OFFICE, later, unit=LEAD_UNIT), ids) == ["C"]
    assert _names(flow.overdue(OFFICE, later, unit=CO_UNIT), ids) == ["C"]
    assert _names(flow.overdue(OFFICE, later, unit=OTHER_UNIT), ids) == []
    fake_clock(flow).set(later)
    assert _names(flow.overdue(OFFICE), ids) == ["A", "B", "E", "C"]  # defaults to the clock


def test_due_soon_soonest_first_excludes_overdue(supervised: tuple[Flow, dict[str, str]]) -> None:
    flow, ids = supervised
    noon = shanghai(2024, 9, 4, 12)
    assert _names(flow.due_soon(OFFICE, dt.timedelta(days=2), noon), ids) == ["A"]
    assert _names(flow.due_soon(OFFICE, dt.timedelta(days=3), noon), ids) == ["A", "B"]
    assert _names(flow.due_soon(OFFICE, dt.timedelta(days=30), noon, area=AREA), ids) == ["A", "E"]
    assert _names(flow.due_soon(OFFICE, dt.timedelta(days=60), noon, unit=LEAD_UNIT), ids) == ["C"]
    assert _names(flow.due_soon(OFFICE, dt.timedelta(days=60), noon, limit=1), ids) == ["A"]
    assert _names(flow.due_soon(OFFICE, dt.timedelta(days=5), shanghai(2024, 9, 6)), ids) == ["B", "E"]
    assert flow.due_soon(OFFICE, dt.timedelta(0), noon) == []
    with pytest.raises(ValidationError) as info:
        flow.due_soon(OFFICE, dt.timedelta(seconds=-1), noon)
    assert info.value.field == "within"


def test_queries_see_only_their_campaign() -> None:
    store, clock = MemoryStore(), make_clock()
    ours = make_flow(store, clock, campaign="cq2024")
    theirs = make_flow(store, clock, campaign="other", ids=lambda: "t1")
    mine = receive(ours)
    receive(theirs)
    at = shanghai(2024, 9, 10)
    assert [s.id for s in ours.overdue(OFFICE, at)] == [mine.id]
    assert [e.suggestion_id for e in ours.tick(at)] == [mine.id]
    assert mine.registration_number is None
    fake_clock(ours).set(at)  # the tick wrote an event at ``at``: later commands are not dated before it
    assert ours.register(mine.id, OFFICE).registration_number == f"cq2024-20240910-{mine.id}"


# --- deadlines set by each command (hand-computed) -------------------------------------------------

def test_registration_due_across_national_day() -> None:
    """Received Fri 2024-09-20: 09-20 + 15 = Sat 10-05, inside the National Day holiday
    (10-01..10-07), so registration is due at the end of Tue 10-08."""
    flow = make_flow(clock=make_clock(shanghai(2024, 9, 20, 10)))
    cal = flow.calendar
    assert cal.day_info(dt.date(2024, 10, 5)).kind is DayKind.HOLIDAY
    assert cal.day_info(dt.date(2024, 10, 7)).kind is DayKind.HOLIDAY
    assert cal.is_working_day(dt.date(2024, 10, 8))
    s = receive(flow)
    assert (s.due_step, s.due_at) == ("register", dt.datetime(2024, 10, 8, 23, 59, 59, 999999, tzinfo=SHANGHAI))
    assert s.received_at == shanghai(2024, 9, 20, 10)
    # registering later does not restart the 15 days
    fake_clock(flow).set(shanghai(2024, 9, 30, 9))
    assert flow.register(s.id, OFFICE).due_at == s.due_at


def test_receipt_day_is_the_shanghai_day() -> None:
    """2024-08-21T16:30Z is 00:30 on Thu 08-22 in Shanghai: 08-22 + 15 = Fri 09-06 (not 09-05)."""
    flow = make_flow(clock=FakeClock(dt.datetime(2024, 8, 21, 16, 30, tzinfo=dt.UTC)))
    assert receive(flow).due_at == end_of(dt.date(2024, 9, 6))


def test_transfer_sets_research_and_objection_deadlines_across_a_swapped_working_day() -> None:
    """Transferred Fri 2024-09-27.  Objection window: working days after it are Sun 09-29
    (a 调休 working day), Mon 09-30, then after the holiday Tue 10-08, Wed 10-09, Thu 10-10.
    Research: 09-27 + 60 = Tue 11-26, a working day."""
    flow = make_flow()
    s = drive_to(flow, State.REGISTERED)
    fake_clock(flow).set(shanghai(2024, 9, 27, 15))
    t = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT)
    assert t.objection_due_at == end_of(dt.date(2024, 10, 10))
    assert (t.due_step, t.due_at, t.transferred_at) == ("research", end_of(dt.date(2024, 11, 26)),
                                                        shanghai(2024, 9, 27, 15))
    r = flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM)
    assert (r.due_step, r.due_at, r.objection_due_at) == ("research", t.due_at, None)


def test_decide_reply_and_closing_deadlines() -> None:
    flow = make_flow()
    clock = fake_clock(flow)
    s = drive_to(flow, State.RESEARCHED)
    clock.set(shanghai(2024, 9, 16, 11))  # Mid-Autumn Monday: 09-16 + 15 = Tue 10-01, a holiday -> Tue 10-08
    d = flow.decide(s.id, UNIT, outcome=Outcome.DECLINED, reason="不具备条件")
    assert (d.due_step, d.due_at) == ("reply", end_of(dt.date(2024, 10, 8)))
    clock.set(shanghai(2024, 9, 20, 18))
    r = flow.reply(s.id, UNIT, text="答复", form=ReplyForm.WRITTEN)
    # 09-20 + 30 = Sun 10-20 -> Mon 10-21
    assert (r.due_step, r.due_at, r.replied_at) == ("rate", end_of(dt.date(2024, 10, 21)),
                                                    shanghai(2024, 9, 20, 18))
    rated = flow.rate(s.id, PROPOSER, rating=Rating.BASICALLY_SATISFIED)
    assert (rated.due_step, rated.due_at, rated.closed_at) == (None, None, shanghai(2024, 9, 20, 18))


@pytest.mark.parametrize("state", [State.NOT_ACCEPTED, State.WITHDRAWN, State.RATED, State.UNRATED])
def test_closed_suggestions_have_nothing_due(state: State) -> None:
    s = drive_to(make_flow(), state)
    assert (s.due_step, s.due_at, s.objection_due_at) == (None, None, None)
    assert s.closed_at is not None


# --- diagram and docs ------------------------------------------------------------------------------

def test_mermaid_mentions_every_state_and_trigger() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2\n")
    for state in State:
        assert f" as {state.value}\n" in text
    for trigger in {t["trigger"] for t in TRANSITIONS} | {"receive"}:
        assert f": {trigger}\n" in text or f": {trigger} (internal)" in text, trigger
    table = commands_table()
    for trigger in {t["trigger"] for t in TRANSITIONS}:
        assert f"| {trigger} |" in table


def test_states_page_contains_the_current_diagram() -> None:
    page = ROOT / "docs" / "states.md"
    if not page.exists():
        pytest.skip("docs/states.md is not written yet")
    assert mermaid() in page.read_text(encoding="utf-8")

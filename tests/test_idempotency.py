"""Idempotency keys after issue 20: scoped to the actor, bound to the request, one result under a race.

Defect 1: a key belongs to the actor who used it (as payment APIs scope keys to the
account).  Another actor sending the same key gets a fresh command of its own — run, or
refused by the guards — never the first actor's result; and a replay of one's own key is
checked and masked like a fresh command.  Defect 3: the same key with a different request
is :class:`IdempotencyKeyReused`; the same request gets the one result.  Defect 2 (here on
MemoryStore with threads; tests/test_idempotency_sql.py races processes on the SQL stores):
every concurrent retry under one key gets the one result, and one suggestion is stored.

A test whose docstring names a defect fails on the code before issue 20 (checked against
that code with the same scenario); the others are companions that pin the rule around it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs
import pytest

from helpers import (
    CO_UNIT,
    CO_UNIT_ACTOR,
    LEAD_UNIT,
    OFFICE,
    OTHER_PROPOSER,
    OTHER_UNIT,
    OTHER_UNIT_ACTOR,
    PHONE,
    PROPOSER,
    UNIT,
    assert_unchanged,
    drive_to,
    make_draft,
    make_flow,
    make_proposer,
    receive,
    snapshot,
    stored,
    stored_history,
)
from jianyi_flow import (
    Actor,
    Flow,
    IdempotencyKeyReused,
    MemoryStore,
    NotFound,
    Outcome,
    PermissionDenied,
    Query,
    ResearchMethod,
    Role,
    State,
    Suggestion,
    ValidationError,
)

THREADS = 8
ROUNDS = 50


def _text(s: Suggestion) -> str:
    """Everything a view holds, as text (``repr`` hides the phone: look at the values)."""
    return repr(attrs.asdict(s))


# --- defect 1: a key is the actor's own -------------------------------------------------------------


def test_another_actor_reusing_a_key_gets_its_own_refusal_not_the_first_result() -> None:
    """Defect 1: a unit that sends the office's key for ``register`` used to get the office's result, unmasked."""
    flow = make_flow()
    s = receive(flow, make_draft(proposer=make_proposer(confidential=True)))
    first = flow.register(s.id, OFFICE, idempotency_key="K")
    before = snapshot(flow, s.id)
    with pytest.raises(NotFound):  # the unit may not see a suggestion not transferred to it
        flow.register(s.id, OTHER_UNIT_ACTOR, idempotency_key="K")
    assert_unchanged(flow, s.id, before, keys=[(OTHER_UNIT_ACTOR, "K")])
    assert flow.register(s.id, OFFICE, idempotency_key="K") == first  # the office's own retry still works


def test_another_actor_who_may_see_it_is_judged_by_the_guards_not_by_the_key() -> None:
    """Defect 1: the co-handling unit sees the suggestion but may not research it; the lead unit's key
    does not lend it the lead unit's right (nor its result)."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    done = flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM, idempotency_key="K")
    before = snapshot(flow, s.id)
    with pytest.raises(PermissionDenied):
        flow.research(s.id, CO_UNIT_ACTOR, findings="调研", method=ResearchMethod.FORUM, idempotency_key="K")
    assert_unchanged(flow, s.id, before, keys=[(CO_UNIT_ACTOR, "K")])
    assert done.state is State.RESEARCHED


def test_two_proposers_using_the_same_key_each_get_their_own_suggestion() -> None:
    """Defect 1: a second proposer receiving under the first one's key used to get the first one's
    suggestion back — name, phone and account included."""
    flow = make_flow()
    mine = flow.receive(make_draft(), PROPOSER, idempotency_key="R")
    theirs_draft = make_draft(title="另一条建议", proposer=make_proposer(name="李四", phone="13900000000",
                                                                      account=OTHER_PROPOSER.id))
    theirs = flow.receive(theirs_draft, OTHER_PROPOSER, idempotency_key="R")
    assert theirs.id != mine.id
    assert (theirs.title, theirs.proposer.account) == ("另一条建议", OTHER_PROPOSER.id)
    assert PHONE not in _text(theirs) and "张三" not in _text(theirs)
    assert flow.store.count(Query()) == 2
    assert flow.receive(theirs_draft, OTHER_PROPOSER, idempotency_key="R") == theirs
    assert flow.receive(make_draft(), PROPOSER, idempotency_key="R") == mine


def test_the_same_person_acting_for_another_unit_has_other_keys() -> None:
    """Companion of defect 1: a key's scope is the whole actor (role, id and unit).

    The same id in another role or unit is another scope."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM, idempotency_key="K")
    assert flow.store.idempotency(UNIT.key, "K") is not None
    for other in (attrs.evolve(UNIT, unit=CO_UNIT), attrs.evolve(UNIT, role=Role.HANDLING_UNIT_HEAD)):
        assert flow.store.idempotency(other.key, "K") is None


def test_a_replay_is_masked_like_the_fresh_result() -> None:
    """Defect 1: a replay was the stored row, unmasked; it must be what the fresh command answered."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED, draft=make_draft(proposer=make_proposer(confidential=True),
                                                             problem=f"请打 {PHONE} 联系我"))
    fresh = flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM, idempotency_key="K")
    again = flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM, idempotency_key="K")
    assert again == fresh
    for shown in (fresh, again):
        assert PHONE not in _text(shown) and "张三" not in _text(shown)
        assert shown.proposer.account is None
    assert stored(flow, s.id).proposer.phone == PHONE


def test_a_replay_is_refused_to_an_actor_who_may_no_longer_see_it() -> None:
    """Defect 1: a replay skipped the visibility and permission checks a fresh command runs.  Once the
    office accepts its objection the unit no longer sees the suggestion, and its retry is NotFound."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    flow.object_transfer(s.id, UNIT, reason="不属本单位职责", idempotency_key="K")
    flow.accept_objection(s.id, OFFICE)
    before = snapshot(flow, s.id)
    with pytest.raises(NotFound) as caught:
        flow.object_transfer(s.id, UNIT, reason="不属本单位职责", idempotency_key="K")
    assert str(caught.value) == str(NotFound("suggestion", s.id))
    assert_unchanged(flow, s.id, before)


def test_a_replay_answers_with_the_result_at_the_time_and_the_actor_s_current_view() -> None:
    """Companion of defect 1: the replay is the suggestion as the command left it (not as it is now).

    It is shown as the actor may see it now."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    fresh = flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM, idempotency_key="K")
    flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED)
    again = flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM, idempotency_key="K")
    assert (again.state, again.version) == (State.RESEARCHED, fresh.version)
    assert again == fresh


# --- defect 3: a key is bound to its request --------------------------------------------------------


def test_the_same_key_with_other_arguments_is_refused() -> None:
    """Defect 3: ``transfer(lead_unit="CGJ", key=K)`` after ``transfer(lead_unit="JTJ", key=K)`` returned JTJ."""
    flow = make_flow()
    s = drive_to(flow, State.REGISTERED)
    first = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, idempotency_key="K")
    before = snapshot(flow, s.id)
    with pytest.raises(IdempotencyKeyReused) as caught:
        flow.transfer(s.id, OFFICE, lead_unit=OTHER_UNIT, idempotency_key="K")
    assert caught.value.key == "K"
    assert_unchanged(flow, s.id, before)
    assert flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, idempotency_key="K") == first
    assert stored(flow, s.id).lead_unit == LEAD_UNIT


Retry = Callable[[Flow, str], object]


@pytest.mark.parametrize(("state", "first", "other"), [
    (State.REGISTERED, lambda f, sid: f.transfer(sid, OFFICE, lead_unit=LEAD_UNIT, idempotency_key="K"),
     lambda f, sid: f.transfer(sid, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,), idempotency_key="K")),
    (State.REGISTERED, lambda f, sid: f.transfer(sid, OFFICE, lead_unit=LEAD_UNIT, idempotency_key="K"),
     lambda f, sid: f.transfer(sid, OFFICE, lead_unit=LEAD_UNIT, note="加急", idempotency_key="K")),
    (State.RECEIVED, lambda f, sid: f.not_accept(sid, OFFICE, reason="个人诉求", idempotency_key="K"),
     lambda f, sid: f.not_accept(sid, OFFICE, reason="另一理由", idempotency_key="K")),
    (State.RECEIVED, lambda f, sid: f.register(sid, OFFICE, idempotency_key="K"),
     lambda f, sid: f.register(sid, OFFICE, registration_number="NO-1", idempotency_key="K")),
], ids=["co_units", "note", "reason", "registration_number"])
def test_any_argument_that_differs_makes_another_request(state: State, first: Retry, other: Retry) -> None:
    """Defect 3: the fingerprint covers every argument, not only the command and the suggestion."""
    flow = make_flow()
    s = drive_to(flow, state)
    first(flow, s.id)
    before = snapshot(flow, s.id)
    with pytest.raises(IdempotencyKeyReused):
        other(flow, s.id)
    assert_unchanged(flow, s.id, before)


def test_a_different_draft_under_the_same_key_is_refused() -> None:
    """Defect 3 for receive: the retry of a form must be the same form."""
    flow = make_flow()
    first = flow.receive(make_draft(), PROPOSER, idempotency_key="R")
    with pytest.raises(IdempotencyKeyReused):
        flow.receive(make_draft(measures="完全不同的措施"), PROPOSER, idempotency_key="R")
    with pytest.raises(ValidationError):  # only the office chooses ids (another id would be another request)
        flow.receive(make_draft(), PROPOSER, suggestion_id="chosen", idempotency_key="R")
    assert flow.store.count(Query()) == 1
    assert flow.receive(make_draft(), PROPOSER, idempotency_key="R") == first


def test_the_same_request_written_differently_is_the_same_request() -> None:
    """Companion of defect 3: a list or a tuple of units, an enum or its value: one request, one result."""
    flow = make_flow()
    s = drive_to(flow, State.REGISTERED)
    first = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, co_units=[CO_UNIT], idempotency_key="T")
    assert flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,), idempotency_key="T") == first
    flow.research(s.id, UNIT, findings="调研", method="forum", idempotency_key="R")
    flow.research(s.id, UNIT, findings="调研", method=ResearchMethod.FORUM, idempotency_key="R")
    decided = flow.decide(s.id, UNIT, outcome="adopted", idempotency_key="D")
    assert flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED, idempotency_key="D") == decided
    assert [e.kind for e in stored_history(flow, s.id)] == ["receive", "register", "transfer", "research", "decide"]


# --- defect 2: racing retries under one key get the one result ------------------------------------


def _race(work: Callable[[int], None]) -> list[str]:
    errors: list[str] = []

    def run(i: int) -> None:
        try:
            work(i)
        except Exception as exc:  # every error is a finding
            errors.append(f"thread {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def test_threads_retrying_receive_under_one_key_all_get_the_one_suggestion() -> None:
    """Defect 2 on MemoryStore: 8 threads send each of 50 receives under one key at once.  Before the
    fix some got IdempotencyKeyReused instead of the winner's result.  Now every thread gets the same
    suggestion for a key, and exactly one suggestion per key is stored."""
    store = MemoryStore()
    barrier = threading.Barrier(THREADS, timeout=30)
    answers: dict[int, set[str]] = {k: set() for k in range(ROUNDS)}
    lock = threading.Lock()

    def work(i: int) -> None:
        flow = Flow(store, make_flow().clock)  # a Flow per thread, as per request; uuid ids
        for k in range(ROUNDS):
            barrier.wait()
            s = flow.receive(make_draft(title=f"建议{k}"), PROPOSER, idempotency_key=f"form-{k}")
            with lock:
                answers[k].add(s.id)

    errors = _race(work)
    assert errors == [], errors[:5]
    assert all(len(ids) == 1 for ids in answers.values()), answers
    assert store.count(Query()) == ROUNDS
    assert {s.id for s in store.query(Query())} == {next(iter(ids)) for ids in answers.values()}


def test_threads_retrying_a_command_under_one_key_all_get_the_one_result() -> None:
    """The companion of defect 2 for a command on an existing suggestion (MemoryStore's lock serialised
    these already): one event per key, the same answer for all."""
    flow = make_flow()
    sids = [drive_to(flow, State.RECEIVED).id for _ in range(ROUNDS)]
    barrier = threading.Barrier(THREADS, timeout=30)
    answers: dict[str, set[int]] = {sid: set() for sid in sids}
    lock = threading.Lock()

    def work(i: int) -> None:
        mine = Flow(flow.store, flow.clock)
        for sid in sids:
            barrier.wait()
            s = mine.register(sid, OFFICE, idempotency_key=f"register-{sid}")
            with lock:
                answers[sid].add(s.version)

    errors = _race(work)
    assert errors == [], errors[:5]
    assert all(versions == {2} for versions in answers.values()), answers
    assert all([e.kind for e in stored_history(flow, sid)] == ["receive", "register"] for sid in sids)


def test_the_actor_scope_holds_under_a_race_too() -> None:
    """Defects 1 and 2 together: proposers racing under one key each get their own suggestion (before the
    fix all got the first one's, or IdempotencyKeyReused)."""
    store = MemoryStore()
    barrier = threading.Barrier(THREADS, timeout=30)
    people = [Actor(f"wx_{i}", Role.PROPOSER) for i in range(THREADS)]
    got: dict[int, str] = {}

    def work(i: int) -> None:
        flow = Flow(store, make_flow().clock)
        draft = make_draft(proposer=make_proposer(account=people[i].id))
        barrier.wait()
        got[i] = flow.receive(draft, people[i], idempotency_key="same").id

    assert _race(work) == []
    assert len(set(got.values())) == THREADS
    assert all(store.load(got[i]).proposer.account == people[i].id for i in range(THREADS))

"""``expected_version=`` on every command (issue 23 item 3): a stale form is always ConcurrencyConflict.

A portal renders a form from the suggestion at version *v* and sends ``expected_version=v``
with the command.  If anything happened to the suggestion meanwhile the command is refused
with :class:`ConcurrencyConflict` — also when the command has meanwhile become impossible,
so the portal can say "someone else changed this, reload" instead of a confusing
"not allowed in this state".  Under a race, of the commands sent for one version exactly
one wins and every other gets ConcurrencyConflict, never InvalidTransition.
"""

from __future__ import annotations

import inspect
import threading
from collections import Counter

import pytest

from helpers import (
    CO_UNIT,
    EVALUATOR,
    LEAD_UNIT,
    OFFICE,
    OTHER_UNIT,
    OTHER_UNIT_ACTOR,
    PROPOSER,
    UNIT,
    assert_unchanged,
    drive_to,
    make_flow,
    receive,
    snapshot,
    stored,
    stored_history,
)
from jianyi_flow import (
    ConcurrencyConflict,
    Flow,
    InvalidTransition,
    NotFound,
    Outcome,
    ReportForm,
    ResearchMethod,
    State,
    ValidationError,
)

THREADS = 8
ROUNDS = 30


def test_every_command_takes_expected_version() -> None:
    reads = {"get", "history", "list_suggestions", "overdue", "due_soon", "available_commands", "due_for",
             "verify_history", "verify_all", "tick", "receive",
             "validate_draft", "calendar_health", "retime", "checkpoint", "migrate",
             "erase_expired", "vault_personal_data"}  # batch runs, like retime and migrate
    commands = {n for n, m in inspect.getmembers(Flow, inspect.isfunction) if not n.startswith("_")} - reads
    assert len(commands) == 23  # the 21 built-in commands, erase_personal_data and run_command
    for name in commands:
        parameter = inspect.signature(getattr(Flow, name)).parameters.get("expected_version")
        assert parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameter.default is None, name


def test_the_version_the_form_was_made_from_lets_the_command_run() -> None:
    flow = make_flow()
    s = drive_to(flow, State.REGISTERED)
    seen = flow.get(s.id, OFFICE)
    done = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, expected_version=seen.version)
    assert done.version == seen.version + 1


def test_a_stale_form_is_a_conflict_even_when_the_command_is_still_possible() -> None:
    flow = make_flow()
    s = drive_to(flow, State.REGISTERED)
    form = flow.get(s.id, OFFICE).version
    flow.report_upward(s.id, OFFICE, form=ReportForm.ORIGINAL)  # someone else, meanwhile
    before = snapshot(flow, s.id)
    with pytest.raises(ConcurrencyConflict) as caught:
        flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, expected_version=form, idempotency_key="T")
    err = caught.value
    assert (err.suggestion_id, err.expected_version, err.actual_version) == (s.id, form, form + 1)
    assert_unchanged(flow, s.id, before, keys=[(OFFICE, "T")])


@pytest.mark.parametrize(("state", "meanwhile", "stale"), [
    (State.RECEIVED, lambda f, sid: f.not_accept(sid, OFFICE, reason="个人诉求"),
     lambda f, sid, v: f.register(sid, OFFICE, expected_version=v)),
    (State.TRANSFERRED, lambda f, sid: f.research(sid, UNIT, findings="调研", method=ResearchMethod.FORUM),
     lambda f, sid, v: f.object_transfer(sid, UNIT, reason="不属本单位职责", expected_version=v)),
    (State.RESEARCHED, lambda f, sid: f.decide(sid, UNIT, outcome=Outcome.ADOPTED),
     lambda f, sid, v: f.decide(sid, UNIT, outcome=Outcome.DECLINED, reason="不采纳", expected_version=v)),
    (State.REPLIED, lambda f, sid: f.rate(sid, PROPOSER, rating="satisfied"),
     lambda f, sid, v: f.rate(sid, PROPOSER, rating="dissatisfied", expected_version=v)),
    (State.REGISTERED, lambda f, sid: f.withdraw(sid, PROPOSER),
     lambda f, sid, v: f.transfer(sid, OFFICE, lead_unit=LEAD_UNIT, expected_version=v)),
], ids=["register-after-not_accept", "object-after-research", "decide-twice", "rate-twice", "transfer-after-withdraw"])
def test_a_stale_form_is_a_conflict_not_an_invalid_transition(state: State, meanwhile: object, stale: object) -> None:
    """Without expected_version these would be InvalidTransition: the command is impossible now."""
    flow = make_flow()
    s = drive_to(flow, state)
    form = s.version
    meanwhile(flow, s.id)  # type: ignore[operator]
    before = snapshot(flow, s.id)
    with pytest.raises(ConcurrencyConflict):
        stale(flow, s.id, form)  # type: ignore[operator]
    assert_unchanged(flow, s.id, before)
    with pytest.raises(InvalidTransition):  # what the same command says with a fresh form
        stale(flow, s.id, stored(flow, s.id).version)  # type: ignore[operator]


def test_a_form_from_the_future_is_a_conflict_too() -> None:
    flow = make_flow()
    s = receive(flow)
    with pytest.raises(ConcurrencyConflict) as caught:
        flow.register(s.id, OFFICE, expected_version=s.version + 5)
    assert (caught.value.expected_version, caught.value.actual_version) == (s.version + 5, s.version)


def test_an_actor_who_may_not_see_it_learns_nothing_from_a_version() -> None:
    """Visibility is checked before the version: a stale or wild version tells an outsider nothing."""
    flow = make_flow()
    s = drive_to(flow, State.TRANSFERRED)
    outsider = make_flow(flow.store, flow.clock)
    for version in (1, s.version, 999):
        with pytest.raises(NotFound):
            outsider.research(s.id, OTHER_UNIT_ACTOR, findings="x", method="other", expected_version=version)


@pytest.mark.parametrize("version", [0, -1, "3", 2.0, True, 2**31], ids=repr)
def test_a_malformed_version_is_a_validation_error(version: object) -> None:
    flow = make_flow()
    s = receive(flow)
    before = snapshot(flow, s.id)
    with pytest.raises(ValidationError) as caught:
        flow.register(s.id, OFFICE, expected_version=version)  # type: ignore[arg-type]
    assert caught.value.field == "expected_version"
    assert_unchanged(flow, s.id, before)


def test_a_retry_under_its_key_answers_the_first_result_even_with_the_old_version() -> None:
    """The retry of a command that went through is not a stale form: it is the same request."""
    flow = make_flow()
    s = drive_to(flow, State.REGISTERED)
    first = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,), expected_version=s.version,
                          idempotency_key="T")
    again = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,), expected_version=s.version,
                          idempotency_key="T")
    assert again == first
    assert len(stored_history(flow, s.id)) == first.version


def _race_round(flow: Flow, sid: str, version: int, barrier: threading.Barrier, outcome: list[str], i: int) -> None:
    barrier.wait()
    try:
        if i % 2:
            flow.register(sid, OFFICE, expected_version=version)
        else:
            flow.not_accept(sid, OFFICE, reason="个人诉求", expected_version=version)
        outcome.append("won")
    except ConcurrencyConflict:
        outcome.append("conflict")
    except Exception as exc:  # InvalidTransition above all would be the finding
        outcome.append(f"{type(exc).__name__}: {exc}")


def test_racing_threads_with_expected_version_get_one_winner_and_only_conflicts() -> None:
    """8 request threads share one Flow (one per process, as documented) and race register / not_accept,
    all made from version 1, for 30 suggestions: one winner each, every loser ConcurrencyConflict."""
    flow = make_flow()
    sids = [receive(flow).id for _ in range(ROUNDS)]
    tally: Counter[str] = Counter()
    for sid in sids:
        barrier = threading.Barrier(THREADS, timeout=30)
        outcome: list[str] = []
        threads = [threading.Thread(target=_race_round, args=(flow, sid, 1, barrier, outcome, i))
                   for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert sorted(outcome) == ["conflict"] * (THREADS - 1) + ["won"], outcome
        tally.update(outcome)
        events = stored_history(flow, sid)
        assert len(events) == 2 and events[-1].kind in ("register", "not_accept")
    assert tally == {"won": ROUNDS, "conflict": ROUNDS * (THREADS - 1)}


def test_racing_threads_keep_going_round_after_round_on_one_suggestion() -> None:
    """The same on one suggestion, 30 rounds: each round all 8 threads send the next command from the
    version they all saw; the suggestion advances by exactly one event a round."""
    flow = make_flow()
    s = drive_to(flow, State.ADOPTED)
    for round_ in range(ROUNDS):
        version = stored(flow, s.id).version
        barrier = threading.Barrier(THREADS, timeout=30)
        outcome: list[str] = []

        def send(i: int, version: int = version, barrier: threading.Barrier = barrier,
                 outcome: list[str] = outcome, round_: int = round_) -> None:
            barrier.wait()
            try:
                flow.evaluate(s.id, EVALUATOR, quality=i, value=round_ % 11, effect=1, evaluator=f"r{round_}-{i}",
                              expected_version=version)
                outcome.append("won")
            except ConcurrencyConflict:
                outcome.append("conflict")
            except Exception as exc:
                outcome.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcome) == ["conflict"] * (THREADS - 1) + ["won"], (round_, outcome)
        assert stored(flow, s.id).version == version + 1
    assert flow.verify_history(s.id) == []
    assert stored(flow, s.id).lead_unit == LEAD_UNIT and OTHER_UNIT not in stored(flow, s.id).units()


"""``model.replace``, the hot path's copy of a suggestion, against ``attrs.evolve``.

Every command makes one such copy, so ``replace`` builds it the fast way (a mutable twin of
``Suggestion`` whose ``__class__`` is then set) when the interpreter allows it, and the slow
way (each slot set through its descriptor) when not.  Both must give exactly what
``attrs.evolve`` gives, for a change of any field.
"""

from __future__ import annotations

import datetime as dt
import platform
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pytest

from helpers import START, drive_to, make_flow
from jianyi_flow import model
from jianyi_flow.domain.frozen import becomes
from jianyi_flow.domain.model import (
    SUGGESTION_FIELDS,
    Evaluation,
    Outcome,
    Rating,
    ReportForm,
    RewardTier,
    State,
    Suggestion,
    replace,
)

Replace = Callable[[Suggestion, Mapping[str, Any]], Suggestion]

DRAFT_WAY = model._compile_replace(via_draft=True)
DESCRIPTOR_WAY = model._compile_replace(via_draft=False)
WAYS = pytest.mark.parametrize("copy", [replace, DRAFT_WAY, DESCRIPTOR_WAY], ids=["replace", "draft", "descriptor"])

LATER = START + dt.timedelta(days=3)
NEW_VALUES: dict[str, Any] = {
    "id": "other-id",
    "campaign": "another-campaign",
    "title": "另一个标题",
    "subject": "另一个主题",
    "problem": "另一个问题",
    "measures": "另一个措施",
    "area": "shapingba",
    "topic": "t-02",
    "channel": model.Channel.LETTER,
    "recommending_unit": "u_env",
    "accused_units": ("u_env", "u_housing"),
    "state": State.ADOPTED,
    "version": 99,
    "received_at": LATER,
    "updated_at": LATER,
    "registration_number": "YC-2024-9999",
    "lead_unit": "u_housing",
    "co_units": ("u_traffic", "u_housing"),
    "transferred_at": LATER,
    "research_notes": "notes",
    "outcome": Outcome.PARTIALLY_ADOPTED,
    "outcome_reason": "reason",
    "adopted_part": "part",
    "reply": "答复",
    "replied_at": LATER,
    "rating": Rating.DISSATISFIED,
    "rating_comment": "comment",
    "reopen_count": 2,
    "return_count": 1,
    "due_step": "reply",
    "due_at": LATER,
    "objection_due_at": LATER,
    "extended": True,
    "overdue_flagged_at": LATER,
    "closed_at": LATER,
    "upward_reports": (ReportForm.EXCERPT,),
    "forwarded_to_city_at": LATER,
    "evaluation": Evaluation(quality=5, value=4, effect=3, evaluator="评审组"),
    "reward_tier": RewardTier.FIRST,
    "adopted_into": "《某某办法》",
    "typical_case": True,
    "event_hash": "f" * 64,
}


@pytest.fixture(scope="module")
def suggestion() -> Suggestion:
    """A suggestion that has been through several commands (most fields set)."""
    return drive_to(make_flow(), State.REPLIED)


def test_every_field_has_a_new_value_here() -> None:
    assert set(NEW_VALUES) == set(SUGGESTION_FIELDS) - {"proposer"}


@WAYS
@pytest.mark.parametrize("name", SUGGESTION_FIELDS)
def test_a_change_of_any_one_field_gives_what_evolve_gives(copy: Replace, suggestion: Suggestion, name: str) -> None:
    value: Any = NEW_VALUES.get(name, attrs.evolve(suggestion.proposer, name="李四"))
    assert getattr(suggestion, name) != value
    got = copy(suggestion, {name: value})
    want = attrs.evolve(suggestion, **{name: value})
    assert type(got) is Suggestion
    assert got == want
    assert all(getattr(got, f) is getattr(want, f) for f in SUGGESTION_FIELDS)
    assert hash(got) == hash(want)


@WAYS
def test_many_changes_at_once_and_the_source_is_left_alone(copy: Replace, suggestion: Suggestion) -> None:
    before = attrs.asdict(suggestion, recurse=False)
    changes: dict[str, Any] = {"state": State.RATED, "version": suggestion.version + 1, "updated_at": LATER,
               "rating": Rating.SATISFIED, "event_hash": "a" * 64}
    got = copy(suggestion, changes)
    assert got == attrs.evolve(suggestion, **changes)
    assert got is not suggestion
    assert attrs.asdict(suggestion, recurse=False) == before


@WAYS
def test_no_change_gives_an_equal_copy(copy: Replace, suggestion: Suggestion) -> None:
    got = copy(suggestion, {})
    assert got == suggestion and got is not suggestion


@WAYS
def test_the_copy_is_frozen(copy: Replace, suggestion: Suggestion) -> None:
    got = copy(suggestion, {"version": 7})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        got.version = 8  # type: ignore[misc]
    assert got.version == 7


def test_an_unknown_field_is_refused_by_name(suggestion: Suggestion) -> None:
    with pytest.raises(TypeError, match="handling_unit"):
        replace(suggestion, {"state": State.RATED, "handling_unit": "x"})


def test_the_twin_has_the_suggestions_slots_in_order_and_weak_references_still_work(
    suggestion: Suggestion,
) -> None:
    assert model._Draft.__slots__ == SUGGESTION_FIELDS
    assert model._Draft.__bases__ == Suggestion.__bases__
    row = replace(suggestion, {"version": 7})
    assert weakref.ref(row)() is row  # the slot is the base's (frozen.Weakrefable), not after the fields


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="the layout check is CPython's")
def test_on_cpython_the_fast_way_is_the_one_in_use() -> None:
    assert becomes(model._Draft, Suggestion)
    assert "_Draft" in model._replace.__code__.co_names


def test_when_the_twin_has_other_slots_the_descriptor_way_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model._Draft, "__slots__", ("not", "the", "same"))
    compiled = model._compile_replace()
    assert "_Draft" not in compiled.__code__.co_names


class _WithWeakref:
    """The suggestion's slots and a ``__weakref__`` after them: CPython refuses ``__class__`` to it."""

    __slots__ = (*SUGGESTION_FIELDS, "__weakref__")


def test_when_the_interpreter_refuses_the_class_assignment_the_descriptor_way_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model, "Suggestion", _WithWeakref)
    assert not becomes(model._Draft, _WithWeakref)  # the TypeError ("object layout differs") is caught
    compiled = model._compile_replace()
    assert "_Draft" not in compiled.__code__.co_names

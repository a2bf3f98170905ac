"""check_draft: every problem of a draft at once, by the rules Flow.receive applies.

Flow.receive stops at the first problem; check_draft must find that same problem first
(same field, same rule) and every other one after it, and nothing for a draft Flow accepts.
Hypothesis mixes good and bad values field by field and compares the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jianyi_flow import SHANGHAI, Actor, FakeClock, Flow, MemoryStore, Proposer, Role, SuggestionDraft, ValidationError
from jianyi_flow.domain.validation import check_draft

AREAS = frozenset({"A1", "A2"})
TOPICS = frozenset({"T01"})
UNITS = frozenset({"U1", "U2"})
ACTOR = Actor("office-1", Role.COLLECTION_OFFICE, unit="U1")
START = dt.datetime(2024, 9, 2, 9, tzinfo=SHANGHAI)


def good_draft(**changes: Any) -> SuggestionDraft:
    proposer = {"name": "张三", "kind": "citizen", "phone": "13812345678", "address": "永川区", "confidential": False,
                "account": "wx_zhangsan"}
    proposer.update(changes.pop("proposer", {}))
    fields: dict[str, Any] = {"title": "标题", "subject": "建议事项", "problem": "存在问题", "measures": "意见建议",
                              "area": "A1", "topic": "T01", "channel": "online_portal", "recommending_unit": "U2",
                              "accused_units": (), "proposer": Proposer(**proposer)}
    fields.update(changes)
    return SuggestionDraft(**fields)


def flow() -> Flow:
    return Flow(MemoryStore(), FakeClock(START), known_areas=AREAS, known_topics=TOPICS, known_units=UNITS)


def check(draft: object) -> list[Any]:
    return check_draft(draft, known_areas=AREAS, known_topics=TOPICS, known_units=UNITS)


# --- examples ----------------------------------------------------------------------------------


def test_a_good_draft_has_no_problems() -> None:
    assert check(good_draft()) == []
    assert check_draft(good_draft(area="anything", topic=None, recommending_unit=None)) == []


def test_a_bad_draft_has_every_problem_at_once() -> None:
    bad = good_draft(title=" ", subject="x" * 201, area="A9", channel="fax", accused_units="U1",
                     proposer={"name": "", "phone": "12345", "confidential": "no"})
    found = [(p.field, p.code) for p in check(bad)]
    assert found == [("title", "blank"), ("subject", "too_long"), ("area", "unknown_code"),
                     ("accused_units", "not_a_list"), ("channel", "not_one_of"),
                     ("proposer.confidential", "not_a_bool"), ("proposer.name", "blank"),
                     ("proposer.phone", "not_a_phone")]
    error = ValidationError.many(check(bad))
    assert error.fields == tuple(f for f, _ in found)
    assert error.problems[1].details == {"max_length": 200, "length": 201}


def test_something_that_is_not_a_draft_is_one_problem() -> None:
    assert [(p.field, p.code) for p in check({"title": "x"})] == [("draft", "wrong_type")]


def test_a_proposer_that_is_not_a_proposer_is_one_problem() -> None:
    found = check(SuggestionDraft(title="", subject="s", problem="p", measures="m", area="A1", proposer="张三"))
    assert [(p.field, p.code) for p in found] == [("title", "blank"), ("proposer", "wrong_type")]


# --- the same rules as Flow.receive -----------------------------------------------------------------

def _mix(good: Any, *bad: Any) -> st.SearchStrategy[Any]:
    """The good value half of the time, else one of the bad ones."""
    return st.one_of(st.just(good), st.just(good), st.sampled_from(bad))


TEXTS = ("", "  ", None, 7, "a\u202eb", "a\x00b", "\x85")
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "title": _mix("标题", *TEXTS, "x" * 101),
    "subject": _mix("建议事项", *TEXTS, "x" * 201),
    "problem": _mix("存在问题", *TEXTS, "x" * 10_001),
    "measures": _mix("意见建议", *TEXTS, "x" * 10_001),
    "area": _mix("A1", None, "", "A9", "a b", "x" * 33, 1),
    "topic": _mix("T01", None, "T99", "", "t 1"),
    "recommending_unit": _mix("U2", None, "U9", "", "13812345678"),
    "accused_units": _mix((), ["U1"], "U1", ["U1", "U1"], ["U9"], [""], 5),
    "channel": _mix("online_portal", "fax", None, 3),
}
PROPOSER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": _mix("张三", "", " ", None, "x" * 51, "a\u202eb"),
    "kind": _mix("citizen", "alien", None),
    "phone": _mix("13812345678", "023-49299053", None, "12345", "１３８１２３４５６７８", 138),
    "address": _mix("永川区", None, "", "x" * 201, "a\x07b"),
    "confidential": _mix(False, True, "no", 0, None),
    "account": _mix("wx_zhangsan", None, "x" * 51, "a\u2066b"),
}


@st.composite
def drafts(draw: st.DrawFn) -> object:
    proposer = {name: draw(values) for name, values in PROPOSER_FIELDS.items()}
    fields = {name: draw(values) for name, values in FIELDS.items()}
    shape = draw(st.sampled_from(["draft", "draft", "draft", "draft", "bad proposer", "not a draft"]))
    if shape == "not a draft":
        return fields
    fields["proposer"] = "张三" if shape == "bad proposer" else Proposer(**proposer)
    return SuggestionDraft(**fields)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(drafts())
def test_check_draft_finds_first_what_flow_receive_refuses(draft: object) -> None:
    problems = check(draft)
    try:
        flow().receive(draft, ACTOR)  # type: ignore[arg-type]
    except ValidationError as refused:
        assert problems, f"Flow refused {refused} but check_draft found nothing"
        assert (problems[0].field, problems[0].rule) == (refused.field, refused.rule)
    else:
        assert problems == [], "Flow accepted a draft check_draft refuses"
    fields = [p.field for p in problems]
    assert len(fields) == len(set(fields)), "one problem per field"

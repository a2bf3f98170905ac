"""jianyi_flow.errors: every error has a stable code, fields, JSON-ready details, an English
and a Chinese message; validation problems come one at a time or all at once."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jianyi_flow import errors
from jianyi_flow.domain import validation as v
from jianyi_flow.domain.clock import SHANGHAI, FakeClock, parse_time, require_aware
from jianyi_flow.domain.model import Channel
from jianyi_flow.errors import (
    ERRORS,
    RULES,
    CalendarNotCovered,
    ClockWentBackwards,
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    InvalidTransition,
    JianyiFlowError,
    MigrationMissing,
    NotFound,
    PermissionDenied,
    PhaseClosed,
    PhaseWindow,
    Problem,
    SchemaMismatch,
    StoreError,
    ValidationError,
    WindowClosed,
)
from jianyi_flow.presets import yongchuan_2024

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.UTC
CJK = re.compile("[\u4e00-\u9fff]")

EXAMPLES: dict[type[JianyiFlowError], Callable[[], JianyiFlowError]] = {
    JianyiFlowError: lambda: JianyiFlowError("something failed"),
    ValidationError: lambda: ValidationError("title", "is required", code="required"),
    InvalidTransition: lambda: InvalidTransition("reply", "rated", ["reopen"]),
    NotFound: lambda: NotFound("suggestion", "s1"),
    DuplicateSuggestion: lambda: DuplicateSuggestion("s1"),
    ConcurrencyConflict: lambda: ConcurrencyConflict("s1", 3, 4),
    PhaseClosed: lambda: yongchuan_2024().phase_closed("receive", dt.datetime(2024, 12, 1, 9, tzinfo=SHANGHAI)),
    WindowClosed: lambda: WindowClosed("return_transfer", "objection",
                                       dt.datetime(2024, 8, 30, 23, 59, 59, 999999, tzinfo=SHANGHAI),
                                       field="objection_due_at", source="信访工作条例 Art. 23"),
    PermissionDenied: lambda: PermissionDenied("proposer:wx1", "transfer", "a proposer may not transfer"),
    CalendarNotCovered: lambda: CalendarNotCovered(2031, "2004-2026"),
    ClockWentBackwards: lambda: ClockWentBackwards("s1", dt.datetime(2024, 8, 1, 9, tzinfo=SHANGHAI),
                                                   dt.datetime(2024, 8, 1, 10, tzinfo=SHANGHAI)),
    IdempotencyKeyReused: lambda: IdempotencyKeyReused("k1", "register on suggestion s2"),
    StoreError: lambda: StoreError("sqlite write failed: disk I/O error"),
    SchemaMismatch: lambda: SchemaMismatch("0002", "0004"),
    MigrationMissing: lambda: MigrationMissing("state", "escalated", migration="0005", suggestion_id="s1"),
}


# --- every class ---------------------------------------------------------------------------------


def test_every_error_class_is_catalogued_and_has_an_example() -> None:
    defined = {c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, JianyiFlowError) and c.__module__ == errors.__name__}
    assert defined == set(ERRORS) == set(EXAMPLES)


def test_codes_are_unique_snake_case_and_every_class_has_a_chinese_summary() -> None:
    codes = [e.code for e in ERRORS]
    assert len(set(codes)) == len(codes)
    for e in ERRORS:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", e.code), e
        assert CJK.search(e.summary_zh), e
    assert set(codes).isdisjoint(RULES), "a class code must not be mistaken for a rule code"


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_every_error_has_a_code_a_chinese_message_and_round_trips_as_json(cls: type[JianyiFlowError]) -> None:
    e = EXAMPLES[cls]()
    assert type(e) is cls
    assert e.code and (e.code == cls.code or cls is ValidationError)
    assert CJK.search(e.message_zh), e.message_zh
    assert e.message == str(e) and e.message
    assert e.field == (e.fields[0] if e.fields else None)
    data = e.to_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert {k: data[k] for k in ("error", "code", "message", "message_zh", "field", "fields")} == {
        "error": cls.__name__, "code": e.code, "message": str(e), "message_zh": e.message_zh, "field": e.field,
        "fields": list(e.fields)}
    assert data["details"] == e.details


def test_english_messages_are_unchanged() -> None:
    assert str(EXAMPLES[InvalidTransition]()) == \
        "command 'reply' is not allowed in state 'rated'; allowed in 'rated': reopen"
    assert str(InvalidTransition("extend", "rated", detail="nothing is due")) == \
        "command 'extend' is not allowed in state 'rated': nothing is due"
    assert str(EXAMPLES[ValidationError]()) == "title: is required"
    assert str(EXAMPLES[NotFound]()) == "suggestion 's1' not found"
    assert str(EXAMPLES[ConcurrencyConflict]()) == \
        "suggestion 's1' changed concurrently: expected version 3, found version 4"
    assert str(EXAMPLES[PermissionDenied]()) == "proposer:wx1 may not transfer: a proposer may not transfer"
    assert str(EXAMPLES[IdempotencyKeyReused]()) == \
        "idempotency key 'k1' was already used for register on suggestion s2"
    assert str(EXAMPLES[StoreError]()) == "sqlite write failed: disk I/O error"


# --- the Chinese messages say what happened ---------------------------------------------------------


def test_concurrency_conflict_reads_as_the_portal_shows_it() -> None:
    assert EXAMPLES[ConcurrencyConflict]().message_zh == "该建议已被他人处理，请刷新后重试。"
    e = ConcurrencyConflict("s1", 3)
    assert e.details == {"suggestion_id": "s1", "expected_version": 3, "actual_version": None}


def test_invalid_transition_names_the_state_the_command_and_what_is_possible() -> None:
    e = EXAMPLES[InvalidTransition]()
    assert e.message_zh == "该建议当前处于“已评价”状态，不能进行“答复”操作；当前可进行的操作：重新办理。"
    assert e.details == {"command": "reply", "state": "rated", "allowed": ["reopen"]}
    final = InvalidTransition("reply", "unrated")
    assert final.message_zh.endswith("当前状态下不能再进行任何操作。")
    ruled = InvalidTransition("reopen", "rated", detail="only once, and only after a 'dissatisfied' rating",
                              detail_zh="只能重新办理一次，且仅在评价为不满意之后")
    assert ruled.message_zh == ("该建议当前处于“已评价”状态，不能进行“重新办理”操作："
                                "只能重新办理一次，且仅在评价为不满意之后。")
    assert ruled.details["detail"] == "only once, and only after a 'dissatisfied' rating"


def test_not_found_names_the_record() -> None:
    assert EXAMPLES[NotFound]().message_zh == "未找到建议“s1”，请核对后重试。"
    assert NotFound("area", "A9").message_zh == "未找到领域“A9”，请核对后重试。"
    assert NotFound("suggestion", ("a", 1)).details == {"what": "suggestion", "key": ["a", 1]}


def test_phase_closed_carries_its_windows_as_dates() -> None:
    e = EXAMPLES[PhaseClosed]()
    assert isinstance(e, PhaseClosed)
    campaign = yongchuan_2024()
    assert e.windows == campaign.windows("receive")
    assert str(e) == f"command 'receive' is not open on 2024-12-01: allowed {campaign.windows('receive')}"
    assert e.day == dt.date(2024, 12, 1)
    assert e.periods == ((dt.date(2024, 8, 1), dt.date(2024, 8, 20)), (dt.date(2024, 8, 21), dt.date(2024, 11, 30)))
    assert [p.code for p in e.phases] == ["launch", "implementation"]
    assert e.details == {"command": "receive", "day": "2024-12-01", "windows": [
        {"phase": "launch", "name": "启动阶段", "start": "2024-08-01", "end": "2024-08-20"},
        {"phase": "implementation", "name": "实施阶段", "start": "2024-08-21", "end": "2024-11-30"}]}
    assert e.message_zh == ("2024年12月1日不在“收到建议”的开放时间内，开放时间："
                            "启动阶段（2024年8月1日至2024年8月20日）、实施阶段（2024年8月21日至2024年11月30日）。")


def test_phase_closed_built_from_text_alone_still_works() -> None:
    e = PhaseClosed("receive", dt.date(2024, 12, 1), "launch 启动阶段 2024-08-01..2024-08-20")
    assert e.windows == "launch 启动阶段 2024-08-01..2024-08-20" and e.phases == () and e.periods == ()
    assert "launch 启动阶段" in e.message_zh
    assert PhaseClosed("x", dt.date(2024, 1, 1), phases=[PhaseWindow("a", "甲", dt.date(2024, 2, 1),
                                                                      dt.date(2024, 2, 2))]).windows \
        == "a 甲 2024-02-01..2024-02-02"


def test_the_campaign_gives_no_windows_for_an_unrestricted_command() -> None:
    assert yongchuan_2024().phase_windows("register") == ()


def test_window_closed_is_its_own_class_with_the_closing_time() -> None:
    e = EXAMPLES[WindowClosed]()
    assert not isinstance(e, ValidationError)
    assert e.field == "objection_due_at"
    assert e.details == {"command": "return_transfer", "window": "objection",
                         "closed_at": "2024-08-30T23:59:59.999999+08:00", "source": "信访工作条例 Art. 23"}
    assert e.message_zh == "异议期已于2024年8月30日截止，不能再进行“退回”操作（信访工作条例 Art. 23）。"
    # a time that is not an end of day is shown to the minute, on its Asia/Shanghai day
    late = WindowClosed("rate", "rating", dt.datetime(2024, 9, 30, 17, 30, tzinfo=UTC))
    assert late.message_zh == "评价期已于2024年10月1日 01:30截止，不能再进行“评价”操作。"
    never = WindowClosed("return_transfer", "objection", None)
    assert never.closed_at is None and never.details["closed_at"] is None
    assert never.message_zh == "异议期未开放或已结束，不能再进行“退回”操作。"
    assert "not open" in str(never)


def test_permission_denied_may_say_why_in_chinese() -> None:
    assert EXAMPLES[PermissionDenied]().message_zh == "您没有权限对该建议进行“转送交办”操作。"
    e = PermissionDenied("unit:u1", "view", "not visible", reason_zh="该建议不属于您的单位")
    assert e.message_zh == "您没有权限对该建议进行“查看”操作：该建议不属于您的单位。"
    assert e.details == {"actor": "unit:u1", "command": "view", "reason": "not visible"}


def test_operator_errors_say_what_to_run() -> None:
    schema = EXAMPLES[SchemaMismatch]()
    assert isinstance(schema, StoreError)
    assert schema.details == {"found": "0002", "expected": "0004", "run": "jianyi-flow db upgrade URL"}
    assert "jianyi-flow db upgrade URL" in str(schema) and "jianyi-flow db upgrade URL" in schema.message_zh
    assert SchemaMismatch(None, "0004", url="sqlite:///x.db").run == "jianyi-flow db upgrade sqlite:///x.db"
    missing = EXAMPLES[MigrationMissing]()
    assert isinstance(missing, StoreError)
    assert missing.message_zh == "数据中有本程序无法识别的办理状态“escalated”，请管理员先运行数据迁移 0005。"
    assert missing.details == {"kind": "state", "value": "escalated", "migration": "0005", "suggestion_id": "s1"}
    backwards = EXAMPLES[ClockWentBackwards]()
    assert backwards.details["previous_at"] == "2024-08-01T10:00:00+08:00"
    assert "2031年" in EXAMPLES[CalendarNotCovered]().message_zh


# --- validation: one problem, or every problem ------------------------------------------------------


def test_a_single_problem_has_the_rule_code_and_its_details() -> None:
    e = ValidationError("title", "must be at most 100 characters (got 101)", code="too_long",
                        details={"max_length": 100, "length": 101})
    assert (e.field, e.fields, e.code) == ("title", ("title",), "too_long")
    assert e.rule == "must be at most 100 characters (got 101)"
    assert e.details == {"max_length": 100, "length": 101}
    assert e.message_zh == "标题最多100个字，现为101个字。"
    assert e.problems == (Problem("title", "too_long", e.rule, e.message_zh, {"max_length": 100, "length": 101}),)
    assert isinstance(e, ValueError)


def test_an_old_style_validation_error_gets_the_generic_code_and_message() -> None:
    e = ValidationError("measures", "must say something")
    assert e.code == "invalid"
    assert e.message_zh == "意见建议填写有误，请检查后重试。"
    assert ValidationError("topics[T1].area", "unknown area").message_zh == "“topics[T1].area”填写有误，请检查后重试。"
    assert ValidationError("title", "x", message_zh="自定义。").message_zh == "自定义。"


def test_many_carries_every_problem() -> None:
    problems = [
        Problem.of("title", "required", "is required"),
        Problem.of("proposer.phone", "not_a_phone", "must be a mainland mobile"),
        Problem.of("area", "unknown_code", "unknown code 'A8'", {"value": "A8"}),
    ]
    e = ValidationError.many(problems)
    assert e.code == "validation"
    assert e.problems == tuple(problems)
    assert (e.field, e.rule) == ("title", "is required")
    assert e.fields == ("title", "proposer.phone", "area")
    assert str(e) == "title: is required; proposer.phone: must be a mainland mobile; area: unknown code 'A8'"
    assert e.message_zh == ("请填写标题。电话应为11位手机号码或带区号的固定电话（如023-49299053）。"
                            "领域“A8”不在可选范围内。")
    data = e.to_dict()
    assert [p["code"] for p in data["problems"]] == ["required", "not_a_phone", "unknown_code"]
    assert data["problems"][2] == {"field": "area", "code": "unknown_code", "message": "area: unknown code 'A8'",
                                   "message_zh": "领域“A8”不在可选范围内。", "details": {"value": "A8"}}
    assert json.loads(json.dumps(data)) == data


def test_many_with_one_problem_is_a_single_problem_error() -> None:
    one = ValidationError.many([Problem.of("title", "blank", "must not be blank")])
    assert (one.code, one.field, one.rule) == ("blank", "title", "must not be blank")
    assert str(one) == "title: must not be blank"
    with pytest.raises(ValueError, match="at least one"):
        ValidationError.many([])


SAMPLE_DETAILS: dict[str, Any] = {"max_length": 32, "length": 40, "character": "U+202E", "value": "A8", "min": 1,
                                  "max": 10, "keys": ["colour", "size"]}


@pytest.mark.parametrize("code", list(RULES))
def test_every_rule_template_reads_with_its_details(code: str) -> None:
    text = Problem.of("title", code, "rule", SAMPLE_DETAILS).message_zh
    assert "{" not in text and CJK.search(text) and text.endswith("。")
    if "{field}" in RULES[code]:
        assert "标题" in text


def test_a_rule_template_missing_its_details_falls_back_to_the_generic_message() -> None:
    assert Problem.of("title", "too_long", "too long").message_zh == RULES["invalid"].format(field="标题")
    assert Problem.of("title", "no_such_rule", "?").message_zh == RULES["invalid"].format(field="标题")


def test_every_rule_code_raised_in_the_source_is_documented() -> None:
    src = ROOT / "src" / "jianyi_flow"
    used = {m for path in src.rglob("*.py") for m in re.findall(r'\bcode="([a-z_]+)"', path.read_text("utf-8"))}
    assert used, "the pattern must find the codes"
    assert sorted(used - set(RULES)) == []


CHECKS: list[tuple[Callable[[], object], str, str, dict[str, Any]]] = [
    (lambda: v.text("title", None, max_len=5), "title", "required", {}),
    (lambda: v.text("title", 5, max_len=5), "title", "not_text", {"type": "int"}),
    (lambda: v.text("title", "  ", max_len=5), "title", "blank", {}),
    (lambda: v.text("title", "abcdef", max_len=5), "title", "too_long", {"max_length": 5, "length": 6}),
    (lambda: v.text("title", "a\u202eb", max_len=5), "title", "forbidden_character", {"character": "U+202E"}),
    (lambda: v.phone("proposer.phone", "12345"), "proposer.phone", "not_a_phone", {}),
    (lambda: v.code("area", None), "area", "required", {}),
    (lambda: v.code("area", "a b"), "area", "not_a_code", {"max_length": 32}),
    (lambda: v.code("area", "A13812345678", {"A1"}), "area", "unknown_code", {"value": "A138******78"}),
    (lambda: v.codes("co_units", "AB"), "co_units", "not_a_list", {}),
    (lambda: v.codes("co_units", ["A", "B", "A"]), "co_units", "duplicate", {"value": "A"}),
    (lambda: v.member("channel", Channel, "fax"), "channel", "not_one_of", {"allowed": [c.value for c in Channel]}),
    (lambda: v.flag("proposer.confidential", "no"), "proposer.confidential", "not_a_bool", {}),
    (lambda: v.aware("now", "today"), "now", "not_a_datetime", {}),
    (lambda: v.aware("now", dt.datetime(2024, 8, 1)), "now", "not_aware", {}),
    (lambda: v.whole_number("page", 0, low=1), "page", "too_small", {"min": 1}),
    (lambda: v.whole_number("quality", 11, low=0, high=10), "quality", "out_of_range", {"min": 0, "max": 10}),
    (lambda: v.whole_number("quality", True, low=0, high=10), "quality", "out_of_range", {"min": 0, "max": 10}),
    (lambda: require_aware(None, "start"), "start", "not_a_datetime", {}),
    (lambda: FakeClock(dt.datetime(2024, 8, 1, tzinfo=UTC)).advance(days=-1), "delta", "too_small", {"min": 0}),
    (lambda: parse_time("yesterday-ish"), "time", "not_a_date", {}),
]


@pytest.mark.parametrize(("check", "field", "code", "details"), CHECKS)
def test_each_check_gives_its_code_and_details(
    check: Callable[[], object], field: str, code: str, details: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as caught:
        check()
    assert (caught.value.field, caught.value.code, caught.value.details) == (field, code, details)
    assert CJK.search(caught.value.message_zh)


def test_whole_number_accepts_the_range() -> None:
    assert v.whole_number("quality", 10, low=0, high=10) == 10
    assert v.whole_number("page", 10**9, low=1) == 10**9


# --- docs/glossary.md ---------------------------------------------------------------------------


def test_glossary_error_codes_match_the_module() -> None:
    page = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    begin = "<!-- BEGIN generated: jianyi_flow.errors.catalogue() -->\n"
    start = page.index(begin) + len(begin)
    assert page[start:page.index("<!-- END generated -->", start)] == errors.catalogue(), (
        "docs/glossary.md is stale: replace its Error codes section with the output of "
        "python -c 'from jianyi_flow.errors import catalogue; print(catalogue(), end=\"\")'"
    )

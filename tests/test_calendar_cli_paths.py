"""``jianyi-flow calendar``, in-process: argument checks, years shown with several sources or no holiday,
and the commands that read a store (``health --store``, ``retime``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dbs import sqlite_template
from jianyi_flow import SHANGHAI, Actor, FakeClock, Flow, Proposer, Role, SuggestionDraft
from jianyi_flow.cli import main
from jianyi_flow.sql import SqlStore
from test_retime import NOTICE_2027  # a made-up 2027 notice: 春节 a day later than the 办法 derives

__all__ = ["sqlite_template"]  # fixture

OFFICE = Actor("office-1", Role.COLLECTION_OFFICE, unit="zjb")
NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
REASON = "国务院办公厅关于2027年部分节假日安排的通知已发布（测试）"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["calendar", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def notice(tmp_path: Path) -> Path:
    path = tmp_path / "2027.toml"
    path.write_text(NOTICE_2027, encoding="utf-8")
    return path


@pytest.fixture
def december(sqlite_template: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """A store where two suggestions were transferred on 2026-12-07: research due in 2027, counted provisionally."""
    target = tmp_path / "december.db"
    target.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{target}"
    ids = []
    with SqlStore(url) as store:
        flow = Flow(store, FakeClock(NOW))
        for n in range(2):
            s = flow.receive(SuggestionDraft(title=f"建议{n}", subject="公共服务", problem="问题。", measures="措施。",
                                             area="a1", proposer=Proposer("张三")), OFFICE)
            flow.register(s.id, OFFICE)
            flow.transfer(s.id, OFFICE, lead_unit="u_traffic")
            ids.append(s.id)
    return url, ids


def _provisional_dues(url: str, ids: list[str]) -> dict[str, tuple[dt.datetime | None, bool]]:
    with SqlStore(url) as store:
        return {sid: (row.due_at, row.due_provisional) for sid in ids for row in [store.load(sid)]}


# --- arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "says"), [("0", "got 0"), ("9999", "got 9999"), ("-4", "got -4")])
def test_show_refuses_a_year_out_of_range(capsys: pytest.CaptureFixture[str], year: str, says: str) -> None:
    status, out, err = run(capsys, "show", year)
    assert (status, out) == (2, "")
    assert err == f"jianyi-flow: error: argument year: expected a year between 1 and 9998, {says}\n"


def test_health_refuses_a_lookahead_that_is_not_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "health", "--lookahead", "soon")
    assert (status, out) == (2, "")
    assert err == "jianyi-flow: error: argument --lookahead: expected a whole number of days, got 'soon'\n"


# --- show ------------------------------------------------------------------------------------------


def test_show_names_the_source_of_each_day_when_an_amendment_adds_one(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    amendment = tmp_path / "amend.json"
    amendment.write_text(json.dumps({"source": "重庆市补充通知（测试）", "holidays": {"2026-12-31": "元旦"}},
                                    ensure_ascii=False), encoding="utf-8")
    status, out, _ = run(capsys, "show", "2026", "--overrides", str(amendment))
    assert status == 0
    assert out.startswith("2026: official holiday schedule; source: chinese_calendar 1.11.0; 重庆市补充通知（测试）.")
    lines = out.splitlines()
    listed = lines[lines.index("Holidays and 调休:") + 1:]
    assert listed[-2:] == ["  2026-12-31 Thu  holiday 元旦 New Year's Day", "      source: 重庆市补充通知（测试）"]
    assert listed[:2] == ["  2026-01-01 Thu  holiday 元旦 New Year's Day", "      source: chinese_calendar 1.11.0"]
    days = [line for line in listed if not line.startswith("      source: ")]
    assert len(listed) == 2 * len(days)  # each day is followed by its source


def test_show_a_covered_year_without_holidays(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    far = tmp_path / "far.json"
    far.write_text(json.dumps({"source": "远期测试", "covered_years": [2101]}, ensure_ascii=False), encoding="utf-8")
    status, out, _ = run(capsys, "show", "2101", "--overrides", str(far))
    assert status == 0
    assert out.startswith("2101: official holiday schedule; source: none.\n")
    assert "0 holidays; 365 days." in out
    assert out.endswith("\nNo holidays.\n")
    assert "Holidays and 调休" not in out


# --- health --store --------------------------------------------------------------------------------


def test_health_counts_the_stores_provisional_deadlines(
        capsys: pytest.CaptureFixture[str], december: tuple[str, list[str]]) -> None:
    url, ids = december
    earliest = min(due for due, _ in _provisional_dues(url, ids).values() if due is not None)
    status, out, _ = run(capsys, "health", "--store", url, "--today", "2026-12-07")
    assert status == 0
    assert f"open deadlines counted over provisional days: 2 (earliest {earliest.isoformat()})\n" in out
    status, out, _ = run(capsys, "health", "--store", url, "--today", "2026-12-07", "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert (data["provisional_deadlines"], data["earliest_provisional_due"]) == (2, earliest.isoformat())
    assert data["status"] == "provisional"


def test_health_of_a_store_without_provisional_deadlines(
        capsys: pytest.CaptureFixture[str], sqlite_template: Path, tmp_path: Path) -> None:
    target = tmp_path / "empty.db"
    target.write_bytes(sqlite_template.read_bytes())
    status, out, _ = run(capsys, "health", "--store", f"sqlite:///{target}", "--today", "2026-12-07")
    assert status == 0
    assert "open deadlines counted over provisional days: 0\n" in out  # no "(earliest ...)"
    status, out, _ = run(capsys, "health", "--store", f"sqlite:///{target}", "--today", "2026-12-07",
                         "--format", "json")
    data = json.loads(out)
    assert (data["provisional_deadlines"], data["earliest_provisional_due"]) == (0, None)


# --- retime ----------------------------------------------------------------------------------------


def test_retime_recounts_the_provisional_deadlines_on_the_notice(
        capsys: pytest.CaptureFixture[str], december: tuple[str, list[str]], notice: Path) -> None:
    url, ids = december
    before = _provisional_dues(url, ids)
    assert all(provisional for _, provisional in before.values())
    status, out, err = run(capsys, "retime", "--store", url, "--reason", REASON, "--overrides", str(notice))
    assert (status, err) == (0, "")
    assert out == "re-timed 2 suggestions; 0 left as they were\n"
    after = _provisional_dues(url, ids)
    assert not any(provisional for _, provisional in after.values())
    assert all(after[sid][0] != before[sid][0] for sid in ids)  # 春节 moved: the research deadlines move too
    with SqlStore(url) as store:
        for sid in ids:
            event = store.history(sid)[-1]
            assert (event.kind, event.reason, event.actor.role) == ("retime", REASON, Role.SYSTEM)
        assert Flow(store, FakeClock(NOW)).verify_all() == []
    # nothing left to re-time: a second run says so, as JSON too
    status, out, _ = run(capsys, "retime", "--store", url, "--reason", REASON, "--overrides", str(notice),
                         "--format", "json")
    assert status == 0
    assert json.loads(out) == {"retimed": [], "skipped": []}


def test_retime_as_json_lists_the_suggestions(
        capsys: pytest.CaptureFixture[str], december: tuple[str, list[str]], notice: Path) -> None:
    url, ids = december
    status, out, _ = run(capsys, "retime", "--store", url, "--reason", REASON, "--overrides", str(notice),
                         "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert sorted(data["retimed"]) == sorted(ids) and data["skipped"] == []
    status, out, _ = run(capsys, "health", "--store", url, "--today", "2026-12-07", "--overrides", str(notice))
    assert status == 0
    assert "open deadlines counted over provisional days: 0\n" in out


def test_retime_refuses_an_empty_reason_and_changes_nothing(
        capsys: pytest.CaptureFixture[str], december: tuple[str, list[str]], notice: Path) -> None:
    url, ids = december
    before = _provisional_dues(url, ids)
    status, out, err = run(capsys, "retime", "--store", url, "--reason", "", "--overrides", str(notice))
    assert (status, out) == (1, "")
    assert err.startswith("jianyi-flow: error: reason") and len(err.splitlines()) == 1
    assert _provisional_dues(url, ids) == before

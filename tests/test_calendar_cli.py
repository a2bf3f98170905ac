"""``jianyi-flow calendar show|check|health``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from jianyi_flow.cli import main

NOTICE = "国务院办公厅关于2027年部分节假日安排的通知 (test data, not the real schedule)"
# Illustrative, not the real 2027 schedule: 元旦 1/1-1/3; 春节 2/5-2/11 with Sat 2/20 worked; the other
# festivals as the 办法 gives them except that 中秋 (9/15) is left out, which `check` must flag.
NOTICE_TOML = f"""
source = "{NOTICE}"
covered_years = [2027]

[holidays]
"2027-01-01" = "元旦"
"2027-01-02" = "元旦"
"2027-01-03" = "元旦"
"2027-02-05" = "春节"
"2027-02-06" = "春节"
"2027-02-07" = "春节"
"2027-02-08" = "春节"
"2027-02-09" = "春节"
"2027-02-10" = "春节"
"2027-02-11" = "春节"
"2027-04-05" = "清明节"
"2027-05-01" = "劳动节"
"2027-05-02" = "劳动节"
"2027-06-09" = "端午节"
"2027-10-01" = "国庆节"
"2027-10-02" = "国庆节"
"2027-10-03" = "国庆节"

[working_days]
"2027-02-20" = "春节"
"""


@pytest.fixture
def notice(tmp_path: Path) -> Path:
    path = tmp_path / "2027.toml"
    path.write_text(NOTICE_TOML, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["calendar", *args])
    out, err = capsys.readouterr()
    return status, out, err


# --- show ----------------------------------------------------------------------------------------


def test_show_a_provisional_year(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "show", "2027")
    assert (status, err) == (0, "")
    assert out.startswith("2027: PROVISIONAL (暂定)")
    assert "no 调休" in out
    assert "254 working days (0 of them 调休上班 weekend days), 98 weekend days off, 13 holidays; 365 days." in out
    assert "  2027-02-05 Fri  holiday 春节 Spring Festival (暂定)\n" in out
    assert "  2027-09-15 Wed  holiday 中秋节 Mid-autumn Festival (暂定)\n" in out
    assert "\n 1*  2*  3*  4   5   6   7       1*  2*  3*  4   5   6   7\n" not in out  # sanity of the next check
    # The February grid row of 2/1-2/7: 2/5 to 2/7 marked as holidays.
    assert any(line.endswith(" 1   2   3   4   5*  6*  7*") for line in out.splitlines())
    assert max(len(line) for line in out.splitlines() if "Mo  Tu" in line) <= 80


def test_show_an_official_year(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "show", "2026")
    assert status == 0
    assert out.startswith("2026: official holiday schedule; source: chinese_calendar 1.11.0.")
    assert "248 working days (6 of them 调休上班 weekend days)" in out
    assert "  2026-02-14 Sat  working day (调休上班) for 春节 Spring Festival\n" in out
    assert "暂定" not in out


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "show", "2028", "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert (data["year"], data["mode"], data["provisional"]) == (2028, "provisional", True)
    assert data["counts"] == {
        "days": 366, "working_days": 251, "weekends": 103, "holidays": 12, "swapped_working_days": 0
    }
    assert len(data["days"]) == 366 and all(day["provisional"] for day in data["days"])
    assert data["sources"] == [data["days"][0]["source"]] and data["sources"][0].startswith("provisional: ")
    holidays = {day["date"]: day["holiday_zh"] for day in data["days"] if day["kind"] == "holiday"}
    assert holidays["2028-01-25"] == "春节"  # 除夕
    assert holidays["2028-10-03"] == "国庆节"  # also 中秋


def test_show_with_the_notice_loaded_is_official(capsys: pytest.CaptureFixture[str], notice: Path) -> None:
    status, out, _ = run(capsys, "show", "2027", "--overrides", str(notice))
    assert status == 0
    assert out.startswith(f"2027: official holiday schedule; source: {NOTICE}.")
    assert "  2027-02-20 Sat  working day (调休上班) for 春节 Spring Festival\n" in out
    assert "暂定" not in out


def test_show_strict_refuses_an_uncovered_year(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "show", "2027", "--strict")
    assert (status, out) == (1, "")
    assert err.startswith("jianyi-flow: error: no holiday schedule is known for 2027 (covered: 2004-2026)")
    assert len(err.strip().splitlines()) == 1


def test_show_refuses_years_past_the_derivable_range(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "show", "2100")
    assert status == 1
    assert "provisionally 2027-2099" in err


# --- check ---------------------------------------------------------------------------------------


def test_check_lists_the_days_the_notice_changes(capsys: pytest.CaptureFixture[str], notice: Path) -> None:
    status, out, err = run(capsys, "check", str(notice))
    assert (status, err) == (0, "")
    assert out.startswith("2027.toml loads: 17 holidays, 1 working days, covered years: 2027.")
    assert "2027: now provisional (暂定, derived from the 办法); with the file official." in out
    lines = out.splitlines()
    changed = [line.split()[0] for line in lines if line.startswith("    2027-")]
    assert changed == ["2027-01-02", "2027-01-03", "2027-02-09", "2027-02-10", "2027-02-11", "2027-02-20", "2027-09-15"]
    assert any(line.startswith("    2027-02-20 Sat  now: weekend (暂定)") and "file: working day (调休上班)" in line
               for line in lines)
    # 2/9-2/11 off (-3), Sat 2/20 worked (+1), 9/15 left as a working day (+1).
    assert "  working days: now 254, with the file 253." in lines
    assert (
        "  warning: 2027-09-15 (中秋节, 农历中秋当日) is a working day in the file, "
        "but 全国年节及纪念日放假办法 Art. 2 gives it off"
    ) in lines


def test_check_json(capsys: pytest.CaptureFixture[str], notice: Path) -> None:
    status, out, _ = run(capsys, "check", str(notice), "--format", "json")
    assert status == 0
    (year,) = json.loads(out)["years"]
    assert year["year"] == 2027
    by_day = {diff["date"]: diff for diff in year["differences"]}
    assert by_day["2027-02-09"]["now"]["kind"] == "working_day" and by_day["2027-02-09"]["now"]["provisional"]
    assert by_day["2027-02-09"]["file"] == {
        "date": "2027-02-09", "weekday": "Tue", "kind": "holiday", "working_day": False, "holiday": "Spring Festival",
        "holiday_zh": "春节", "source": NOTICE, "provisional": False,
    }
    assert len(year["warnings"]) == 1


def test_check_against_a_strict_calendar_says_the_year_is_not_covered_now(
    capsys: pytest.CaptureFixture[str], notice: Path
) -> None:
    status, out, _ = run(capsys, "check", str(notice), "--strict")
    assert status == 0
    assert "2027: now not covered by this strict calendar; with the file official." in out
    assert "    2027-02-09 Tue  now: not covered" in out
    assert "working days: now" not in out


def test_check_an_identical_amendment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "same.json"
    path.write_text(json.dumps({"source": "s", "holidays": {"2026-10-01": "国庆节"}}), encoding="utf-8")
    status, out, _ = run(capsys, "check", str(path))
    assert status == 0
    assert "2026: now official; with the file official, amended." in out
    assert "  no day differs." in out


@pytest.mark.parametrize(
    ("text", "name", "says"),
    [
        ('source = "s"\n[holidays]\n"2027-02-30" = "春节"\n', "bad.toml", "holidays.2027-02-30: key must be"),
        ("{not json", "bad.json", "file: bad.json is not valid JSON"),
        ('source = "s"\n[holidays]\n"2028-01-03" = "元旦"\n', "amend.toml", "holidays.2028-01-03: 2028 is neither"),
        ("x = 1", "bad.yaml", "path: bad.yaml: must end in .json or .toml"),
    ],
)
def test_check_a_broken_file_fails_with_one_readable_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, name: str, says: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    status, out, err = run(capsys, "check", str(path))
    assert (status, out) == (1, "")
    assert err.startswith("jianyi-flow: error: ") and says in err
    assert len(err.strip().splitlines()) == 1


def test_check_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "check", str(tmp_path / "missing.toml"))
    assert status == 1
    assert "path: cannot read" in err


# --- health --------------------------------------------------------------------------------------


def test_health_provisional(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "health", "--today", "2026-12-07")
    assert status == 0
    assert "status:            provisional\n" in out
    assert "official until:    2026-12-31 (24 days left)\n" in out
    assert "provisional years: 2027\n" in out
    assert "暂定模式" in out


def test_health_strict_exits_non_zero_when_the_window_is_not_covered(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "health", "--today", "2026-12-07", "--strict")
    assert status == 1
    assert "status:            uncovered\n" in out
    assert "uncovered years:   2027\n" in out


def test_health_json_with_the_notice(capsys: pytest.CaptureFixture[str], notice: Path) -> None:
    status, out, _ = run(capsys, "health", "--today", "2026-12-07", "--overrides", str(notice), "--format", "json",
                         "--lookahead", "30")
    assert status == 0
    data = json.loads(out)
    assert (data["status"], data["official_until"], data["official_days_left"]) == ("ok", "2027-12-31", 389)
    assert data["lookahead_days"] == 30


def test_health_defaults_to_today(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "health", "--format", "json")
    assert status in (0, 1)
    assert date.fromisoformat(json.loads(out)["today"]).year >= 2026


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "twenty"], "expected a year"),
        (["show", "2027", "--format", "xml"], "invalid choice"),
        (["health", "--today", "2026-13-01"], "expected a date"),
        (["health", "--lookahead", "-5"], "expected 0 to 3660 days"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    status, _, err = run(capsys, *args)
    assert status == 2
    assert err.startswith("jianyi-flow: error:") and says in err


def test_no_traceback_from_the_real_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('source = "s"\n[holidays]\n"2027-02-30" = "春节"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "jianyi_flow.cli", "calendar", "check", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "jianyi-flow: error: holidays.2027-02-30: key must be an ISO date YYYY-MM-DD"
    ]

"""The ``jianyi-flow`` command line contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jianyi_flow.cli import main
from jianyi_flow.diagram import mermaid

REQUIRED = ("suggestions", "by_state", "by_outcome", "by_area", "on_time_rate", "overdue", "quota", "satisfaction",
            "events", "history_digest")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real entry point in a child process (so a traceback would be visible)."""
    return subprocess.run([sys.executable, "-m", "jianyi_flow.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_simulate_json_has_the_report_keys_and_equal_digests_on_memory_and_sqlite(tmp_path: Path) -> None:
    memory = run_cli("simulate", "--preset", "yongchuan-2024", "--suggestions", "60", "--seed", "4", "--json")
    assert memory.returncode == 0, memory.stderr
    data = json.loads(memory.stdout)
    for key in REQUIRED:
        assert key in data
    assert data["suggestions"] == 60
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    sqlite = run_cli("simulate", "--suggestions", "60", "--seed", "4", "--store", url, "--json")
    assert sqlite.returncode == 0, sqlite.stderr
    assert json.loads(sqlite.stdout)["history_digest"] == data["history_digest"]
    assert "[" not in memory.stderr  # no progress bar when stderr is not a terminal
    batched_url = f"sqlite:///{tmp_path / 'batched.db'}"
    batched = run_cli("simulate", "--suggestions", "60", "--seed", "4", "--store", batched_url, "--batched", "--json")
    assert batched.returncode == 0, batched.stderr
    assert json.loads(batched.stdout) == json.loads(sqlite.stdout)


def test_simulate_prints_a_readable_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--suggestions", "25", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "开启新篇章 重庆向未来" in out
    assert "simulated 25 suggestions" in out


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["simulate", "--suggestions", "-1"], 2, "must not be negative"),
        (["simulate", "--preset", "nowhere-2030", "--suggestions", "1"], 1, "unknown preset"),
        (["simulate", "--suggestions", "1", "--store", "nosuch://x"], 1, "cannot open"),
        (["simulate", "--suggestions", "1", "--batched"], 2, "--batched needs --store"),
        (["simulate", "--suggestions", "1", "--batched", "--store", "postgresql://u@127.0.0.1:1/x"], 1,
         "SQLite only"),
        (["report", "--store", "sqlite:////nonexistent/dir/x.db", "--format", "md", "--out", "x.md"], 2,
         "no database"),
        (["report", "--format", "md", "--out", "x.md"], 2, "--store"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line_without_traceback(args: list[str], status: int, says: str) -> None:
    result = run_cli(*args)
    assert result.returncode == status
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jianyi-flow: error:")
    assert says in lines[0]
    assert "Traceback" not in result.stderr


def test_db_upgrade_then_report_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    assert main(["db", "upgrade", url]) == 0
    assert main(["simulate", "--suggestions", "30", "--seed", "2", "--store", url]) == 0
    capsys.readouterr()
    for fmt, name in (("md", "r.md"), ("html", "r.html"), ("json", "r.json"), ("xlsx", "r.xlsx"), ("csv", "csv"),
                      ("text", "r.txt")):
        out = tmp_path / name
        assert main(["report", "--store", url, "--format", fmt, "--out", str(out), "--at", "2025-06-30"]) == 0
        assert out.exists()
        if out.is_file():
            assert out.stat().st_size > 200
        else:
            assert any(out.iterdir())
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["suggestions"] == 30


def test_diagram_prints_the_generated_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram"]) == 0
    assert capsys.readouterr().out == mermaid()

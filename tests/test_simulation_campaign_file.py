"""Campaigns from a file: the fictional examples/yunshan-2025.toml is loaded, simulated and reported.

Nothing about a district is in the simulator's code: the office unit, office hours, routing
and deadline policy come from the campaign file, in JSON or TOML.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from jianyi_flow import MemoryStore, ValidationError
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.domain.clock import SHANGHAI
from jianyi_flow.domain.deadlines import CalendarDays, Step
from jianyi_flow.presets import load, load_file
from jianyi_flow.report import build_report
from jianyi_flow.simulation import CampaignSimulator
from jianyi_flow.storage.base import iter_events
from test_simulation_invariants import check_simulation, in_office_hours

ROOT = Path(__file__).resolve().parents[1]
FICTIONAL = ROOT / "examples" / "yunshan-2025.toml"


@pytest.fixture(scope="module")
def fictional() -> Campaign:
    return load_file(FICTIONAL)


@pytest.fixture(scope="module")
def run(fictional: Campaign) -> CampaignSimulator:
    sim = CampaignSimulator(fictional, MemoryStore(), seed=3, suggestions=1000)
    sim.run()
    return sim


def test_the_example_is_marked_fictional(fictional: Campaign) -> None:
    assert fictional.notes[0].startswith("FICTIONAL:")
    assert "虚构" in fictional.theme
    assert fictional.notice is not None and "虚构" in fictional.notice.title
    assert fictional.notice.issued_on == dt.date(2025, 3, 5)
    assert [(p.start.year, p.end.year) for p in fictional.phases] == [(2025, 2025)] * 3


def test_the_file_gives_office_hours_routing_and_deadlines(fictional: Campaign) -> None:
    assert fictional.office_unit == "XFB"
    assert fictional.office_hours == ((dt.time(8, 30), dt.time(12)), (dt.time(14, 30), dt.time(18)))
    assert fictional.routing["A4"] == ("JTJ", "CGJ")
    assert fictional.deadlines is not None
    assert fictional.deadlines.duration(Step.RESEARCH) == CalendarDays(30)
    assert fictional.deadlines.rule(Step.REPLY).source.startswith("fictional")
    assert dict(fictional.recommendation.recommended_via) == {"school": "JYJ", "hospital": "WJW"}


def test_toml_and_json_give_the_same_campaign(fictional: Campaign, tmp_path: Path) -> None:
    import tomllib

    data: dict[str, Any] = tomllib.loads(FICTIONAL.read_text(encoding="utf-8"))

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value.isoformat() if isinstance(value, dt.date) else value

    path = tmp_path / "yunshan.json"
    path.write_text(json.dumps(plain(data), ensure_ascii=False), encoding="utf-8")
    assert load_file(path) == fictional == load(str(FICTIONAL))


def test_the_simulated_fictional_campaign_keeps_every_invariant(run: CampaignSimulator) -> None:
    assert check_simulation(run) == []


def test_the_office_works_the_files_hours_and_the_flow_its_deadlines(run: CampaignSimulator) -> None:
    events = list(iter_events(run.store))
    office = [e.at.astimezone(SHANGHAI).time() for e in events if e.actor.role.value == "collection_office"]
    assert min(office) >= dt.time(8, 30) and max(office) < dt.time(18)
    assert any(t < dt.time(9) for t in office) and any(t >= dt.time(17, 30) for t in office)  # not Yongchuan's
    assert all(in_office_hours(run.campaign, run, e.at) for e in events if e.actor.role.value == "handling_unit")
    transfers = [e for e in events if e.kind == "transfer"]
    assert transfers and run.flow.policy is run.campaign.deadlines
    for e in transfers:  # research: the file's 30 calendar days, moved past holidays (民法典 Art. 203)
        due = dt.datetime.fromisoformat(e.changes["due_at"])
        assert due == run.flow.due_for(Step.RESEARCH, e.at)
        assert (due.astimezone(SHANGHAI).date() - e.at.astimezone(SHANGHAI).date()).days >= 30
    kinds = Counter(e.kind for e in events)
    assert kinds["receive"] == 1000 and kinds["flag_overdue"] > 0 and kinds["approve_extension"] > 0


def test_the_fictional_campaign_is_reported(run: CampaignSimulator) -> None:
    report = build_report(run.campaign, run.store, run.clock.now()).to_dict()
    assert report["campaign"] == "YS2025" and report["suggestions"] == 1000
    assert {row["unit"] for row in report["quota"]} == {"YSJD", "QSJD", "SLJD", "BLZ", "LXZ", "FQZ", "JYJ", "WJW",
                                                       "MZJ", "JTJ", "ZJW", "CGJ", "SCJG", "FGW"}
    assert all(row["required"] == 3 for row in report["quota"])


def test_the_command_line_simulates_a_campaign_file() -> None:
    result = subprocess.run([sys.executable, "-m", "jianyi_flow.cli", "simulate", "--preset", str(FICTIONAL),
                             "--suggestions", "150", "--seed", "2", "--json"], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["campaign"] == "YS2025" and data["suggestions"] == 150


def test_the_example_script_runs() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "simulate_campaign_file.py"), "120", "1"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "YS2025" in result.stdout and "simulated 120 suggestions" in result.stdout


# --- bad campaign files --------------------------------------------------------------------------------------


def _yongchuan() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("jianyi_flow.presets").joinpath("yongchuan_2024.json").read_text("utf-8"))
    return data


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (lambda d: d.update(office_unit="NOPE"), "office_unit", "unknown unit"),
        (lambda d: d.update(office_hours=[["14:00", "17:30"], ["09:00", "12:00"]]), "office_hours", "in order"),
        (lambda d: d.update(office_hours=[["09:00", "09:00"]]), "office_hours", "in order"),
        (lambda d: d.update(office_hours=[["9 o'clock", "12:00"]]), "campaign.office_hours", "local time"),
        (lambda d: d.update(office_hours=[]), "office_hours", "at least one"),
        (lambda d: d.update(office_hours="09:00-17:00"), "campaign.office_hours", "periods"),
        (lambda d: d["routing"].update(A9=["FGW"]), "routing[A9]", "unknown area"),
        (lambda d: d["routing"].update(A1=["FGW", "NOPE"]), "routing[A1]", "NOPE"),
        (lambda d: d["routing"].update(A1=[]), "routing[A1]", "known units"),
        (lambda d: d["routing"].update(A1="FGW"), "campaign.routing", "lists of unit codes"),
        (lambda d: d["deadlines"][0].update(working_days=5), "campaign.deadlines[0]", "exactly one"),
        (lambda d: d["deadlines"][0].update(step="appeal"), "campaign.deadlines[0].step", "must be one of"),
        (lambda d: d["deadlines"].append(dict(d["deadlines"][0])), "campaign.deadlines[5].step", "each step once"),
        (lambda d: d["deadlines"][0].pop("source"), "campaign.deadlines[0].source", "required"),
        (lambda d: d["deadlines"][0].update(colour="red"), "campaign.deadlines[0]", "unknown keys"),
    ],
)
def test_a_bad_campaign_file_names_the_field(change: Any, field: str, says: str) -> None:
    data = _yongchuan()
    change(data)
    with pytest.raises(ValidationError) as info:
        Campaign.from_dict(data)
    assert info.value.field == field
    assert says in info.value.rule


def test_a_file_may_leave_steps_out_of_its_deadlines() -> None:
    from jianyi_flow.domain.deadlines import DEFAULT_POLICY

    data = _yongchuan()
    data["deadlines"] = [{"step": "reply", "calendar_days": 10, "source": "a district rule"}]
    policy = Campaign.from_dict(data).deadlines
    assert policy is not None
    assert policy.duration(Step.REPLY) == CalendarDays(10)
    assert [r for r in policy.rules if r.step is not Step.REPLY] == [r for r in DEFAULT_POLICY.rules
                                                                      if r.step is not Step.REPLY]
    data.pop("deadlines")
    assert Campaign.from_dict(data).deadlines is None


def test_a_broken_toml_file_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('code = "X"\ntheme = \n', encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_file(path)
    assert "not valid TOML" in info.value.rule
    path.write_text(FICTIONAL.read_text(encoding="utf-8").replace("start = 2025-03-10",
                                                                  "start = 2025-03-10T08:00:00"), encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_file(path)
    assert info.value.field == "campaign.phases[0].start"


def test_the_simulator_needs_an_office_unit() -> None:
    data = _yongchuan()
    data.pop("office_unit")
    with pytest.raises(ValidationError) as info:
        CampaignSimulator(Campaign.from_dict(data), MemoryStore())
    assert info.value.field == "campaign.office_unit"

"""A killed simulation resumes: the same run on a partly written store ends with the same history digest.

Every command the simulator issues carries the idempotency key ``sim:<seed>:<n>``, and the
store's metadata holds the run's identity.  A store that dies after N commits (a
MemoryStore that raises, or a child process killed with SIGKILL on SQLite) is handed to
the same run again; it skips what the store already has, re-runs the ticks, continues, and
the event log ends equal to an uninterrupted run's.  A store that holds another campaign,
seed, size or configuration is refused.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jianyi_flow import MemoryStore, Role, ValidationError
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.report import history_digest
from jianyi_flow.simulation import META_NAME, CampaignSimulator, SimulationConfig, SimulationResult
from jianyi_flow.storage.base import Change, Event, Store, iter_events

SUGGESTIONS = 300


class Killed(Exception):
    """The store died."""


class DiesAfter(MemoryStore):
    """A MemoryStore that dies at a chosen commit (nothing of that commit is written), until revived."""

    def __init__(self) -> None:
        super().__init__()
        self.deadline: int | None = None
        self.when_kind: str | None = None
        self.seen = 0

    def die_after(self, commits: int, kind: str | None = None) -> None:
        """Die once ``commits`` more commits (of events of ``kind``, if given) went through."""
        self.deadline, self.when_kind, self.seen = commits, kind, 0

    def commit(self, change: Change) -> Event:
        if self.deadline is not None and (self.when_kind is None or change.event.kind == self.when_kind):
            if self.seen >= self.deadline:
                self.deadline = None
                raise Killed(f"died before committing {change.event.kind} of {change.suggestion.id}")
            self.seen += 1
        return super().commit(change)


def campaign() -> Campaign:
    from jianyi_flow.presets import yongchuan_2024

    return yongchuan_2024()


def digest(store: Store) -> str:
    return history_digest((e.suggestion_id, e.version, e.hash) for e in iter_events(store))


@pytest.fixture(scope="module")
def uninterrupted() -> tuple[str, SimulationResult]:
    store = MemoryStore()
    result = CampaignSimulator(campaign(), store, seed=5, suggestions=SUGGESTIONS).run()
    return digest(store), result


def killed_then_resumed(*kills: tuple[int, str | None]) -> tuple[DiesAfter, SimulationResult]:
    """Run, kill, run again..., then resume to the end; the resumed run replays exactly what the store has."""
    store = DiesAfter()
    for commits, kind in kills:
        store.die_after(commits, kind)
        with pytest.raises(Killed):
            CampaignSimulator(campaign(), store, seed=5, suggestions=SUGGESTIONS).run()
    done = sum(1 for e in iter_events(store) if e.actor.role is not Role.SYSTEM)
    result = CampaignSimulator(campaign(), store, seed=5, suggestions=SUGGESTIONS).run()
    assert result.replayed == done
    return store, result


@pytest.mark.parametrize(
    ("kind", "share"),
    [(None, 0.0), (None, 0.0005), (None, 0.05), (None, 0.6), ("flag_overdue", 0.5), ("close_unrated", 0.5),
     ("evaluate", 0.5), ("nominate_reward", 0.5), ("report_upward", 0.9)],
    ids=["before-anything", "after-one", "early", "mid-run", "mid-tick", "in-the-tail", "mid-evaluation",
         "mid-selection", "late-summary"],
)
def test_a_run_killed_part_way_resumes_to_the_same_digest(
    uninterrupted: tuple[str, SimulationResult], kind: str | None, share: float
) -> None:
    """Killed after ``share`` of all commits (or of the commits of events of ``kind``), then run again."""
    whole, first = uninterrupted
    of = first.commands + first.tick_events if kind is None else _events_of(first, kind)
    assert kind is None or of >= 2, f"the uninterrupted run has {of} {kind} events: nothing to kill in the middle of"
    store, result = killed_then_resumed((int(of * share), kind))
    assert digest(store) == whole
    assert result.by_command == first.by_command
    assert result.commands == first.commands and 0 <= result.replayed < result.commands
    assert (result.started, result.ended, result.ticks) == (first.started, first.ended, first.ticks)
    assert result.tick_events <= first.tick_events
    from jianyi_flow.service.campaign_flow import make_flow

    assert make_flow(campaign(), store, _clock(result)).verify_all() == []


def _events_of(result: SimulationResult, kind: str) -> int:
    if kind in result.by_command:
        return result.by_command[kind]
    store = MemoryStore()  # tick events are not in by_command: count them in a run of their own
    CampaignSimulator(campaign(), store, seed=5, suggestions=SUGGESTIONS).run()
    return sum(1 for e in iter_events(store) if e.kind == kind)


def _clock(result: SimulationResult) -> object:
    from jianyi_flow.domain.clock import FakeClock

    return FakeClock(result.ended)


def test_a_run_killed_twice_resumes_to_the_same_digest(uninterrupted: tuple[str, SimulationResult]) -> None:
    store, result = killed_then_resumed((300, None), (1200, None))
    assert digest(store) == uninterrupted[0]
    assert result.replayed > 1200


def test_a_finished_run_run_again_replays_everything_and_writes_nothing(
    uninterrupted: tuple[str, SimulationResult],
) -> None:
    store = MemoryStore()
    first = CampaignSimulator(campaign(), store, seed=5, suggestions=SUGGESTIONS).run()
    seq = store.last_seq()
    again = CampaignSimulator(campaign(), store, seed=5, suggestions=SUGGESTIONS).run()
    assert store.last_seq() == seq
    assert again.replayed == again.commands == first.commands
    assert again.tick_events == 0
    assert digest(store) == uninterrupted[0]


def test_the_store_records_the_runs_identity() -> None:
    store = MemoryStore()
    sim = CampaignSimulator(campaign(), store, seed=5, suggestions=20)
    sim.run()
    recorded = store.get_meta(META_NAME)
    assert recorded is not None
    identity = json.loads(recorded)
    assert identity == sim.identity()
    assert {k: identity[k] for k in ("campaign", "seed", "suggestions")} == {
        "campaign": "YC2024", "seed": 5, "suggestions": 20}


@pytest.mark.parametrize(
    "other",
    [{"seed": 6}, {"suggestions": 21}, {"config": SimulationConfig(misrouted=0.5)}, {"campaign": "file"}],
    ids=["seed", "size", "config", "campaign"],
)
def test_a_store_of_another_run_is_refused_and_left_alone(other: dict[str, object]) -> None:
    store = DiesAfter()
    store.die_after(60)
    with pytest.raises(Killed):
        CampaignSimulator(campaign(), store, seed=5, suggestions=20).run()
    seq = store.last_seq()
    kwargs: dict[str, object] = {"seed": 5, "suggestions": 20, **other}
    which = campaign()
    if kwargs.pop("campaign", None) == "file":
        import attrs

        which = attrs.evolve(which, office_hours=((which.office_hours[0][0], which.office_hours[-1][1]),))
    with pytest.raises(ValidationError) as info:
        CampaignSimulator(which, store, **kwargs).run()  # type: ignore[arg-type]
    assert info.value.field == "store"
    assert "seed 5" in info.value.rule and "another simulation" in info.value.rule
    assert store.last_seq() == seq


def test_a_store_with_suggestions_no_simulation_wrote_is_refused() -> None:
    import datetime as dt

    from jianyi_flow import Actor, Proposer, Role, SuggestionDraft
    from jianyi_flow.domain.clock import SHANGHAI, FakeClock
    from jianyi_flow.service.campaign_flow import make_flow

    c = campaign()
    store = MemoryStore()
    draft = SuggestionDraft(title="一条别人的建议", subject="别处", problem="问题", measures="措施",
                            area=c.area_codes[0], proposer=Proposer(name="张三", account="portal-user"))
    make_flow(c, store, FakeClock(dt.datetime(2024, 8, 22, 10, tzinfo=SHANGHAI))).receive(
        draft, Actor("clerk", Role.COLLECTION_OFFICE, unit="XFB"), suggestion_id="FOREIGN-1")
    with pytest.raises(ValidationError) as info:
        CampaignSimulator(c, store, seed=5, suggestions=20).run()
    assert info.value.field == "store" and "no simulation recorded" in info.value.rule
    assert store.get_meta(META_NAME) is None


# --- the command line on SQLite, killed with SIGKILL ---------------------------------------------------------


def _sqlite_available() -> bool:
    try:
        from jianyi_flow.sql import SqlStore  # noqa: F401
    except ImportError:
        return False
    return True


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "jianyi_flow.cli", "simulate", *args]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_the_command_line_resumes_a_killed_run_on_sqlite(tmp_path: Path) -> None:
    if not _sqlite_available():
        pytest.skip("the SQL store does not import in this checkout")
    import sqlite3

    args = ("--suggestions", "400", "--seed", "9", "--json")
    whole = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=600, check=True)
    expected = json.loads(whole.stdout)["history_digest"]

    path = tmp_path / "sim.db"
    url = f"sqlite:///{path}"
    child = subprocess.Popen(_cli(*args, "--store", url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline:
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
                    if conn.execute("SELECT count(*) FROM jianyi_events").fetchone()[0] > 1000:
                        break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.01)
        assert child.poll() is None, "the run ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    resumed = subprocess.run(_cli(*args, "--store", url), capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["history_digest"] == expected
    assert "resumed" in resumed.stderr

    other = subprocess.run(_cli("--suggestions", "400", "--seed", "10", "--store", url), capture_output=True,
                           text=True, timeout=600, check=False)
    assert other.returncode == 1
    assert "another simulation" in other.stderr and "Traceback" not in other.stderr

"""Tamper evidence with an anchor: a key outside the database, and signed checkpoints outside it too.

``tests/test_tamper_sql.py`` shows what the unkeyed checks find: every edit of an event or a
row, a deleted event, a deleted suggestion, a deleted outbox message.  Someone who can write
the database and who has this library can go further and leave no trace for those checks:
re-seal a rewritten history with the library's own hashing, or delete the newest events (or
a whole suggestion) and renumber the log and its counter.  Here the same three suggestions
are written by a ``Flow`` with an :class:`~jianyi_flow.Anchor`, a checkpoint is taken, and
every tampering of ``test_tamper_sql`` plus those four stronger ones is applied: each is
found with the anchor, and the four stronger ones are shown to pass without it (what
docs/security.md says the unkeyed chain cannot prove).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbs import BACKENDS, backend_store, mysql_migrated, mysql_url, postgres_migrated, postgres_url, sqlite_template
from jianyi_flow import Anchor, Flow, State
from jianyi_flow.domain.codec import replay
from jianyi_flow.domain.history import event_hash
from jianyi_flow.domain.model import Event
from jianyi_flow.errors import ValidationError
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.sql.rows import row_params
from jianyi_flow.storage.sql.schema import suggestions
from jianyi_flow.testing import drive_to, make_flow
from test_tamper_sql import CASES, TARGET, TARGET_EVENTS

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures

KEY = b"kept-outside-the-database-0123456789"
LAST = "s0003"
"""The suggestion written last: its newest event is the store's newest."""


@attrs.define
class World:
    flow: Flow
    anchor: Anchor
    log: Path


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[World]:
    for store in backend_store(request, sqlite_template, tmp_path):
        anchor = Anchor(KEY, tmp_path / "checkpoints.jsonl")
        f = make_flow(store, anchor=anchor)
        assert drive_to(f, State.RESEARCHED).id == "s0001"
        assert drive_to(f, State.RATED).id == TARGET
        assert drive_to(f, State.RETURNED).id == LAST
        assert [e.kind for e in f.store.history(TARGET)] == list(TARGET_EVENTS)
        assert all(e.mac is not None for e in f.store.history(TARGET))
        f.checkpoint()
        yield World(f, anchor, tmp_path / "checkpoints.jsonl")


def _engine(flow: Flow) -> sa.Engine:
    assert isinstance(flow.store, SqlStore)
    return flow.store.engine


def _unanchored(flow: Flow) -> Flow:
    """The same store audited by someone without the key (and without the checkpoint log)."""
    return make_flow(flow.store)


# --- stronger tamperings: consistent with every unkeyed check ------------------------------------

def _write_event(conn: Connection, e: Event) -> None:
    conn.execute(sa.text("UPDATE jianyi_events SET reason = :reason, notices = :notices, prev_hash = :prev, "
                         "hash = :hash WHERE suggestion_id = :sid AND version = :v"),
                 {"reason": e.reason, "notices": json.dumps(list(e.notices)), "prev": e.prev_hash, "hash": e.hash,
                  "sid": e.suggestion_id, "v": e.version})


def _reseal_from(conn: Connection, events: list[Event], start: int, edited: Event) -> None:
    """Write ``edited`` at index ``start`` and re-seal every later event and the row, as the library would."""
    chain = list(events)
    chain[start] = attrs.evolve(edited, hash=event_hash(edited))
    for i in range(start + 1, len(chain)):
        moved = attrs.evolve(chain[i], prev_hash=chain[i - 1].hash)
        chain[i] = attrs.evolve(moved, hash=event_hash(moved))
    for e in chain[start:]:
        _write_event(conn, e)
    _write_row(conn, _replayed(chain))


def _write_row(conn: Connection, row: Any) -> None:
    """The suggestions row set to ``row``, column for column as the store writes it."""
    # the index column of the proposer's own list stays as it was, as a careful forger would leave it
    values: dict[str, Any] = {k: v for k, v in row_params(row).items() if k not in ("id", "proposer_account")}
    values["data"] = sa.literal(values["data"], sa.Text())  # the document as the store encoded it
    conn.execute(suggestions.update().where(suggestions.c.id == row.id).values(values))


def _replayed(events: list[Event]) -> Any:
    row = replay(events)
    assert row is not None
    return row


def reseal_a_rewritten_reason(conn: Connection, events: list[Event]) -> None:
    """Rewrite the transfer's reason and re-seal the chain from there with the library's own hashing."""
    _reseal_from(conn, events, 2, attrs.evolve(events[2], reason="承办单位主动认领"))


def delete_a_message_and_its_notice(conn: Connection, events: list[Event]) -> None:
    """Delete an undelivered message and remove it from its event's notices, re-sealed."""
    transfer = events[2]
    assert transfer.notices
    gone = transfer.notices[-1]
    conn.execute(sa.text("DELETE FROM jianyi_outbox WHERE suggestion_id = :sid AND version = 3 AND recipient = :r"),
                 {"sid": TARGET, "r": gone})
    _reseal_from(conn, events, 2, attrs.evolve(transfer, notices=transfer.notices[:-1]))


def _renumber_down(conn: Connection, above: int, by: int) -> None:
    """Close a gap in the log: every position above ``above`` moves down ``by``, and the counter too."""
    rows = conn.execute(sa.text("SELECT suggestion_id, version, seq FROM jianyi_events WHERE seq > :s ORDER BY seq"),
                        {"s": above}).all()
    for sid, version, seq in rows:
        conn.execute(sa.text("UPDATE jianyi_events SET seq = :n WHERE suggestion_id = :sid AND version = :v"),
                     {"n": seq - by, "sid": sid, "v": version})
    conn.execute(sa.text("UPDATE jianyi_counters SET value = value - :by WHERE name = 'event_seq'"), {"by": by})


def delete_a_suggestion_and_renumber_the_log(conn: Connection, events: list[Event]) -> None:
    seqs = [e.seq for e in events]
    assert all(s is not None for s in seqs)
    for table, column in (("jianyi_outbox", "suggestion_id"), ("jianyi_idempotency", "suggestion_id"),
                          ("jianyi_suggestion_units", "suggestion_id"), ("jianyi_events", "suggestion_id"),
                          ("jianyi_suggestions", "id")):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :sid"), {"sid": TARGET})
    for seq in sorted((s for s in seqs if s is not None), reverse=True):
        _renumber_down(conn, seq, 1)


def drop_the_newest_event_and_rewind(conn: Connection, events: list[Event]) -> None:
    """Delete the store's newest event, roll its row back and set the log counter back: the log just ends earlier."""
    last = STORE_EVENTS[LAST]
    newest = last[-1]
    conn.execute(sa.text("DELETE FROM jianyi_outbox WHERE suggestion_id = :sid AND version = :v"),
                 {"sid": LAST, "v": newest.version})
    conn.execute(sa.text("DELETE FROM jianyi_events WHERE suggestion_id = :sid AND version = :v"),
                 {"sid": LAST, "v": newest.version})
    _write_row(conn, _replayed(last[:-1]))
    conn.execute(sa.text("UPDATE jianyi_counters SET value = value - 1 WHERE name = 'event_seq'"))


STORE_EVENTS: dict[str, list[Event]] = {}
"""Filled before each stronger tampering: the histories as they were, for tamperings of another suggestion."""

STRONGER: dict[str, Callable[[Connection, list[Event]], None]] = {
    "a rewritten history re-sealed with the library's hashing": reseal_a_rewritten_reason,
    "an undelivered message deleted with its notice, re-sealed": delete_a_message_and_its_notice,
    "a whole suggestion deleted and the log renumbered": delete_a_suggestion_and_renumber_the_log,
    "the newest event dropped, its row rolled back, the counter set back": drop_the_newest_event_and_rewind,
}


def _tamper(world: World, edit: Callable[[Connection, list[Event]], None]) -> None:
    store = world.flow.store
    events = store.history(TARGET)
    STORE_EVENTS.clear()
    STORE_EVENTS.update({sid: store.history(sid) for sid in ("s0001", TARGET, LAST)})
    with _engine(world.flow).begin() as conn:
        edit(conn, events)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_plain_tampering_is_found_with_the_anchor(world: World, case: str) -> None:
    edit = CASES[case][0]
    _tamper(world, edit)
    assert world.flow.verify_all() != []


@pytest.mark.parametrize("case", sorted(STRONGER))
def test_a_tampering_consistent_with_the_unkeyed_checks_is_found_with_the_anchor(world: World, case: str) -> None:
    _tamper(world, STRONGER[case])
    assert _unanchored(world.flow).verify_all() == [], "this tampering leaves no trace the unkeyed checks see"
    problems = world.flow.verify_all()
    assert problems, f"{case}: not found with the anchor"


def test_an_untouched_store_verifies_clean_with_the_anchor(world: World) -> None:
    assert world.flow.verify_all() == []
    world.flow.checkpoint()
    assert world.flow.verify_all() == []
    assert len(world.anchor.checkpoints()) == 2


def test_the_checkpoint_log_is_itself_tamper_evident(world: World) -> None:
    world.flow.checkpoint()
    world.flow.checkpoint()
    lines = world.log.read_text(encoding="utf-8").splitlines()
    world.log.write_text("\n".join([lines[0], lines[2]]) + "\n", encoding="utf-8")  # the middle one removed
    assert any("the checkpoint before it is missing" in p.problem for p in world.flow.verify_all())
    forged = json.loads(lines[0]) | {"events": 1}
    world.log.write_text(json.dumps(forged) + "\n", encoding="utf-8")  # edited without the key
    assert any("signature wrong" in p.problem for p in world.flow.verify_all())


def test_an_event_written_without_the_key_is_found(world: World) -> None:
    """A writer who has the library but not the key cannot add an event that verifies."""
    plain = make_flow(world.flow.store, ids=iter(["z0001", "z0002"]).__next__)  # no anchor: no mac
    plain.clock.set(world.flow.clock.now())  # type: ignore[attr-defined]
    plain.tick()
    drive_to(plain, State.REGISTERED)
    problems = world.flow.verify_all()
    assert any("mac" in p.problem for p in problems)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValidationError):
        Anchor(b"short")

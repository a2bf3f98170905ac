"""Tamper-evident history on real databases: rows edited behind the library's back are found.

A few suggestions are driven through :class:`Flow` on a SQLite file, PostgreSQL and MariaDB.
Then one of them is tampered with the way someone with a SQL console would do it — plain
``UPDATE`` / ``DELETE`` statements on ``jianyi_events`` and ``jianyi_suggestions``, never
through the store — and ``Flow.verify_history`` and ``Flow.verify_all`` must each report
that suggestion, and only it, at the versions the edit broke.  ``verify_all`` also reads
the store's event log (``seq``): an edit that deletes events leaves positions missing,
which it reports once for the whole store (suggestion ``"*"``) — that is how a deleted
suggestion, or a last event dropped with its row rolled back, shows at all.

The expected problems are written out per edit as ``(version, kind)`` pairs, where the kind
names the check that fails (see ``history.verify_events``): ``hash`` (an event's content no
longer matches its hash), ``chain`` (``prev_hash`` does not match the event before),
``order`` (a version is missing or out of place), ``row`` (the suggestions row differs from
the replay of its history), ``replay`` (the history cannot be replayed at all) and
``empty`` (a row without any event).
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
from jianyi_flow import Flow, State
from jianyi_flow.domain.codec import replay
from jianyi_flow.domain.history import HistoryProblem, event_hash
from jianyi_flow.domain.model import Event
from jianyi_flow.errors import StoreError
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.sql.rows import row_params
from jianyi_flow.storage.sql.schema import suggestions
from jianyi_flow.storage.sql.types import UtcDateTime
from jianyi_flow.testing import drive_to, make_flow

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures

TARGET = "s0002"
"""The suggestion that is tampered with: rated, seven events, in the middle of the id order."""
OTHERS = ("s0001", "s0003")
TARGET_EVENTS = ("receive", "register", "transfer", "research", "decide", "reply", "rate")
LOG = "log"
"""The kind of verify_all's one problem for positions missing from the event log."""

Problems = list[tuple[int, str]]


@pytest.fixture(params=BACKENDS)
def flow(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[Flow]:
    """A Flow on an empty database of each backend, with three suggestions driven through it."""
    for store in backend_store(request, sqlite_template, tmp_path):
        f = make_flow(store)
        assert drive_to(f, State.RESEARCHED).id == "s0001"
        assert drive_to(f, State.RATED).id == TARGET
        assert drive_to(f, State.RETURNED).id == "s0003"
        assert [e.kind for e in f.store.history(TARGET)] == list(TARGET_EVENTS)
        yield f


def engine_of(flow: Flow) -> sa.Engine:
    store = flow.store
    assert isinstance(store, SqlStore)
    return store.engine


def kind_of(problem: HistoryProblem) -> str:
    text = problem.problem
    for needle, kind in (
        ("content does not match its hash", "hash"),
        ("prev_hash does not match", "chain"),
        ("version out of order", "order"),
        ("row differs from the replay", "row"),
        ("history cannot be replayed", "replay"),
        ("row has no history", "empty"),
        ("cannot be read", "unreadable"),
        ("cannot be decoded", "unreadable"),
        ("missing from the log", LOG),
        ("outbox message to", "outbox"),
        ("leads elsewhere than", "step"),
        ("is not allowed in", "step"),
        ("personal data", "vault"),
    ):
        if needle in text:
            return kind
    raise AssertionError(f"unexpected problem text: {problem}")


def found(problems: list[HistoryProblem]) -> Problems:
    """The problems as (version, kind), all of which must be about the tampered suggestion (or the log)."""
    assert {p.suggestion_id for p in problems} <= {TARGET, "*"}, problems
    return [(p.version, kind_of(p)) for p in problems]


def execute(conn: Connection, sql: str, **params: Any) -> None:
    """Run one statement that must touch exactly one row (so an edit that missed fails the test)."""
    result = conn.execute(sa.text(sql), params)
    assert result.rowcount == 1, f"{sql} touched {result.rowcount} rows"


def event_json(conn: Connection, column: str, version: int) -> dict[str, Any]:
    text = conn.execute(
        sa.text(f"SELECT {column} FROM jianyi_events WHERE suggestion_id = :sid AND version = :v"),
        {"sid": TARGET, "v": version},
    ).scalar_one()
    data: dict[str, Any] = json.loads(text)
    return data


def dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


# --- the edits -------------------------------------------------------------------------------
Edit = Callable[[Connection, list[Event]], None]


def edit_reason(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_events SET reason = :r WHERE suggestion_id = :sid AND version = 3",
            r="已征得主办单位同意", sid=TARGET)


def edit_changes(conn: Connection, events: list[Event]) -> None:
    changes = event_json(conn, "changes", 4)
    assert "research_notes" in changes
    changes["research_notes"] = "未经调研"
    execute(conn, "UPDATE jianyi_events SET changes = :c WHERE suggestion_id = :sid AND version = 4",
            c=dumps(changes), sid=TARGET)


def edit_changes_and_row(conn: Connection, events: list[Event]) -> None:
    """The same edit, with the suggestions row changed to match: the row agrees, the hash does not."""
    edit_changes(conn, events)
    data = json.loads(conn.execute(sa.text("SELECT data FROM jianyi_suggestions WHERE id = :sid"),
                                   {"sid": TARGET}).scalar_one())
    data["research_notes"] = "未经调研"
    execute(conn, "UPDATE jianyi_suggestions SET data = :d WHERE id = :sid", d=dumps(data), sid=TARGET)


def edit_actor(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_events SET actor_id = 'someone-else' WHERE suggestion_id = :sid AND version = 5",
            sid=TARGET)


def edit_time(conn: Connection, events: list[Event]) -> None:
    conn.execute(
        sa.text("UPDATE jianyi_events SET at = :at WHERE suggestion_id = :sid AND version = 6").bindparams(
            sa.bindparam("at", type_=UtcDateTime())
        ),
        {"at": events[5].at.replace(year=2023), "sid": TARGET},
    )


def edit_last_to_state(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_events SET to_state = 'replied' WHERE suggestion_id = :sid AND version = 7",
            sid=TARGET)


def edit_and_reseal(conn: Connection, events: list[Event]) -> None:
    """Edit an event and recompute its own hash: the next event's prev_hash gives it away."""
    forged = attrs.evolve(events[2], reason="补记的理由")
    execute(conn, "UPDATE jianyi_events SET reason = :r, hash = :h WHERE suggestion_id = :sid AND version = 3",
            r=forged.reason, h=event_hash(forged), sid=TARGET)


def delete_middle(conn: Connection, events: list[Event]) -> None:
    execute(conn, "DELETE FROM jianyi_events WHERE suggestion_id = :sid AND version = 3", sid=TARGET)


def delete_first(conn: Connection, events: list[Event]) -> None:
    execute(conn, "DELETE FROM jianyi_events WHERE suggestion_id = :sid AND version = 1", sid=TARGET)


def delete_last(conn: Connection, events: list[Event]) -> None:
    execute(conn, "DELETE FROM jianyi_events WHERE suggestion_id = :sid AND version = 7", sid=TARGET)


def delete_all(conn: Connection, events: list[Event]) -> None:
    result = conn.execute(sa.text("DELETE FROM jianyi_events WHERE suggestion_id = :sid"), {"sid": TARGET})
    assert result.rowcount == 7


def swap_versions(conn: Connection, events: list[Event]) -> None:
    """Reorder: events 3 and 4 exchange versions (through a free version: the key is unique)."""
    where = "WHERE suggestion_id = :sid AND version = "
    execute(conn, f"UPDATE jianyi_events SET version = 1000 {where} 3", sid=TARGET)
    execute(conn, f"UPDATE jianyi_events SET version = 3 {where} 4", sid=TARGET)
    execute(conn, f"UPDATE jianyi_events SET version = 4 {where} 1000", sid=TARGET)


def edit_row_state(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_suggestions SET state = 'adopted' WHERE id = :sid", sid=TARGET)


def edit_row_version(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_suggestions SET version = 8 WHERE id = :sid", sid=TARGET)


def edit_row_data(conn: Connection, events: list[Event]) -> None:
    data = json.loads(conn.execute(sa.text("SELECT data FROM jianyi_suggestions WHERE id = :sid"),
                                   {"sid": TARGET}).scalar_one())
    data["reply"] = "已全部办结"
    execute(conn, "UPDATE jianyi_suggestions SET data = :d WHERE id = :sid", d=dumps(data), sid=TARGET)


def edit_row_column(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_suggestions SET lead_unit = 'u_housing' WHERE id = :sid", sid=TARGET)


def edit_row_account(conn: Connection, events: list[Event]) -> None:
    """The index of a proposer's own list: pointed at someone else, the suggestion would show in their list."""
    execute(conn, "UPDATE jianyi_suggestions SET proposer_account = 'wx_mallory' WHERE id = :sid", sid=TARGET)


def change_hash(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_events SET hash = :h WHERE suggestion_id = :sid AND version = 3",
            h="f" * 64, sid=TARGET)


def change_last_hash(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_events SET hash = :h WHERE suggestion_id = :sid AND version = 7",
            h="0" * 64, sid=TARGET)


def change_prev_hash(conn: Connection, events: list[Event]) -> None:
    execute(conn, "UPDATE jianyi_events SET prev_hash = :h WHERE suggestion_id = :sid AND version = 5",
            h=events[2].hash, sid=TARGET)


def drop_last_and_roll_back(conn: Connection, events: list[Event]) -> None:
    """Delete the last event and set the row back to the replay of the others: every chain left is intact."""
    delete_last(conn, events)
    rolled = replay(events[:-1])
    assert rolled is not None
    # the index column of the proposer's own list stays as it was, as a careful forger would leave it
    values: dict[str, Any] = {k: v for k, v in row_params(rolled).items() if k not in ("id", "proposer_account")}
    values["data"] = sa.literal(values["data"], sa.Text())  # the document as the store encoded it
    conn.execute(suggestions.update().where(suggestions.c.id == TARGET).values(values))


def delete_suggestion(conn: Connection, events: list[Event]) -> None:
    """Remove every trace of the suggestion: messages, keys, unit rows, events, the row."""
    for table, column in (("jianyi_outbox", "suggestion_id"), ("jianyi_idempotency", "suggestion_id"),
                          ("jianyi_suggestion_units", "suggestion_id"), ("jianyi_events", "suggestion_id"),
                          ("jianyi_suggestions", "id")):
        conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :sid"), {"sid": TARGET})


def delete_outbox_message(conn: Connection, events: list[Event]) -> None:
    """Delete one of the messages the transfer announced, before it was delivered."""
    first = conn.execute(sa.text("SELECT MIN(id) FROM jianyi_outbox WHERE suggestion_id = :sid AND version = 3"),
                         {"sid": TARGET}).scalar_one()
    execute(conn, "DELETE FROM jianyi_outbox WHERE id = :id", id=first)


CASES: dict[str, tuple[Edit, Problems, Problems]] = {
    # name: (edit, what verify_history reports, what verify_all reports besides)
    "event reason": (edit_reason, [(3, "hash")], []),
    "event changes json": (edit_changes, [(4, "hash"), (7, "row")], []),
    "event changes json and the row to match": (edit_changes_and_row, [(4, "hash")], []),
    "event actor": (edit_actor, [(5, "hash")], []),
    "event time": (edit_time, [(6, "hash")], []),
    "last event to_state": (edit_last_to_state, [(7, "hash"), (7, "step"), (7, "row")], []),
    "event edited and its hash recomputed": (edit_and_reseal, [(4, "chain")], []),
    "delete a middle event": (
        delete_middle, [(4, "order"), (4, "chain"), (5, "order"), (6, "order"), (7, "order"), (7, "row")],
        [(0, LOG)],
    ),
    "delete the first event": (
        delete_first,
        [(2, "order"), (2, "chain"), (3, "order"), (4, "order"), (5, "order"), (6, "order"), (7, "order"),
         (0, "vault"), (7, "replay")],  # the receive event held the digest the vault record answers to
        [(0, LOG)],
    ),
    "delete the last event": (delete_last, [(7, "row")], [(0, LOG)]),
    "delete the last event and roll the row back": (drop_last_and_roll_back, [], [(0, LOG)]),
    "delete every event": (delete_all, [(0, "vault"), (7, "empty")], [(0, LOG)]),
    "swap two events' versions": (
        # the row too: research first, then transfer, leaves the objection window open (the rate
        # event names only what it changed, and closing an already closed window changes nothing)
        swap_versions, [(3, "chain"), (3, "hash"), (4, "chain"), (4, "hash"), (5, "chain"), (7, "row")],
        [(4, "outbox"), (4, "outbox")],  # the transfer's two messages no longer match its version
    ),
    "row state": (edit_row_state, [(7, "row")], []),
    "row version": (edit_row_version, [(8, "row")], []),
    "row data json": (edit_row_data, [(7, "row")], []),
    "row lead_unit column": (edit_row_column, [(7, "row")], []),
    "row proposer_account column": (edit_row_account, [(7, "vault")], []),
    "event hash": (change_hash, [(3, "hash"), (4, "chain")], []),
    "last event hash": (change_last_hash, [(7, "hash"), (7, "row")], []),
    "event prev_hash": (change_prev_hash, [(5, "chain"), (5, "hash")], []),
    "delete an undelivered outbox message": (delete_outbox_message, [], [(3, "outbox")]),
}


def test_an_untouched_database_verifies_clean(flow: Flow) -> None:
    assert flow.verify_all() == []
    for sid in (TARGET, *OTHERS):
        assert flow.verify_history(sid) == []
    # and through a second store on the same database, reading only what was committed
    with SqlStore(engine_of(flow).url) as again:
        reopened = Flow(again, flow.clock)
        assert reopened.verify_all() == []
        assert [e.hash for e in again.history(TARGET)] == [e.hash for e in flow.store.history(TARGET)]
        assert [e.seq for h in again.scan_histories(None, 10) for e in h.events] != []
        assert sorted(e.seq or 0 for h in again.scan_histories(None, 10) for e in h.events) == list(
            range(1, again.last_seq() + 1))


@pytest.mark.parametrize("case", list(CASES))
def test_a_direct_sql_edit_is_reported_at_the_right_suggestion_and_version(flow: Flow, case: str) -> None:
    edit, expected, also = CASES[case]
    before = flow.store.history(TARGET)
    with engine_of(flow).begin() as conn:
        edit(conn, before)

    assert found(flow.verify_history(TARGET)) == expected
    everything = flow.verify_all()
    assert found(everything) == expected + also
    for sid in OTHERS:
        assert flow.verify_history(sid) == []


def test_a_deleted_suggestion_shows_as_positions_missing_from_the_log(flow: Flow) -> None:
    with engine_of(flow).begin() as conn:
        delete_suggestion(conn, flow.store.history(TARGET))
    problems = flow.verify_all()
    assert found(problems) == [(0, LOG)] and "7 events missing" in problems[0].problem


def test_edits_to_two_suggestions_are_each_reported(flow: Flow) -> None:
    last = len(flow.store.history("s0003"))
    with engine_of(flow).begin() as conn:
        execute(conn, "UPDATE jianyi_events SET reason = 'x' WHERE suggestion_id = 's0001' AND version = 2")
        execute(conn, "UPDATE jianyi_suggestions SET state = 'withdrawn' WHERE id = 's0003'")
    problems = flow.verify_all()
    assert [(p.suggestion_id, p.version, kind_of(p)) for p in problems] == [
        ("s0001", 2, "hash"),
        ("s0003", last, "row"),
    ]
    assert flow.verify_history(TARGET) == []


# --- edits the store cannot even decode: reported, not raised ------------------------------------------
UNDECODABLE: dict[str, str] = {
    "event changes not json":
        "UPDATE jianyi_events SET changes = '{not json' WHERE suggestion_id = :sid AND version = 3",
    "event to_state unknown":
        "UPDATE jianyi_events SET to_state = 'hacked' WHERE suggestion_id = :sid AND version = 3",
    "event actor_role unknown":
        "UPDATE jianyi_events SET actor_role = 'hacker' WHERE suggestion_id = :sid AND version = 3",
    "row state unknown": "UPDATE jianyi_suggestions SET state = 'hacked' WHERE id = :sid",
    "row data not json": "UPDATE jianyi_suggestions SET data = 'x' WHERE id = :sid",
    "row data without its fields": "UPDATE jianyi_suggestions SET data = '{}' WHERE id = :sid",
}
"""Edits whose result the store cannot turn back into an Event or a Suggestion."""


@pytest.mark.parametrize("case", list(UNDECODABLE))
def test_an_edit_the_store_cannot_decode_is_reported_not_raised(flow: Flow, case: str) -> None:
    """Verification reports a row it cannot read and goes on: one such row must not stop an audit.

    The scan reports the suggestion without its events (``StoredHistory.problem``), so
    their log positions show as missing too.
    """
    with engine_of(flow).begin() as conn:
        execute(conn, UNDECODABLE[case], sid=TARGET)
    assert found(flow.verify_history(TARGET)) != []
    everything = flow.verify_all()
    assert [(p.suggestion_id, kind_of(p)) for p in everything] == [(TARGET, "unreadable"), ("*", LOG)]
    for sid in OTHERS:
        assert flow.verify_history(sid) == []
    # and the store itself says so with its own error, never a bare ValueError or TypeError
    with pytest.raises(StoreError, match="cannot be decoded"):
        if case.startswith("row"):
            flow.store.load(TARGET)
        else:
            flow.store.history(TARGET)

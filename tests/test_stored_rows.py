"""Commands on the row as the store keeps it (``StoredRows``): same results, no personal data in the row.

``MemoryStore.load_stored`` gives a vaulted row without its proposer's data and the vault
record apart.  ``Flow`` runs a command on that row when nothing the command checks reads
the data (no guards of its own, not a personal-data command, an actor other than the
proposer's account), and fills the data into the result only.  These tests hold that path
to the plain one (``load`` and the store stripping the row again): the same events, hashes,
rows, outbox and returned suggestions, for every actor of the main line.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import ACCOUNT, ADDRESS, OFFICE, PHONE, PROPOSER, STEPS, UNIT, drain, make_flow, receive
from jianyi_flow import MemoryStore, PersonalDataVault, StoredRows
from jianyi_flow.domain.personal import pseudonymous_row
from jianyi_flow.errors import NotFound
from jianyi_flow.service.guards import CommandContext


class PlainStore(MemoryStore):
    """A MemoryStore without the ``StoredRows`` capability: every command loads the resolved row."""

    load_stored = None  # type: ignore[assignment]


def test_only_the_memory_store_with_load_stored_claims_the_capability() -> None:
    assert isinstance(MemoryStore(), StoredRows)
    assert not isinstance(PlainStore(), StoredRows)
    assert isinstance(PlainStore(), PersonalDataVault)


def test_load_stored_gives_the_row_as_kept_and_the_record_apart() -> None:
    flow = make_flow(MemoryStore())
    s = receive(flow)
    store = flow.store
    assert isinstance(store, MemoryStore)
    row, record = store.load_stored(s.id)
    assert record is not None and (record.phone, record.address, record.account) == (PHONE, ADDRESS, ACCOUNT)
    assert row.proposer.vaulted and (row.proposer.name, row.proposer.phone, row.proposer.account) == ("", None, None)
    assert row == pseudonymous_row(store.load(s.id))
    with pytest.raises(NotFound):
        store.load_stored("nope")


def test_pseudonymous_row_gives_a_row_already_without_the_data_as_it_is() -> None:
    flow = make_flow(MemoryStore())
    s = receive(flow)
    bare = pseudonymous_row(flow.store.load(s.id))
    assert bare.proposer.name == "" and pseudonymous_row(bare) is bare


def test_a_command_that_changes_nothing_about_the_proposer_returns_them_resolved_and_stores_none_of_it() -> None:
    flow = make_flow(MemoryStore())
    s = receive(flow)
    flow.register(s.id, OFFICE)
    out = flow.transfer(s.id, OFFICE, lead_unit="u_traffic")
    assert (out.proposer.phone, out.proposer.address, out.proposer.account) == (PHONE, ADDRESS, ACCOUNT)
    store = flow.store
    assert isinstance(store, MemoryStore)
    kept = store._rows[s.id]
    assert (kept.proposer.name, kept.proposer.phone, kept.proposer.address, kept.proposer.account) == \
        ("", None, None, None)
    assert store.load(s.id) == out


def _run_main_line(store: MemoryStore) -> tuple[list[Any], Any]:
    """Two suggestions through every step of the main line and the proposer's own commands."""
    salts = iter(f"{n:032x}" for n in range(1, 100))
    flow = make_flow(store, salts=lambda: next(salts))  # the same vault records, so the same digests and hashes
    results: list[Any] = []
    for steps in (["register", "transfer", "research", "adopt", "reply", "rate", "reopen"], ["withdraw"]):
        s = receive(flow)
        results.append(s)
        for step in steps:
            results.append(STEPS[step](flow, s.id))
    return results, flow


def test_the_stored_row_path_gives_what_the_plain_path_gives() -> None:
    fast, fast_flow = _run_main_line(MemoryStore())
    plain, plain_flow = _run_main_line(PlainStore())
    assert fast == plain  # every suggestion returned, as each actor saw it
    for sid in ("s0001", "s0002"):
        assert fast_flow.store.history(sid) == plain_flow.store.history(sid)  # same events, same hashes
        assert fast_flow.store.load(sid) == plain_flow.store.load(sid)
        assert fast_flow.store._rows[sid] == plain_flow.store._rows[sid]  # type: ignore[attr-defined]
        assert fast_flow.store.personal_data(sid) == plain_flow.store.personal_data(sid)
    assert drain(fast_flow.store) == drain(plain_flow.store)
    assert [e.actor.id for e in fast_flow.store.history("s0002")][-1] == "***"  # the proposer withdrew


def test_the_proposer_acting_sees_their_data_and_is_recorded_by_the_pseudonym() -> None:
    flow = make_flow(MemoryStore())
    s = receive(flow)
    out = flow.withdraw(s.id, PROPOSER, reason="问题已自行解决")
    assert out.proposer.account == ACCOUNT and out.proposer.phone == PHONE
    assert flow.store.history(s.id)[-1].actor.id == "***"


def test_a_flow_with_guards_shows_them_the_row_with_the_data() -> None:
    seen: list[CommandContext] = []

    class Spy:
        def check(self, ctx: CommandContext) -> None:
            seen.append(ctx)

    flow = make_flow(MemoryStore(), guards=[Spy()])
    s = receive(flow)
    flow.register(s.id, OFFICE)
    assert seen[-1].suggestion is not None and seen[-1].suggestion.proposer.account == ACCOUNT


def test_a_unit_gets_the_masked_view_of_the_resolved_row() -> None:
    flow = make_flow(MemoryStore())
    s = receive(flow)
    flow.register(s.id, OFFICE)
    flow.transfer(s.id, OFFICE, lead_unit="u_traffic")
    out = flow.research(s.id, UNIT, findings="实地调研三次", method="field_visit")
    assert out.proposer.account is None and out.proposer.phone not in (None, PHONE)  # masked, not missing

"""Issue 27: proposers' personal data kept apart from the hashed history, erasable, never exported.

The store-level behaviour (vault records written with their change, resolved on every read,
tombstones, the migration's rewritten events) is in the store contract
(``jianyi_flow.testing.StoreContract``, run on every backend); these tests drive whole
suggestions through ``Flow``: erasure and the retention run, who may erase, what verify
finds when the vault is edited behind the store's back, the migration of a store whose
receive events hold the data (with keyed seals and checkpoints made before it), the
reports and the analysts' export.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

import report_fixtures as rf
from helpers import (
    ACCOUNT,
    ADDRESS,
    EVALUATOR,
    OFFICE,
    PHONE,
    PROPOSER,
    UNIT,
    drive_to,
    make_draft,
    make_flow,
    make_proposer,
    sequential_ids,
)
from jianyi_flow import ALLOW_ALL, PROPOSER_PSEUDONYM, Actor, FakeClock, Flow, MemoryStore, Rating, Role, State
from jianyi_flow.cli import main
from jianyi_flow.domain.codec import replay
from jianyi_flow.domain.personal import digest_of, pseudonymous_row
from jianyi_flow.errors import InvalidTransition, PermissionDenied, ValidationError
from jianyi_flow.report import build_report
from jianyi_flow.service.audit import Anchor
from jianyi_flow.service.export import pseudonymised_export
from jianyi_flow.storage.base import Query, iter_suggestions
from jianyi_flow.storage.sql import SqlStore

NAME = "张三"
THIRD_PARTY_PHONE = "13598765432"
"""A neighbour's number a citizen typed into the address field: personal data of a third party."""
PII = (NAME, PHONE, ADDRESS, ACCOUNT, THIRD_PARTY_PHONE)


def holds_pii(value: Any) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    return [p for p in PII if p in text]


def event_text(flow: Flow, sid: str) -> str:
    return repr([(e.actor, e.changes, e.payload, e.reason) for e in flow.store.history(sid)])


def vault_flow(store: Any = None, clock: FakeClock | None = None, **kwargs: Any) -> Flow:
    return make_flow(store if store is not None else MemoryStore(), clock, vault=True, **kwargs)


def draft() -> Any:
    return make_draft(proposer=make_proposer(name=NAME, address=f"{ADDRESS}（邻居电话 {THIRD_PARTY_PHONE}）"))


# --- receive and read ------------------------------------------------------------------------------------


def test_a_vaulted_history_holds_no_personal_data_and_still_replays_to_the_row() -> None:
    flow = vault_flow()
    s = drive_to(flow, State.RATED, draft=draft(), rating=Rating.SATISFIED)
    assert holds_pii(event_text(flow, s.id)) == []  # the proposer rated as "proposer", not as their account
    row = flow.store.load(s.id)
    assert (row.proposer.name, row.proposer.phone, row.proposer.account) == (NAME, PHONE, ACCOUNT)
    assert replay(flow.store.history(s.id)) == pseudonymous_row(row)
    assert flow.get(s.id, PROPOSER).proposer.name == NAME  # the proposer still finds and sees their own
    assert flow.list_suggestions(PROPOSER).items[0].id == s.id
    assert flow.verify_all() == []


class _Recording(MemoryStore):
    """A MemoryStore that also keeps every Change it committed."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[Any] = []

    def commit(self, change: Any) -> Any:
        stored = super().commit(change)
        self.changes.append(change)
        return stored


def test_a_change_carries_the_whole_row_so_it_commits_alike_on_another_store() -> None:
    """What a store keeps of a vaulted row is its own affair: the Change a command commits holds the
    proposer's data, so Changes recorded on one store replay into another with an intact index."""
    recording = _Recording()
    flow = vault_flow(recording)
    s = drive_to(flow, State.RATED, draft=draft(), rating=Rating.SATISFIED)
    assert {c.suggestion.proposer.account for c in recording.changes} == {ACCOUNT}
    sql = SqlStore.open("sqlite://")
    for change in recording.changes:
        sql.commit(change)
    replayed = vault_flow(sql)
    assert replayed.verify_all() == []
    assert [x.id for x in replayed.list_suggestions(PROPOSER).items] == [s.id]
    sql.close()


def test_the_digest_binds_the_vault_data_to_the_history() -> None:
    flow = vault_flow()
    s = flow.receive(draft(), OFFICE)
    record = flow.store.personal_data(s.id)  # type: ignore[attr-defined]
    assert record is not None and flow.store.history(s.id)[0].payload == {"personal_data": digest_of(record)}
    assert digest_of(attrs.evolve(record, phone="13800000000")) != digest_of(record)
    assert digest_of(attrs.evolve(record, salt="00" * 16)) != digest_of(record)


# --- erasure ---------------------------------------------------------------------------------------------


def test_erasure_is_one_event_leaves_statistics_and_verifies() -> None:
    built = rf.build(vault=True)
    flow, store = built.flow, built.store
    before = build_report(built.campaign, store, rf.NOW).to_dict()
    counts = sorted((s.proposer.kind, s.channel, s.area, s.state) for s in iter_suggestions(store))
    flow.erase_personal_data("s04", rf.OFFICE, reason="建议人申请删除个人信息")
    after = build_report(built.campaign, store, rf.NOW)
    assert sorted((s.proposer.kind, s.channel, s.area, s.state) for s in iter_suggestions(store)) == counts
    for key in ("suggestions", "by_state", "by_channel", "by_area", "by_outcome", "by_rating"):
        assert after.to_dict().get(key) == before.get(key), key
    [item] = [x for x in after.summary_phase.selected if x.brief.id == "s04"]
    assert item.proposer.name == "已删除" and item.proposer.phone is None
    unmasked = build_report(built.campaign, store, rf.NOW, unmasked=True, actor=rf.OFFICE)
    assert [x.proposer.name for x in unmasked.summary_phase.selected if x.brief.id == "s04"] == ["已删除"]
    assert [x.proposer.name for x in unmasked.summary_phase.selected if x.brief.id == "s01"] != ["已删除"]
    assert flow.verify_all() == []
    assert replay(store.history("s04")) == store.load("s04")


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_erasure_in_every_state_changes_the_proposer_only(state: State) -> None:
    flow = vault_flow()
    s = drive_to(flow, state, draft=draft())
    before = flow.store.load(s.id)
    flow.erase_personal_data(s.id, OFFICE, reason="建议人申请删除")
    after = flow.store.load(s.id)
    own = {"proposer", "version", "updated_at", "event_hash"}
    assert {k: v for k, v in attrs.asdict(after, recurse=False).items() if k not in own} == {
        k: v for k, v in attrs.asdict(before, recurse=False).items() if k not in own}
    assert after.proposer.name == "已删除" and after.version == before.version + 1
    assert replay(flow.store.history(s.id)) == after and flow.verify_all() == []
    assert holds_pii(event_text(flow, s.id)) == [] and holds_pii(repr(after)) == []


def test_erasing_twice_writes_one_event() -> None:
    flow = vault_flow()
    s = flow.receive(draft(), OFFICE)
    first = flow.erase_personal_data(s.id, OFFICE, reason="申请删除")
    again = flow.erase_personal_data(s.id, OFFICE, reason="申请删除")
    assert first == again and [e.kind for e in flow.store.history(s.id)] == ["receive", "erase_personal_data"]


@pytest.mark.parametrize("actor", [UNIT, PROPOSER, EVALUATOR, Actor("lead-1", Role.LEADERSHIP),
                                   Actor("io-1", Role.INFORMATION_OFFICER)], ids=lambda a: a.role.value)
def test_only_the_office_may_erase(actor: Actor) -> None:
    flow = vault_flow()
    s = drive_to(flow, State.RATED, draft=draft(), rating=Rating.SATISFIED)
    before = flow.store.history(s.id)
    with pytest.raises((PermissionDenied, Exception)) as caught:
        flow.erase_personal_data(s.id, actor, reason="删除")
    assert caught.value.code in ("permission_denied", "not_found")  # type: ignore[attr-defined]
    assert flow.store.history(s.id) == before


def test_a_suggestion_whose_data_is_in_its_history_is_not_erased_but_told_to_migrate() -> None:
    store = MemoryStore()
    s = make_flow(store, vault=False).receive(draft(), OFFICE)
    with pytest.raises(InvalidTransition) as caught:
        vault_flow(store).erase_personal_data(s.id, OFFICE, reason="删除")
    assert "vault" in str(caught.value) and "个人信息" in caught.value.message_zh
    with pytest.raises(ValidationError) as refused:
        Flow(object(), FakeClock(rf.NOW), vault=True)  # type: ignore[arg-type]
    assert refused.value.code == "no_vault"


def test_the_retention_run_pseudonymises_what_closed_long_enough_ago_once() -> None:
    clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=dt.UTC))
    flow = vault_flow(clock=clock, campaign="jy2024")
    rated = drive_to(flow, State.RATED, draft=draft(), rating=Rating.SATISFIED)
    withdrawn = drive_to(flow, State.WITHDRAWN, draft=draft())
    clock.advance(days=200)
    late = drive_to(flow, State.NOT_ACCEPTED, draft=draft())
    open_ = drive_to(flow, State.TRANSFERRED, draft=draft())
    clock.advance(days=100)
    result = flow.erase_expired(OFFICE, reason="保存期限届满", retention_days=180)
    assert sorted(e.suggestion_id for e in result.events) == sorted([rated.id, withdrawn.id])
    assert result.skipped == ()
    assert all(e.payload == {"retention_days": 180} for e in result.events)
    for sid in (rated.id, withdrawn.id):
        p = flow.store.load(sid).proposer
        assert (p.name, p.erased, p.phone, p.account) == ("已脱敏", "pseudonymised", None, None)
    for sid in (late.id, open_.id):
        assert flow.store.load(sid).proposer.name == NAME
    assert flow.erase_expired(OFFICE, reason="again", retention_days=180).events == ()
    assert flow.verify_all() == []
    with pytest.raises(PermissionDenied):
        clock.advance(days=200)
        flow.erase_expired(UNIT, reason="保存期限届满", retention_days=180)


# --- tampering with the vault ----------------------------------------------------------------------------


def _sql_flow(tmp_path: Path, **kwargs: Any) -> tuple[Flow, SqlStore]:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'pd.db'}")
    return vault_flow(store, **kwargs), store


@pytest.mark.parametrize("edit", ["change_phone", "delete_record", "tombstone_without_event", "new_salt"])
def test_editing_the_vault_behind_the_store_is_found(tmp_path: Path, edit: str) -> None:
    flow, store = _sql_flow(tmp_path)
    s = flow.receive(draft(), OFFICE)
    other = flow.receive(draft(), OFFICE)
    assert flow.verify_all() == []
    sql = {
        "change_phone": "UPDATE jianyi_personal_data SET phone = '13800000000' WHERE suggestion_id = :sid",
        "delete_record": "DELETE FROM jianyi_personal_data WHERE suggestion_id = :sid",
        "tombstone_without_event": "UPDATE jianyi_personal_data SET name = NULL, phone = NULL, address = NULL, "
                                   "account = NULL, salt = NULL, erased_at = '2024-09-01 00:00:00.000000' "
                                   "WHERE suggestion_id = :sid",
        "new_salt": "UPDATE jianyi_personal_data SET salt = '" + "11" * 16 + "' WHERE suggestion_id = :sid",
    }[edit]
    with store.engine.begin() as conn:
        conn.execute(sa.text(sql), {"sid": s.id})
    problems = flow.verify_all()
    assert [p.suggestion_id for p in problems] == [s.id], problems
    assert "vault" in problems[0].problem
    assert flow.verify_history(other.id) == []
    store.close()


def test_an_erasure_that_kept_the_data_is_found() -> None:
    flow = vault_flow()
    s = flow.receive(draft(), OFFICE)
    record = flow.store.personal_data(s.id)  # type: ignore[attr-defined]
    flow.erase_personal_data(s.id, OFFICE, reason="删除")
    flow.store._vault[s.id] = record  # type: ignore[attr-defined]  # the data put back behind the store's back
    assert [p.problem for p in flow.verify_history(s.id)] == ["personal data still in the vault after its erase event"]


# --- migrating a store whose receive events hold the data -------------------------------------------------


def test_migration_moves_the_data_re_anchors_by_an_event_and_keeps_seals_and_checkpoints(tmp_path: Path) -> None:
    key = b"k" * 32
    log = tmp_path / "checkpoints.log"
    store = SqlStore.open(f"sqlite:///{tmp_path / 'old.db'}")
    clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=dt.UTC))
    old = make_flow(store, clock, anchor=Anchor(key, log), vault=False)  # a store from before the vault
    ids = [drive_to(old, State.RATED, draft=draft(), rating=Rating.SATISFIED).id, old.receive(draft(), PROPOSER).id]
    assert all(holds_pii(event_text(old, sid)) for sid in ids)
    old.checkpoint()
    clock.advance(days=1)
    new = vault_flow(store, clock, anchor=Anchor(key, log), ids=sequential_ids("v"))
    moved = new.vault_personal_data("个人信息迁移至个人信息库（个人信息保护法第47条）")
    assert sorted(e.suggestion_id for e in moved) == sorted(ids) and all(e.kind == "vault_personal_data" for e in moved)
    for sid in ids:
        assert holds_pii(event_text(new, sid)) == [], sid
        assert store.load(sid).proposer.name == NAME
    assert new.verify_all() == []  # hashes, keyed seals and the checkpoint made before the migration
    assert new.vault_personal_data("again") == []
    new.checkpoint()
    new.erase_personal_data(ids[0], OFFICE, reason="建议人申请删除")
    assert new.verify_all() == []
    # the rewritten receive event is bound by the migration event: editing it again is found
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE jianyi_events SET reason = 'x' WHERE suggestion_id = :sid AND version = 1"),
                     {"sid": ids[1]})
    assert [(p.suggestion_id, p.version) for p in new.verify_all() if p.suggestion_id != "*"] == [(ids[1], 1)]
    store.close()


def test_cli_vault_personal_data_and_erase_expired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore.open(url)
    clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=dt.UTC))
    s = drive_to(make_flow(store, clock, campaign="jy2024", vault=False), State.WITHDRAWN, draft=draft())
    store.close()
    assert main(["vault-personal-data", "--store", url, "--reason", "迁移"]) == 0
    assert main(["erase-expired", "--store", url, "--campaign", "jy2024", "--days", "30", "--actor", "office-1",
                 "--reason", "保存期限届满"]) == 0
    out = capsys.readouterr().out
    assert "1 suggestions moved" in out and "1 proposers pseudonymised" in out
    with SqlStore(url) as store:
        assert store.load(s.id).proposer.name == "已脱敏"
        assert make_flow(store, clock).verify_all() == []


# --- the analysts' export ---------------------------------------------------------------------------------


def test_the_pseudonymised_export_carries_no_personal_data(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'export.db'}"
    store = SqlStore.open(url)
    clock = FakeClock(dt.datetime(2024, 8, 21, 9, tzinfo=dt.UTC))
    legacy = make_flow(store, clock, vault=False)
    texts = {"problem": f"我的电话 {PHONE}，联系人{NAME}，邻居 {THIRD_PARTY_PHONE}，住{ADDRESS}。"}
    drive_to(legacy, State.RATED, draft=make_draft(**texts), rating=Rating.SATISFIED)  # data in the history
    vaulted = vault_flow(store, clock, ids=sequential_ids("v"))
    own = draft()
    assert own.proposer.address is not None
    drive_to(vaulted, State.REPLIED, draft=attrs.evolve(own, problem=f"我住{own.proposer.address}，电话 {PHONE}。"))
    vaulted.receive(draft(), PROPOSER)
    records = list(pseudonymised_export(store))
    assert len(records) == 4 and records[0]["pseudonymised"] is True
    assert holds_pii(records) == []
    assert {r["suggestion"]["proposer"]["kind"] for r in records[1:]} == {"citizen"}
    assert main(["export", "--store", url, "--pseudonymise"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 4 and holds_pii(out) == []
    assert main(["export", "--store", url]) == 1  # refused without saying what it is
    store.close()


def test_the_export_keeps_what_statistics_need() -> None:
    built = rf.build(vault=True)
    records = list(pseudonymised_export(built.store))[1:]
    rows = {s.id: s for s in iter_suggestions(built.store, Query())}
    assert len(records) == len(rows)
    for r in records:
        s = rows[r["id"]]
        assert (r["suggestion"]["channel"], r["suggestion"]["area"], r["suggestion"]["state"]) == (
            s.channel.value, s.area, s.state.value)
        assert len(r["events"]) == s.version


def test_a_request_sent_before_the_vault_keeps_its_fingerprint() -> None:
    """An idempotent retry across the upgrade is the same request: the new Proposer fields count only when set."""
    from jianyi_flow import Proposer, SuggestionDraft
    from jianyi_flow.service.flow import fingerprint

    d = SuggestionDraft(title="t", subject="s", problem="p", measures="m", area="a",
                        proposer=Proposer(name="张三", phone="13812345678"))
    before_the_vault = "27bb767763b5c30ced40c0a6d84fbbf845a8e7a17e0b56d740e208723fab9107"
    assert fingerprint("receive", None, {"draft": d, "suggestion_id": None}) == before_the_vault
    vaulted = attrs.evolve(d, proposer=attrs.evolve(d.proposer, vaulted=True))
    assert fingerprint("receive", None, {"draft": vaulted, "suggestion_id": None}) != before_the_vault


# --- the vault is the default -------------------------------------------------------------------------------


class _NoVault:
    """A store that is a Store but keeps no vault: every call goes to a MemoryStore, except ``personal_data``."""

    def __init__(self) -> None:
        self.inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name == "personal_data":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_the_vault_is_on_by_default_and_a_store_without_one_needs_the_named_opt_out(tmp_path: Path) -> None:
    clock = FakeClock(rf.NOW)
    assert Flow(MemoryStore(), clock).vaulted is True
    with SqlStore.open(f"sqlite:///{tmp_path / 'v.db'}") as store:
        flow = Flow(store, clock)
        assert flow.vaulted is True
        s = flow.receive(draft(), OFFICE)
        assert holds_pii(event_text(flow, s.id)) == []  # the history holds none of it by default
        assert store.load(s.id).proposer.name == NAME  # the row reads it back from the vault
    with pytest.raises(ValidationError) as refused:
        Flow(_NoVault(), clock)  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.code) == ("vault", "no_vault")
    assert "vault=False" in str(refused.value) and "个人信息库" in refused.value.message_zh
    assert Flow(_NoVault(), clock, vault=False).vaulted is False  # type: ignore[arg-type]


def test_a_proposer_role_actor_who_is_not_the_proposer_is_recorded_as_it_is() -> None:
    flow = vault_flow(permissions=ALLOW_ALL)
    s = flow.receive(draft(), PROPOSER)
    other = Actor("wx_other", Role.PROPOSER, name="王五")
    flow.withdraw(flow.register(s.id, OFFICE).id, other, reason="代为撤回")
    actors = [e.actor for e in flow.store.history(s.id)]
    assert actors[0] == Actor(PROPOSER_PSEUDONYM, Role.PROPOSER)  # the proposer themselves
    assert actors[-1] == other  # anyone else stays accountable


def test_the_office_is_offered_the_erasure_until_it_is_done() -> None:
    flow = vault_flow()
    s = drive_to(flow, State.RATED, draft=draft(), rating=Rating.SATISFIED)
    offered = flow.available_commands(OFFICE, s.id)
    assert "erase_personal_data" in offered.commands
    assert [a.name for a in offered.available[offered.commands.index("erase_personal_data")].arguments] == ["reason"]
    assert "erase_personal_data" not in flow.available_commands(UNIT, s.id).commands
    flow.erase_personal_data(s.id, OFFICE, reason="建议人申请删除")
    after = flow.available_commands(OFFICE, s.id)
    assert "erase_personal_data" not in after.commands
    [refused] = [u for u in after.unavailable if u.command == "erase_personal_data"]
    assert "already erased" in refused.message and "已删除" in refused.error.message_zh

"""``StoreContract``: the tests every :class:`~jianyi_flow.storage.base.Store` must pass.

Subclass it in your test suite with a class whose name starts with ``Test`` and give it
``make_store``, returning a new, empty store each call::

    from jianyi_flow.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self) -> MyStore:
            return MyStore(...)

pytest then runs every ``test_*`` method below against your store.  The shipped stores
and the example adapter in ``examples/custom_store.py`` run exactly this kit, so passing
it means behaving like them: :class:`~jianyi_flow.storage.memory.MemoryStore` is the
reference.

``capabilities`` lists the optional protocols of :mod:`jianyi_flow.storage.base` the
store claims (all of them by default, as both shipped stores implement them).  Their tests
run only for the capabilities listed, and :meth:`StoreContract.test_is_a_store` checks
that the store really implements each one listed.

The tests use only the store's public methods.  They make no assumption about isolation
levels beyond "a committed write is visible to the next call, from any thread", never
assume outbox ids start at 1, and observe the outbox without a peek method:
:meth:`StoreContract.drain` claims every unsent message at an instant far in the future,
later each time, so earlier leases have expired.

Two kinds of fixtures are used: suggestions driven through :class:`~jianyi_flow.Flow` with
the default permission table, real actors of the right roles and a
:class:`~jianyi_flow.FakeClock` (what production writes), and hand-made
:class:`~jianyi_flow.storage.base.Change` objects (:mod:`jianyi_flow.testing.builders`) for
edge values no command produces.
"""

from __future__ import annotations

import abc
import datetime as dt
import itertools
import random
from collections.abc import Iterator
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import attrs
import pytest

from ..domain.clock import FakeClock
from ..domain.codec import replay
from ..domain.history import event_hash, verify_events
from ..domain.model import (
    Actor,
    AdoptionForm,
    Channel,
    Event,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Suggestion,
    SuggestionDraft,
)
from ..domain.personal import PersonalRecord, pseudonymous_row
from ..errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from ..service.audit import Anchor
from ..service.flow import OPEN_STATES, PROPOSER_PSEUDONYM, Flow
from ..storage.base import (
    BatchingStore,
    Change,
    HistoryScanner,
    IdempotencyRecord,
    MetadataStore,
    Order,
    OutboxBacklog,
    OutboxMessage,
    PersonalDataVault,
    Query,
    Store,
    TransactingStore,
    matches,
    order,
    sort_key,
)
from .builders import (
    ODD_ZONES,
    advance,
    assert_same,
    assert_same_event,
    assert_same_suggestion,
    create,
    fingerprint_of,
    make_maximal,
    make_suggestion,
    message,
    run_threads,
)
from .drive import (
    CO_UNIT,
    EVALUATOR_ACTOR,
    LEAD_UNIT,
    OFFICE_ACTOR,
    OTHER_UNIT,
    PROPOSER_ACCOUNT,
    PROPOSER_ACTOR,
    T0,
    make_flow,
    unit_actor,
    unit_head,
)

__all__ = ["StoreContract"]

_FAR_FUTURE = dt.datetime(2090, 1, 1, tzinfo=dt.UTC)
_ALL_CAPABILITIES: tuple[type, ...] = (BatchingStore, HistoryScanner, MetadataStore, OutboxBacklog, PersonalDataVault)


class StoreContract(abc.ABC):
    """The store contract as pytest tests; subclass it as ``Test<YourStore>`` and define :meth:`make_store`.

    ``threads`` is how many threads the concurrency tests run at once; ``capabilities``
    the optional protocols the store implements (see the module docstring).
    """

    threads: ClassVar[int] = 4
    capabilities: ClassVar[tuple[type, ...]] = _ALL_CAPABILITIES

    @abc.abstractmethod
    def make_store(self) -> Store:
        """A new, empty store (called once per test; the kit closes it afterwards)."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = self.make_store()
        try:
            yield store
        finally:
            store.close()

    # --- helpers for the tests ---------------------------------------------------------------
    _drains: ClassVar[itertools.count[int]] = itertools.count(1)

    def needs(self, store: Store, capability: type) -> Any:
        """``store`` as ``capability``; skips the test if the store does not claim it."""
        if capability not in self.capabilities:
            pytest.skip(f"{type(store).__name__} does not claim {capability.__name__}")
        assert isinstance(store, capability), f"{type(store).__name__} claims {capability.__name__} but lacks it"
        return store

    def drain(self, store: Store) -> list[OutboxMessage]:
        """Every message not yet marked sent, oldest first (claimed at an instant after all earlier leases)."""
        now = _FAR_FUTURE + dt.timedelta(seconds=next(self._drains))
        found: list[OutboxMessage] = []
        while True:
            batch = store.claim(1000, now, dt.timedelta(microseconds=1))
            found.extend(batch)
            if len(batch) < 1000:
                return found

    def outbox_view(self, store: Store) -> list[tuple[Any, ...]]:
        """The unsent messages without their attempt counts (claiming bumps those)."""
        return [(m.id, m.topic, m.suggestion_id, m.version, m.recipient, dict(m.payload)) for m in self.drain(store)]

    def last_seq(self, store: Store) -> int | None:
        """The store's newest ``seq`` if it can say (a :class:`HistoryScanner`), else ``None``."""
        return store.last_seq() if isinstance(store, HistoryScanner) else None

    def snapshot(self, store: Store, suggestion_id: str, key: str | None = None,
                 scope: str = OFFICE_ACTOR.key) -> tuple[Any, ...]:
        """What a failed commit must leave unchanged: the row, its history, the key, the outbox, the log's end."""
        try:
            row: Suggestion | None = store.load(suggestion_id)
        except NotFound:
            row = None
        record = store.idempotency(scope, key) if key is not None else None
        return row, store.history(suggestion_id), record, self.outbox_view(store), self.last_seq(store)

    def commit(self, store: Store, change: Change) -> Event:
        """Commit ``change`` and check what ``commit`` returns: the event as given, with its ``seq``."""
        stored = store.commit(change)
        assert isinstance(stored, Event), f"commit returned {stored!r}, not the stored event"
        assert isinstance(stored.seq, int) and not isinstance(stored.seq, bool) and stored.seq >= 1, stored.seq
        assert_same_event(stored, attrs.evolve(change.event, seq=stored.seq))
        return stored

    def flow(self, store: Store, clock: FakeClock | None = None, **kwargs: Any) -> Flow:
        """A Flow with the default permission table on ``store`` (campaign ``jy2024``, ids ``s0001``...).

        The flow keeps personal data in the store's vault when the store has one
        (:class:`PersonalDataVault`), and in the history otherwise, so the kit runs on either.
        """
        kwargs.setdefault("vault", isinstance(store, PersonalDataVault))
        return make_flow(store, clock or FakeClock(T0), **kwargs)

    @staticmethod
    def draft(**overrides: Any) -> SuggestionDraft:
        """A draft with every optional part filled in, from a confidential information officer."""
        values: dict[str, Any] = {
            "title": "关于在新桥医院站增设公交站台的建议",
            "subject": "新桥片区公交线路调整",
            "problem": "早高峰 231 路班次间隔过长，乘客候车超过 20 分钟；医院门口无站台。",
            "measures": "建议早高峰加密班次至 8 分钟一班，并增设新桥医院站。",
            "area": "xinqiao",
            "proposer": Proposer(
                name="李四",
                kind=ProposerKind.INFORMATION_OFFICER,
                phone="13912345678",
                address="重庆市永川区中山路 8 号",
                confidential=True,
                account=PROPOSER_ACCOUNT,
            ),
            "channel": Channel.WECHAT,
            "topic": "transport",
            "recommending_unit": "town-xinqiao",
            "accused_units": ("u_police",),
        }
        values.update(overrides)
        return SuggestionDraft(**values)

    # --- the protocol ----------------------------------------------------------------------------
    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)
        for capability in self.capabilities:
            assert isinstance(store, capability), f"{type(store).__name__} claims {capability.__name__}"

    def test_unknown_ids(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.load("nobody")
        assert store.history("nobody") == []
        assert store.idempotency(OFFICE_ACTOR.key, "no-such-key") is None
        assert store.query(Query()) == []
        assert store.count(Query()) == 0
        assert store.claim(10, T0, dt.timedelta(minutes=5)) == []
        store.mark_sent([1, 2, 3], T0)  # unknown ids are ignored
        if isinstance(store, HistoryScanner) and HistoryScanner in self.capabilities:
            assert store.scan_histories(None, 10) == []
            assert store.last_seq() == 0

    # --- the log: seq ------------------------------------------------------------------------------
    def test_commit_returns_the_stored_event_with_its_seq(self, store: Store) -> None:
        """``commit`` gives the event back as stored: the same content with ``seq`` 1, 2, 3... across suggestions."""
        first = create(make_suggestion("seq-a"))
        other = create(make_suggestion("seq-b"))
        stored = [self.commit(store, first), self.commit(store, other)]
        nxt = advance(first.suggestion, kind="register", state=State.REGISTERED, registration_number="R-1")
        stored.append(self.commit(store, nxt))
        assert [e.seq for e in stored] == [1, 2, 3]
        assert store.history("seq-a") == [stored[0], stored[2]]
        assert store.history("seq-b") == [stored[1]]
        assert_same_event(store.history("seq-a")[1], stored[2])
        if HistoryScanner in self.capabilities:
            assert self.needs(store, HistoryScanner).last_seq() == 3

    def test_seq_has_no_gaps_when_commits_fail_in_between(self, store: Store) -> None:
        """Refused commits (duplicate, stale, unknown, reused key, inconsistent) take no place in the log."""
        seqs = [self.commit(store, create(make_suggestion("gap-a"), key="gap-key")).seq]
        a = store.load("gap-a")
        failures: list[tuple[Change, type[Exception]]] = [
            (create(make_suggestion("gap-a")), DuplicateSuggestion),
            (advance(attrs.evolve(a, version=4)), ConcurrencyConflict),
            (advance(make_suggestion("gap-ghost")), NotFound),
            (create(make_suggestion("gap-b"), key="gap-key"), IdempotencyKeyReused),
            (attrs.evolve(advance(a), expected_version=3), ValidationError),
        ]
        for n, (bad, error) in enumerate(failures):
            with pytest.raises(error):
                store.commit(bad)
            seqs.append(self.commit(store, create(make_suggestion(f"gap-{n}"))).seq)
        seqs.append(self.commit(store, advance(a, reply="答复")).seq)
        assert seqs == list(range(1, len(seqs) + 1))
        if HistoryScanner in self.capabilities:
            assert self.needs(store, HistoryScanner).last_seq() == len(seqs)

    def test_seq_has_no_gaps_under_concurrent_writers(self, store: Store) -> None:
        """Writers racing on one suggestion (most lose) and on their own: the winners' seqs are exactly 1..n."""
        self.commit(store, create(make_suggestion("seqrace-shared")))
        rounds = 6

        def writer(i: int) -> list[int]:
            mine: list[int] = []
            for r in range(rounds):
                mine.append(self.commit(store, create(make_suggestion(f"seqrace-{i}-{r}"))).seq or 0)
                current = store.load("seqrace-shared")
                try:
                    mine.append(self.commit(store, advance(current, reply=f"{i}/{r}")).seq or 0)
                except ConcurrencyConflict:
                    pass
                try:  # one of these wins per round at most; the others are duplicates
                    mine.append(self.commit(store, create(make_suggestion(f"seqrace-dup-{r}"))).seq or 0)
                except DuplicateSuggestion:
                    pass
            return mine

        results = run_threads(self.threads, writer)
        seqs: list[int] = [1]
        for r in results:
            assert isinstance(r, list), repr(r)
            seqs.extend(r)
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), "seq has gaps or repeats"
        stored = [e.seq for sid in self._all_ids(store) for e in store.history(sid)]
        assert sorted(s for s in stored if s is not None) == sorted(seqs)
        if HistoryScanner in self.capabilities:
            assert self.needs(store, HistoryScanner).last_seq() == len(seqs)

    def _all_ids(self, store: Store) -> list[str]:
        return [s.id for s in store.query(Query())]

    # --- round trips -------------------------------------------------------------------------------
    # --- the personal-data vault ------------------------------------------------------------------
    def _pii(self) -> list[str]:
        p = self.draft().proposer
        return [p.name, p.phone or "", p.address or "", p.account or ""]

    def _holds_pii(self, events: list[Event]) -> bool:
        text = repr([(e.changes, e.payload, e.actor, e.reason) for e in events])
        return any(value in text for value in self._pii())

    def test_vault_keeps_personal_data_out_of_the_history(self, store: Store) -> None:
        vault = self.needs(store, PersonalDataVault)
        flow = self.flow(store, vault=True)
        s = flow.receive(self.draft(), OFFICE_ACTOR)
        row = store.load(s.id)
        assert (row.proposer.name, row.proposer.phone, row.proposer.account) == ("李四", "13912345678",
                                                                                 PROPOSER_ACCOUNT)
        assert row.proposer.vaulted and not row.proposer.erased
        history = store.history(s.id)
        assert not self._holds_pii(history)
        assert history[0].changes["proposer"] == {"kind": "information_officer", "confidential": True,
                                                  "vaulted": True}
        record = vault.personal_data(s.id)
        assert isinstance(record, PersonalRecord) and record.name == "李四" and record.salt
        assert replay(history) == pseudonymous_row(row)
        assert [r.id for r in store.query(Query(proposer_account=PROPOSER_ACCOUNT))] == [s.id]
        assert store.query(Query()) == [row]
        if isinstance(store, HistoryScanner) and HistoryScanner in self.capabilities:
            [h] = store.scan_histories(None, 10)
            assert h.row == row and h.personal == record
        assert flow.verify_history(s.id) == [] and flow.verify_all() == []

    def test_erasure_leaves_a_tombstone_and_a_history_that_verifies(self, store: Store) -> None:
        vault = self.needs(store, PersonalDataVault)
        flow = self.flow(store, vault=True)
        s = flow.receive(self.draft(recommending_unit=None), PROPOSER_ACTOR, idempotency_key="portal-1")  # portal
        assert store.history(s.id)[0].actor == Actor("***", Role.PROPOSER)  # the account stays in the vault
        assert store.idempotency(PROPOSER_ACTOR.key, "portal-1") is not None
        flow.register(s.id, OFFICE_ACTOR, idempotency_key="register-1")
        erased = flow.erase_personal_data(s.id, OFFICE_ACTOR, reason="建议人申请删除", idempotency_key="erase-1")
        # forgotten: the scope is the account, the fingerprint a digest of the draft; the erasure's own stays
        assert store.idempotency(PROPOSER_ACTOR.key, "portal-1") is None
        assert store.idempotency(OFFICE_ACTOR.key, "register-1") is None
        assert store.idempotency(OFFICE_ACTOR.key, "erase-1") is not None
        row = store.load(s.id)
        assert erased == row and row.version == 3
        assert (row.proposer.name, row.proposer.phone, row.proposer.address, row.proposer.account) == (
            "已删除", None, None, None)
        assert (row.proposer.kind, row.proposer.confidential) == (ProposerKind.INFORMATION_OFFICER, True)
        record = vault.personal_data(s.id)
        assert record is not None and record.erased and record.erased_version == 3
        assert (record.name, record.phone, record.address, record.account, record.salt) == (None,) * 5
        assert store.query(Query(proposer_account=PROPOSER_ACCOUNT)) == []
        assert replay(store.history(s.id)) == row
        assert flow.verify_history(s.id) == [] and flow.verify_all() == []
        again = flow.erase_personal_data(s.id, OFFICE_ACTOR, reason="再次申请")
        assert again == row and len(store.history(s.id)) == 3  # idempotent: nothing written

    def test_a_vault_record_is_written_with_its_change_or_not_at_all(self, store: Store) -> None:
        vault = self.needs(store, PersonalDataVault)
        flow = self.flow(store, vault=True)
        s = flow.receive(self.draft(), OFFICE_ACTOR)
        before = vault.personal_data(s.id)
        row = store.load(s.id)
        event = store.history(s.id)[0]
        stale = Change(attrs.evolve(row, version=2), attrs.evolve(event, version=2), 5,
                       personal_data=PersonalRecord.tombstone(s.id, T0, 2))
        with pytest.raises((ConcurrencyConflict, ValidationError)):
            store.commit(stale)
        assert vault.personal_data(s.id) == before and store.load(s.id) == row

    def test_the_vault_migration_rewrites_earlier_events_in_its_commit(self, store: Store) -> None:
        vault = self.needs(store, PersonalDataVault)
        clock = FakeClock(T0)
        before_the_vault = self.flow(store, clock, vault=False)  # the data goes into the receive event
        s = before_the_vault.receive(self.draft(), OFFICE_ACTOR)
        before = store.history(s.id)
        assert self._holds_pii(before)
        clock.advance(hours=1)
        flow = self.flow(store, clock, vault=True)
        [moved] = flow.vault_personal_data("迁移个人信息")
        history = store.history(s.id)
        assert [e.hash for e in history[:1]] == [before[0].hash] and history[1] == moved
        assert not self._holds_pii(history)
        assert moved.payload["redacted"] == [{"version": 1, "hash": before[0].hash,
                                              "redacted_hash": event_hash(history[0])}]
        record = vault.personal_data(s.id)
        assert record is not None and record.name == "李四"
        assert store.load(s.id).proposer.name == "李四"
        assert flow.verify_all() == [] and flow.vault_personal_data("again") == []
        flow.erase_personal_data(s.id, OFFICE_ACTOR, reason="保存期满")
        assert not self._holds_pii(store.history(s.id)) and flow.verify_all() == []

    def test_flow_lifecycle_round_trips(self, store: Store) -> None:
        """Every command, sent by the actor the default table allows: what it returned is what the store gives back.

        The same actor reads the suggestion back after each command (``Flow.get`` masks
        as the command's result was masked); the office's view is the stored row, and
        each row equals the replay of the history up to its version.
        """
        clock = FakeClock(T0)
        flow = self.flow(store, clock)
        rows: list[Suggestion] = []
        traffic, env, env_head = unit_actor(LEAD_UNIT), unit_actor(CO_UNIT), unit_head(CO_UNIT)

        def step(actor: Actor, result: Suggestion) -> None:
            assert_same_suggestion(flow.get(result.id, actor), result)
            rows.append(store.load(result.id))
            clock.advance(hours=3, microseconds=1)

        s = flow.receive(self.draft(), OFFICE_ACTOR, idempotency_key="receive-1")
        sid = s.id
        step(OFFICE_ACTOR, s)
        step(OFFICE_ACTOR, flow.register(sid, OFFICE_ACTOR))
        step(OFFICE_ACTOR, flow.transfer(sid, OFFICE_ACTOR, lead_unit=LEAD_UNIT, co_units=(CO_UNIT, OTHER_UNIT),
                                         note="请办理"))
        step(traffic, flow.object_transfer(sid, traffic, reason="不属本单位职责"))
        step(OFFICE_ACTOR, flow.accept_objection(sid, OFFICE_ACTOR, note="异议成立"))
        step(OFFICE_ACTOR, flow.transfer(sid, OFFICE_ACTOR, lead_unit=CO_UNIT, co_units=(LEAD_UNIT,)))
        step(env, flow.object_transfer(sid, env, reason="主要涉及交通"))
        step(OFFICE_ACTOR, flow.reject_objection(sid, OFFICE_ACTOR, reason="站台选址属环境评估"))
        step(env, flow.research(sid, env, findings="实地调研三次，召开座谈会一次。", method=ResearchMethod.FORUM))
        step(env, flow.decide(sid, env, outcome=Outcome.PARTIALLY_ADOPTED, reason="站台用地不足",
                               adopted_part="加密早高峰班次"))
        step(env, flow.request_extension(sid, env, days=10, reason="需征求公交公司意见"))
        step(env_head, flow.reject_extension(sid, env_head, reason="期限内可以答复"))
        step(env, flow.request_extension(sid, env, days=5, reason="公交公司尚未回函"))
        step(env_head, flow.approve_extension(sid, env_head, note="同意延期五日"))
        step(env, flow.reply(sid, env, text="感谢您的建议，已加密班次。", form=ReplyForm.WRITTEN))
        step(PROPOSER_ACTOR, flow.rate(sid, PROPOSER_ACTOR, rating=Rating.DISSATISFIED, comment="站台仍未增设"))
        step(OFFICE_ACTOR, flow.reopen(sid, OFFICE_ACTOR, reason="建议人不满意，重新办理"))
        step(env, flow.research(sid, env, findings="与规划部门协调，找到站台用地。", method=ResearchMethod.HEARING))
        step(env, flow.decide(sid, env, outcome=Outcome.ADOPTED))
        step(env, flow.reply(sid, env, text="站台已于本月建成。", form=ReplyForm.ONLINE))
        step(PROPOSER_ACTOR, flow.rate(sid, PROPOSER_ACTOR, rating=Rating.SATISFIED, comment="满意 👍"))
        step(EVALUATOR_ACTOR, flow.evaluate(sid, EVALUATOR_ACTOR, quality=9, value=8, effect=7, evaluator="李评委"))
        step(EVALUATOR_ACTOR, flow.nominate_reward(sid, EVALUATOR_ACTOR, tier=RewardTier.SECOND))
        step(OFFICE_ACTOR, flow.report_upward(sid, OFFICE_ACTOR, form=ReportForm.ANALYSIS, note="呈报分析报告"))
        step(OFFICE_ACTOR, flow.forward_to_city(sid, OFFICE_ACTOR))
        step(env, flow.record_adoption(sid, env, adopted_into="《新桥片区公交优化方案》", form=AdoptionForm.POLICY))
        step(OFFICE_ACTOR, flow.mark_typical(sid, OFFICE_ACTOR, note="典型案例"))

        final = store.load(sid)
        assert final.state is State.RATED and final.reopen_count == 1 and final.return_count == 1
        approved = rows[13]
        assert approved.extended and approved.extension_days == 5 and approved.extension_request is None
        assert_same_suggestion(flow.get(sid, OFFICE_ACTOR), final)
        history = store.history(sid)
        assert [e.version for e in history] == list(range(1, final.version + 1))
        assert [e.kind for e in history][:5] == ["receive", "register", "transfer", "object_transfer",
                                                 "accept_objection"]
        assert verify_events(sid, history, final) == []
        seqs = [e.seq or 0 for e in history]
        assert all(x > 0 for x in seqs) and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        for event, row in zip(history, rows, strict=True):
            assert event.hash == row.event_hash
            assert event.workflow == flow.workflow.version
            # a vaulted proposer's data is in the vault, not the history: the replay gives the row without it
            assert_same_suggestion(replay(history[: event.version]) or final,
                                   pseudonymous_row(row) if row.proposer.vaulted else row)
        assert history[1].notices == (f"proposer:{sid}",)
        assert history[13].payload == {"days": 5, "approver": env_head.key}

        closed = flow.not_accept(flow.receive(self.draft(), OFFICE_ACTOR).id, OFFICE_ACTOR, reason="属个人诉求")
        assert_same_suggestion(store.load(closed.id), closed)
        own = flow.receive(self.draft(topic=None, recommending_unit=None), PROPOSER_ACTOR)
        # a vaulted proposer is recorded by a pseudonym; who they are is in the vault
        assert own.received_by == (Actor(PROPOSER_PSEUDONYM, Role.PROPOSER).ref if flow.vaulted else PROPOSER_ACTOR.ref)
        withdrawn = flow.withdraw(flow.register(own.id, OFFICE_ACTOR).id, PROPOSER_ACTOR, reason="问题已自行解决")
        assert_same_suggestion(store.load(withdrawn.id), withdrawn)
        assert withdrawn.closed_at is not None and withdrawn.due_at is None
        if HistoryScanner in self.capabilities:
            assert flow.verify_all() == []

    def test_flow_with_an_anchor_key_keeps_every_mac(self, store: Store) -> None:
        """With an anchor key each event carries a keyed seal; the store keeps it, and the history verifies with it."""
        flow = self.flow(store, anchor=Anchor(b"anchor key kept outside the database"))
        s = flow.receive(self.draft(), OFFICE_ACTOR)
        flow.register(s.id, OFFICE_ACTOR)
        history = store.history(s.id)
        assert all(e.mac is not None and len(e.mac) == 64 for e in history)
        assert flow.verify_history(s.id) == []
        assert verify_events(s.id, history, store.load(s.id), key=b"another key of enough length") != []
        if HistoryScanner in self.capabilities:
            assert flow.verify_all() == []

    def test_tick_round_trips(self, store: Store) -> None:
        """Time-driven events (overdue flag, unrated close) are stored like commands."""
        clock = FakeClock(T0)
        flow = self.flow(store, clock)
        late = flow.receive(self.draft(), OFFICE_ACTOR)
        assert late.due_at is not None
        clock.set(late.due_at + dt.timedelta(microseconds=1))
        written = flow.tick()
        assert [e.kind for e in written] == ["flag_overdue"]
        flagged = store.load(late.id)
        assert flagged.overdue_flagged_at == late.due_at and flagged.version == 2
        assert_same_event(store.history(late.id)[-1], written[0])
        assert written[0].seq is not None
        assert flow.tick() == []  # the same due time is flagged once
        assert verify_events(late.id, store.history(late.id), flagged) == []

    def test_every_field_round_trips(self, store: Store) -> None:
        """Every field of the row, the event (notices, workflow, policy, mac, seq), the key record and a message."""
        s = make_maximal("max-1")
        for a in attrs.fields(Suggestion):
            if a.default is not attrs.NOTHING and a.name not in ("version", "event_hash"):
                assert getattr(s, a.name) != a.default, f"make_maximal left {a.name} at its default"
        actor = Actor(id="unit-9", role=Role.HANDLING_UNIT, unit="u_env", name="生态环境局")
        change = create(
            s,
            key="max-key ✅",
            scope=actor.key,
            fingerprint="f" * 64,
            actor=actor,
            notify=["unit:u_env", "proposer:max-1"],
            messages=(message(s.id, 1, "unit:u_env", payload={"备注": "请尽快办理", "n": [1, 2.5, None, True]}),),
            policy="deadlines@0123456789ab",
            sealed=True,
        )
        for a in attrs.fields(Event):
            if a.default is not attrs.NOTHING and a.name not in ("seq", "prev_hash", "reason", "payload"):
                assert getattr(change.event, a.name) != a.default, f"the event left {a.name} at its default"
        stored = self.commit(store, change)
        assert_same_suggestion(store.load(s.id), change.suggestion)
        [event] = store.history(s.id)
        assert_same_event(event, stored)
        assert replay([event]) == change.suggestion
        record = store.idempotency(actor.key, "max-key ✅")
        assert record is not None
        assert_same(record, IdempotencyRecord(actor.key, "max-key ✅", s.id, 1, "receive", "f" * 64), "record")

        # and back to the defaults, by a second change whose event has a reason and a payload
        defaults: dict[str, Any] = {
            a.name: a.default
            for a in attrs.fields(Suggestion)
            if a.default is not attrs.NOTHING and a.name not in ("version", "event_hash")
        }
        nullable: dict[str, Any] = {"campaign": None, "topic": None, "recommending_unit": None, "accused_units": ()}
        second = advance(change.suggestion, kind="reset", state=State.RECEIVED, reason="重置 ✅",
                         payload={"嵌套": {"列表": [1, {"深": None}], "大数": 2**62}}, **defaults, **nullable)
        stored2 = self.commit(store, second)
        assert_same_suggestion(store.load(s.id), second.suggestion)
        history = store.history(s.id)
        assert_same_event(history[1], stored2)
        assert verify_events(s.id, history, store.load(s.id)) == []

    def test_minimal_suggestion_round_trips(self, store: Store) -> None:
        s = make_suggestion("min-1", campaign=None, topic=None, title="", subject="", problem="", measures="",
                            proposer=Proposer(name="匿名"), received_by=None)
        change = create(s, actor=Actor(id="sys", role=Role.SYSTEM))
        stored = self.commit(store, change)
        assert_same_suggestion(store.load("min-1"), change.suggestion)
        assert_same_event(store.history("min-1")[0], stored)
        assert stored.notices == () and stored.workflow is None and stored.policy is None and stored.mac is None

    def test_aware_datetimes_round_trip_exactly(self, store: Store) -> None:
        nepal, newfoundland = ODD_ZONES[0], ODD_ZONES[1]
        new_york = ZoneInfo("America/New_York")
        due = dt.datetime(2024, 11, 3, 3, 30, 0, 999_999, tzinfo=new_york)  # DST ended two hours before
        s = make_suggestion(
            "tz-1",
            received_at=dt.datetime(2024, 8, 21, 6, 45, 0, 1, tzinfo=nepal),
            updated_at=dt.datetime(2024, 8, 20, 22, 0, 0, 999_999, tzinfo=newfoundland),
            due_at=due,
            objection_due_at=dt.datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=14))),
            closed_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        )
        change = create(s, messages=(message("tz-1", 1, at=dt.datetime(2024, 8, 21, 1, 2, 3, 456_789, tzinfo=nepal)),))
        stored = self.commit(store, change)
        loaded = store.load("tz-1")
        assert_same_suggestion(loaded, change.suggestion)
        for name in ("received_at", "updated_at", "due_at", "objection_due_at", "closed_at"):
            value = getattr(loaded, name)
            assert value.astimezone(dt.UTC) == getattr(s, name).astimezone(dt.UTC)
            assert value.astimezone(dt.UTC).microsecond == getattr(s, name).astimezone(dt.UTC).microsecond
        assert_same_event(store.history("tz-1")[0], stored)
        [claimed] = store.claim(5, T0, dt.timedelta(minutes=1))
        assert_same(claimed.created_at, change.messages[0].created_at, "message.created_at")

        # due bounds compare instants, to the microsecond, whatever zone the bound is in
        in_utc = due.astimezone(dt.UTC)
        assert store.query(Query(due_before=in_utc)) == []
        assert [r.id for r in store.query(Query(due_before=in_utc + dt.timedelta(microseconds=1)))] == ["tz-1"]
        assert [r.id for r in store.query(Query(due_after=due.astimezone(nepal)))] == ["tz-1"]
        assert store.query(Query(due_after=in_utc + dt.timedelta(microseconds=1))) == []

        # The second 01:30 of the night DST ends.  Python never calls an ambiguous wall time
        # equal to a time in another zone, so only the instant can be compared.
        ambiguous = dt.datetime(2024, 11, 3, 1, 30, 0, 5, tzinfo=new_york, fold=1)
        later = advance(change.suggestion, due_at=ambiguous, closed_at=ambiguous.replace(fold=0))
        self.commit(store, later)
        again = store.load("tz-1")
        assert_same(again.due_at, ambiguous, "due_at (fold=1)")
        assert_same(again.closed_at, ambiguous.replace(fold=0), "closed_at (fold=0)")
        assert again.due_at is not None and again.closed_at is not None
        assert again.due_at.timestamp() - again.closed_at.timestamp() == 3600

    def test_chinese_text_and_emoji_round_trip(self, store: Store) -> None:
        long_text = ("人民建议征集工作是践行全过程人民民主的重要举措。" * 400)[:10_000]
        s = make_suggestion(
            "zh-1",
            title="关于🚌公交“最后一公里”的建议 — 𠀀𪚥 (扩展B区汉字)",
            subject="引号 ' \" 反斜杠 \\ 百分号 % 下划线 _ 分号 ; -- 注释 /* */ ${x} {{y}}",
            problem=long_text,
            measures="第一行\n第二行\t制表符\r\n第三行\u3000全角空格 😀😃🎉👨‍👩‍👧 尾随空格 ",
            research_notes=long_text,
            reply=long_text,
            topic="交通出行",
            proposer=Proposer(name="欧阳娜娜", address="重庆市永川区 🏠 人民大道1号", account="微信_娜娜"),
        )
        change = create(
            s,
            actor=Actor(id="办公室-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区人民建议征集办公室 🏛"),
            messages=(
                message("zh-1", 1, "unit:交通局", payload={"备注": "请于十五日内办理 ⏰", "列表": ["一", "二"]}),
            ),
        )
        stored = self.commit(store, change)
        assert_same_suggestion(store.load("zh-1"), change.suggestion)
        assert_same_event(store.history("zh-1")[0], stored)
        assert [r.id for r in store.query(Query(topic="交通出行"))] == ["zh-1"]
        second = advance(change.suggestion, kind="comment", reason="理由：😀 超过一百字的理由" * 50,
                         payload={"附言": "“引号”与『括号』"}, rating_comment="很满意 👍🏻")
        stored2 = self.commit(store, second)
        assert_same_suggestion(store.load("zh-1"), second.suggestion)
        assert_same_event(store.history("zh-1")[1], stored2)
        [claimed] = self.drain(store)
        assert dict(claimed.payload) == {"备注": "请于十五日内办理 ⏰", "列表": ["一", "二"]}
        assert claimed.recipient == "unit:交通局"

    def test_history_is_in_version_order(self, store: Store) -> None:
        change = create(make_suggestion("h-1"))
        expected = [self.commit(store, change)]
        current = change.suggestion
        for n in range(12):
            nxt = advance(current, kind=f"step{n}", reason=f"第{n}步", payload={"n": n}, reply=f"答复{n}")
            expected.append(self.commit(store, nxt))
            current = nxt.suggestion
        history = store.history("h-1")
        assert [e.version for e in history] == list(range(1, 14))
        for got, want in zip(history, expected, strict=True):
            assert_same_event(got, want)
        assert verify_events("h-1", history, store.load("h-1")) == []

    # --- refusing bad writes, atomically ------------------------------------------------------
    def test_duplicate_create_is_refused_and_writes_nothing(self, store: Store) -> None:
        first = create(make_suggestion("dup-1"), notify=["office"], key="dup-key-1")
        self.commit(store, first)
        before = self.snapshot(store, "dup-1", "dup-key-2")
        again = create(make_suggestion("dup-1", title="另一条"), notify=["office", "unit:x"], key="dup-key-2")
        with pytest.raises(DuplicateSuggestion):
            store.commit(again)
        assert self.snapshot(store, "dup-1", "dup-key-2") == before
        assert before[2] is None  # the second key was not recorded
        assert_same_suggestion(store.load("dup-1"), first.suggestion)

    def test_stale_version_conflicts_and_writes_nothing(self, store: Store) -> None:
        first = create(make_suggestion("stale-1"))
        self.commit(store, first)
        second = advance(first.suggestion, kind="register", state=State.REGISTERED, registration_number="R-1")
        self.commit(store, second)
        before = self.snapshot(store, "stale-1", "stale-key")
        late = advance(first.suggestion, kind="withdraw", state=State.WITHDRAWN, notify=["office"], key="stale-key")
        with pytest.raises(ConcurrencyConflict) as caught:
            store.commit(late)
        assert caught.value.suggestion_id == "stale-1"
        assert caught.value.expected_version == 1
        assert caught.value.actual_version in (None, 2)
        assert self.snapshot(store, "stale-1", "stale-key") == before
        ahead = advance(advance(second.suggestion).suggestion, key="stale-key")  # expects version 3: not there yet
        with pytest.raises(ConcurrencyConflict):
            store.commit(ahead)
        assert self.snapshot(store, "stale-1", "stale-key") == before
        assert store.load("stale-1") == second.suggestion

    def test_update_of_unknown_suggestion_is_not_found(self, store: Store) -> None:
        ghost = make_suggestion("ghost-1")
        change = advance(attrs.evolve(ghost, event_hash="x" * 64), notify=["office"], key="ghost-key")
        with pytest.raises(NotFound):
            store.commit(change)
        assert self.snapshot(store, "ghost-1", "ghost-key")[:4] == (None, [], None, [])

    def test_inconsistent_change_is_refused(self, store: Store) -> None:
        first = create(make_suggestion("bad-1"))
        self.commit(store, first)
        before = self.snapshot(store, "bad-1", "bad-key")
        good = advance(first.suggestion, notify=["office"], key="bad-key")
        wrong = [
            attrs.evolve(good, event=attrs.evolve(good.event, version=3)),
            attrs.evolve(good, event=attrs.evolve(good.event, suggestion_id="bad-2")),
            attrs.evolve(good, expected_version=2),
            attrs.evolve(good, suggestion=attrs.evolve(good.suggestion, version=5)),
            attrs.evolve(good, messages=(message("bad-2", 2),)),
        ]
        for change in wrong:
            with pytest.raises(ValidationError):
                store.commit(change)
            assert self.snapshot(store, "bad-1", "bad-key") == before

    def test_a_change_of_the_wrong_shape_is_refused_before_anything_else_and_writes_nothing(
            self, store: Store) -> None:
        first = create(make_suggestion("shape-1"), notify=["office"])
        self.commit(store, first)
        before = self.snapshot(store, "shape-1", "shape-key")
        good = advance(first.suggestion, notify=["office"], key="shape-key")
        stranger = attrs.asdict(good.messages[0], recurse=False)  # a message's fields, not a message

        def shaped(change: Change, **fields: Any) -> Change:
            return attrs.evolve(change, **fields)

        fresh = create(make_suggestion("shape-2"))
        wrong: dict[str, list[Any]] = {
            "change": [None, "change", good.suggestion, shaped(good, suggestion=None), shaped(good, event="event")],
            "change.expected_version": [shaped(good, expected_version="1"), shaped(good, expected_version=-1)],
            "change.messages": [shaped(good, messages=(stranger,))],
            "change.redacted": [shaped(good, redacted=("event",)),
                                shaped(good, redacted=(good.event,)),  # the event being committed
                                shaped(first, redacted=(first.event,)),  # comes before the duplicate
                                shaped(fresh, redacted=(fresh.event,))],
        }
        for field, changes in wrong.items():
            for change in changes:
                with pytest.raises(ValidationError) as caught:
                    store.commit(change)
                assert caught.value.field == field, change
                assert self.snapshot(store, "shape-1", "shape-key") == before
        assert self.snapshot(store, "shape-2")[:3] == (None, [], None)
        self.commit(store, fresh)  # the refused create left no trace: the same create goes through
        assert store.load("shape-2") == fresh.suggestion and len(store.history("shape-2")) == 1

    def test_reused_key_fails_the_whole_change(self, store: Store) -> None:
        """The key is the last thing written: its failure must undo the row, event and messages before it."""
        a = create(make_suggestion("key-a"), key="shared-key")
        b = create(make_suggestion("key-b"))
        self.commit(store, a)
        self.commit(store, b)
        before = self.snapshot(store, "key-b", "shared-key")
        reuse = advance(b.suggestion, kind="register", state=State.REGISTERED, registration_number="R-9",
                        notify=["office", "proposer:key-b"], key="shared-key")
        with pytest.raises(IdempotencyKeyReused):
            store.commit(reuse)
        assert self.snapshot(store, "key-b", "shared-key") == before
        assert store.idempotency(OFFICE_ACTOR.key, "shared-key") == a.idempotency
        created = create(make_suggestion("key-c"), notify=["office"], key="shared-key")
        with pytest.raises(IdempotencyKeyReused):
            store.commit(created)
        assert self.snapshot(store, "key-c")[:4] == (None, [], None, before[3])
        fresh = advance(b.suggestion, kind="register", state=State.REGISTERED, registration_number="R-9",
                        notify=["office", "proposer:key-b"], key="fresh-key")
        self.commit(store, fresh)  # the same change under a new key: fine
        assert store.load("key-b").version == 2

    # --- idempotency ------------------------------------------------------------------------
    def test_idempotency_records_what_the_command_did(self, store: Store) -> None:
        first = create(make_suggestion("idem-1"), key="k-receive", fingerprint="a" * 64)
        self.commit(store, first)
        second = advance(first.suggestion, kind="register", state=State.REGISTERED, key="k-register",
                         scope=PROPOSER_ACTOR.key, fingerprint="b" * 64)
        self.commit(store, second)
        got = store.idempotency(OFFICE_ACTOR.key, "k-receive")
        assert got is not None
        assert_same(got, IdempotencyRecord(OFFICE_ACTOR.key, "k-receive", "idem-1", 1, "receive", "a" * 64), "record")
        got = store.idempotency(PROPOSER_ACTOR.key, "k-register")
        assert got is not None
        assert_same(got, IdempotencyRecord(PROPOSER_ACTOR.key, "k-register", "idem-1", 2, "register", "b" * 64),
                    "record")
        assert store.idempotency(OFFICE_ACTOR.key, "k-register") is None
        assert store.idempotency(PROPOSER_ACTOR.key, "k-receive") is None
        assert store.idempotency(OFFICE_ACTOR.key, "k-other") is None

    def test_keys_are_scoped(self, store: Store) -> None:
        """One key in two scopes is two records; in one scope it is refused the second time."""
        scopes = [OFFICE_ACTOR.key, unit_actor(LEAD_UNIT).key, unit_actor(CO_UNIT).key, PROPOSER_ACTOR.key]
        for n, scope in enumerate(scopes):
            self.commit(store, create(make_suggestion(f"scoped-{n}"), key="K", scope=scope,
                                      fingerprint=fingerprint_of("receive", scope, "K")))
        for n, scope in enumerate(scopes):
            record = store.idempotency(scope, "K")
            assert record == IdempotencyRecord(scope, "K", f"scoped-{n}", 1, "receive",
                                               fingerprint_of("receive", scope, "K"))
        with pytest.raises(IdempotencyKeyReused):
            store.commit(create(make_suggestion("scoped-again"), key="K", scope=scopes[1]))
        kept = store.idempotency(scopes[1], "K")
        assert kept is not None and kept.suggestion_id == "scoped-1"
        with pytest.raises(NotFound):
            store.load("scoped-again")

    def test_keys_scopes_ids_and_meta_names_compare_byte_for_byte(self, store: Store) -> None:
        """``"k"`` and ``"k "`` (and case, width and Unicode normal forms) are different keys, scopes, ids and names.

        A database collation that pads, folds case or compares canonically equivalent
        text as equal (MariaDB's default PAD SPACE collations do) breaks this.
        """
        variants = ["k", "k ", "k  ", "K", "k\t", "ｋ", "\u00e9", "e\u0301", "ß", "ss", " k"]
        for n, v in enumerate(variants):
            sid = f"bx-{v}"
            self.commit(store, create(make_suggestion(sid, title=f"第{n}条"), key=v, scope="scope",
                                      fingerprint=str(n)))
            self.commit(store, create(make_suggestion(f"bx-scope-{n}"), key="same", scope=f"scope{v}",
                                      fingerprint=str(n)))
        for n, v in enumerate(variants):
            sid = f"bx-{v}"
            assert store.load(sid).title == f"第{n}条", repr(sid)
            assert [e.suggestion_id for e in store.history(sid)] == [sid], repr(sid)
            record = store.idempotency("scope", v)
            assert record is not None and (record.key, record.suggestion_id, record.fingerprint) == (v, sid, str(n)), (
                repr(v))
            record = store.idempotency(f"scope{v}", "same")
            assert record is not None and (record.scope, record.suggestion_id) == (f"scope{v}", f"bx-scope-{n}")
        assert store.idempotency("scope", "k   ") is None
        assert store.idempotency("scope ", "k") is None
        with pytest.raises(NotFound):
            store.load("bx-k   ")
        assert store.history("bx-k   ") == []
        assert [r.id for r in store.query(Query(after_id="bx-k", limit=1))] == ["bx-k\t"]
        if MetadataStore in self.capabilities:
            meta = self.needs(store, MetadataStore)
            for n, v in enumerate(variants):
                meta.set_meta(f"name-{v}", f"value {n}")
            for n, v in enumerate(variants):
                assert meta.get_meta(f"name-{v}") == f"value {n}", repr(v)
            assert meta.get_meta("name-k   ") is None

    def test_flow_retry_with_the_same_key_writes_nothing_new(self, store: Store) -> None:
        flow = self.flow(store)
        first = flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-1", idempotency_key="portal-1")
        assert flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-1", idempotency_key="portal-1") == first
        registered = flow.register("retry-1", OFFICE_ACTOR, idempotency_key="portal-2")
        before = self.snapshot(store, "retry-1", "portal-2")
        assert flow.register("retry-1", OFFICE_ACTOR, idempotency_key="portal-2") == registered
        assert flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-1", idempotency_key="portal-1") == first
        assert self.snapshot(store, "retry-1", "portal-2") == before
        assert len(before[1]) == 2
        # the same key for another request: refused, nothing written
        with pytest.raises(IdempotencyKeyReused):
            flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-2", idempotency_key="portal-1")
        with pytest.raises(NotFound):
            store.load("retry-2")
        assert self.snapshot(store, "retry-1", "portal-2") == before

    def test_flow_keys_belong_to_their_actor(self, store: Store) -> None:
        """Another actor's key is not a replay: it runs (or is refused) as a fresh command of that actor."""
        clock = FakeClock(T0)
        flow = self.flow(store, clock)
        office_2 = Actor(id="office-2", role=Role.COLLECTION_OFFICE, unit="zjb")
        a = flow.receive(self.draft(), OFFICE_ACTOR, idempotency_key="K")
        b = flow.receive(self.draft(), office_2, idempotency_key="K")
        assert a.id != b.id
        own = flow.receive(self.draft(recommending_unit=None), PROPOSER_ACTOR, idempotency_key="K")
        assert own.id not in (a.id, b.id)
        records = [store.idempotency(actor.key, "K") for actor in (OFFICE_ACTOR, office_2, PROPOSER_ACTOR)]
        assert [r.suggestion_id if r else None for r in records] == [a.id, b.id, own.id]

        flow.register(a.id, OFFICE_ACTOR)
        flow.transfer(a.id, OFFICE_ACTOR, lead_unit=LEAD_UNIT, co_units=(CO_UNIT,))
        lead, co = unit_actor(LEAD_UNIT), unit_actor(CO_UNIT)
        researched = flow.research(a.id, lead, findings="座谈", method=ResearchMethod.FORUM, idempotency_key="R")
        before = self.snapshot(store, a.id, "R", scope=co.key)
        with pytest.raises(PermissionDenied):  # the co-handling unit may see it, but may not research it
            flow.research(a.id, co, findings="座谈", method=ResearchMethod.FORUM, idempotency_key="R")
        assert self.snapshot(store, a.id, "R", scope=co.key) == before
        assert flow.research(a.id, lead, findings="座谈", method=ResearchMethod.FORUM,
                             idempotency_key="R") == researched

    def test_a_refused_command_writes_nothing(self, store: Store) -> None:
        """Refused by the default permission table, or not visible to the actor: row, history, outbox and log stay."""
        flow = self.flow(store)
        s = flow.receive(self.draft(), OFFICE_ACTOR)
        flow.register(s.id, OFFICE_ACTOR)
        before = self.snapshot(store, s.id, "x", scope=PROPOSER_ACTOR.key)
        with pytest.raises(PermissionDenied):
            flow.transfer(s.id, PROPOSER_ACTOR, lead_unit=LEAD_UNIT, idempotency_key="x")
        with pytest.raises(NotFound):  # a unit it was not transferred to cannot even see it
            flow.research(s.id, unit_actor(OTHER_UNIT), findings="x", method=ResearchMethod.OTHER)
        with pytest.raises(NotFound):
            flow.get(s.id, Actor(id="someone-else", role=Role.PROPOSER))
        assert self.snapshot(store, s.id, "x", scope=PROPOSER_ACTOR.key) == before

    # --- concurrency --------------------------------------------------------------------------
    def test_concurrent_writers_one_wins_per_version(self, store: Store) -> None:
        first = create(make_suggestion("race-1"))
        self.commit(store, first)
        for rnd in range(4):
            current = store.load("race-1")

            def attempt(i: int, current: Suggestion = current, rnd: int = rnd) -> Change:
                change = advance(current, kind=f"writer{i}", reason=f"round {rnd}", notify=[f"unit:w{i}"],
                                 key=f"race-{rnd}-{i}", reply=f"writer {i}")
                self.commit(store, change)
                return change

            results = run_threads(self.threads, attempt)
            won = [r for r in results if isinstance(r, Change)]
            lost = [r for r in results if not isinstance(r, Change)]
            assert len(won) == 1, f"round {rnd}: {len(won)} writers won: {results}"
            for exc in lost:
                assert isinstance(exc, ConcurrencyConflict), repr(exc)
                assert exc.expected_version == current.version
                assert exc.actual_version in (None, current.version + 1)
            assert store.load("race-1") == won[0].suggestion
            winner = won[0].idempotency
            for i in range(self.threads):
                record = store.idempotency(OFFICE_ACTOR.key, f"race-{rnd}-{i}")
                assert (record is not None) == (winner is not None and winner.key == f"race-{rnd}-{i}")
        history = store.history("race-1")
        assert [e.version for e in history] == [1, 2, 3, 4, 5]
        assert verify_events("race-1", history, store.load("race-1")) == []
        assert len(self.drain(store)) == 4  # one message per winning change

    def test_concurrent_writers_keep_a_gapless_history(self, store: Store) -> None:
        self.commit(store, create(make_suggestion("race-2")))
        target = 4 * self.threads + 1

        def writer(i: int) -> tuple[int, int]:
            wins = conflicts = 0
            for _ in range(50 * target):  # bounded: a broken store must fail the test, not hang it
                current = store.load("race-2")
                if current.version >= target:
                    return wins, conflicts
                try:
                    self.commit(store, advance(current, kind=f"w{i}", payload={"writer": i}))
                    wins += 1
                except ConcurrencyConflict:
                    conflicts += 1
            raise AssertionError(f"writer {i} never saw version {target}")

        results = run_threads(self.threads, writer)
        for r in results:
            assert isinstance(r, tuple), repr(r)
        final = store.load("race-2")
        assert final.version == target
        assert sum(r[0] for r in results if isinstance(r, tuple)) == target - 1
        history = store.history("race-2")
        assert len(history) == final.version
        assert verify_events("race-2", history, final) == []

    def test_concurrent_creates_of_one_id(self, store: Store) -> None:
        def attempt(i: int) -> Change:
            change = create(make_suggestion("race-3", title=f"版本{i}"), notify=["office"], key=f"create-{i}")
            self.commit(store, change)
            return change

        results = run_threads(self.threads, attempt)
        won = [r for r in results if isinstance(r, Change)]
        assert len(won) == 1, results
        assert all(isinstance(r, DuplicateSuggestion) for r in results if not isinstance(r, Change)), results
        assert store.load("race-3") == won[0].suggestion
        assert len(store.history("race-3")) == 1
        assert len(self.drain(store)) == 1
        recorded = [store.idempotency(OFFICE_ACTOR.key, f"create-{i}") is not None for i in range(self.threads)]
        assert recorded.count(True) == 1

    def test_concurrent_uses_of_one_key(self, store: Store) -> None:
        """One key in one scope, different suggestions at once: one change is written whole, the others not at all."""

        def attempt(i: int) -> Change:
            change = create(make_suggestion(f"race-4-{i}"), notify=["office"], key="one-key")
            self.commit(store, change)
            return change

        results = run_threads(self.threads, attempt)
        won = [r for r in results if isinstance(r, Change)]
        assert len(won) == 1, results
        assert all(isinstance(r, IdempotencyKeyReused) for r in results if not isinstance(r, Change)), results
        for i in range(self.threads):
            sid = f"race-4-{i}"
            if won[0].suggestion.id == sid:
                assert store.load(sid) == won[0].suggestion
            else:
                assert self.snapshot(store, sid)[:3] == (None, [], None)
        assert [m.suggestion_id for m in self.drain(store)] == [won[0].suggestion.id]
        assert store.idempotency(OFFICE_ACTOR.key, "one-key") == won[0].idempotency

    def test_concurrent_flow_retries_of_one_command_all_get_its_result(self, store: Store) -> None:
        """A portal retrying the same command at once under one key: one event, and every retry gets its result."""
        flow = self.flow(store)
        sid = flow.receive(self.draft(), OFFICE_ACTOR).id
        results = run_threads(self.threads, lambda i: flow.register(sid, OFFICE_ACTOR, idempotency_key="reg-1"))
        assert all(isinstance(r, Suggestion) for r in results), results
        row = store.load(sid)
        assert all(r == row for r in results)
        assert row.version == 2 and [e.kind for e in store.history(sid)] == ["receive", "register"]
        assert [m.topic for m in self.drain(store)] == ["receive", "register"]

        receipts = run_threads(self.threads, lambda i: flow.receive(self.draft(), OFFICE_ACTOR,
                                                                     idempotency_key="recv-1"))
        assert all(isinstance(r, Suggestion) for r in receipts), receipts
        ids = {r.id for r in receipts if isinstance(r, Suggestion)}
        assert len(ids) == 1 and len(store.history(ids.pop())) == 1

    # --- queries ---------------------------------------------------------------------------------
    _QUERY_IDS: ClassVar[list[str]] = ["A1", "B2", "Z9", "_u", "a1", "b-2", "b.3", "b 2", "b2", "b2 ", "z9"] + [
        f"q{n:03d}" for n in range(34)
    ]

    def _query_rows(self, store: Store, transacting: TransactingStore | None = None) -> list[Suggestion]:
        """Forty-odd suggestions varied in every filtered field, sort values in odd zones, ties; a third moved on.

        With ``transacting``, each move reads the row and commits in one ``transaction`` (as Flow
        does), and another third moves on to a new due time with the same units.
        """
        rng = random.Random(20240821)
        ids = list(self._QUERY_IDS)
        rng.shuffle(ids)
        units = ["u1", "u2", "u3", "u4", "U1"]
        shared = T0 + dt.timedelta(days=3, hours=5)
        rows: list[Suggestion] = []
        changes: list[Change] = []
        for n, sid in enumerate(ids):
            zone = ODD_ZONES[n % len(ODD_ZONES)]
            due_choice = rng.random()
            if due_choice < 0.25:
                due: dt.datetime | None = None
            elif due_choice < 0.45:
                due = shared.astimezone(zone)
            else:
                due = (T0 + dt.timedelta(minutes=rng.randrange(-20_000, 20_000), microseconds=rng.randrange(10**6))
                       ).astimezone(zone)
            received = (shared if rng.random() < 0.2 else
                        T0 - dt.timedelta(minutes=rng.randrange(0, 40_000), microseconds=rng.randrange(10**6)))
            co = tuple(u for u in units if rng.random() < 0.3)
            lead = rng.choice([None, *units])
            flag_choice = rng.random()  # flagged for this due time (the instant in another zone), another, or not
            flagged = None if flag_choice < 0.4 else T0 if flag_choice < 0.5 else (
                None if due is None else due.astimezone(ODD_ZONES[(n + 1) % len(ODD_ZONES)])
                + (dt.timedelta(microseconds=1) if flag_choice < 0.6 else dt.timedelta(0)))
            s = make_suggestion(
                sid,
                at=received.astimezone(ODD_ZONES[(n + 3) % len(ODD_ZONES)]),
                state=rng.choice(list(State)),
                campaign=rng.choice([None, "c1", "c2"]),
                area=rng.choice(["a1", "a2", "a3"]),
                topic=rng.choice([None, "t1", "t2"]),
                lead_unit=lead,
                co_units=tuple(u for u in co if u != lead),
                recommending_unit=rng.choice([None, "r1", "u2"]),
                proposer=Proposer(name="张三", account=rng.choice([None, "wx_a", "wx_b", "WX_A", "wx_a "])),
                received_by=rng.choice([None, "collection_office:office-1", "information_officer:io-1"]),
                registration_number=rng.choice([None, f"JY-{n:03d}", f"jy-{n:03d}", f"Jy_{n:03d}", f"JY {n:03d}"]),
                due_at=due,
                due_provisional=rng.random() < 0.3,
                upward_reports=rng.choice([(), (ReportForm.ORIGINAL,), (ReportForm.EXCERPT, ReportForm.ANALYSIS)]),
                forwarded_to_city_at=rng.choice([None, T0 + dt.timedelta(days=1)]),
                overdue_flagged_at=flagged,
            )
            changes.append(create(s))
        # a DST fold (New York, 2024-11-03 01:30 happens twice): one instant in two zones is
        # flagged for its due time; the fold's two wall times, equal in one zone, are not
        york = ZoneInfo("America/New_York")
        second = dt.datetime(2024, 11, 3, 1, 30, tzinfo=york, fold=1)
        changes.append(create(make_suggestion("fold-1", area="a1", due_at=second,
                                              overdue_flagged_at=second.astimezone(dt.UTC))))
        changes.append(create(make_suggestion("fold-2", area="a1", due_at=second.replace(fold=0),
                                              overdue_flagged_at=second)))
        for c in changes:
            self.commit(store, c)
        for n, c in enumerate(changes):
            s = c.suggestion
            if n % 3 == 0:
                co_units = tuple(u for u in units if rng.random() < 0.3)
                lead = rng.choice([None, *(u for u in units if u not in co_units)])
                moved = advance(
                    s,
                    state=rng.choice(list(State)),
                    lead_unit=lead,
                    co_units=co_units,
                    due_at=None if n % 2 else shared,
                    due_provisional=not s.due_provisional,
                    upward_reports=(*s.upward_reports, ReportForm.ORIGINAL) if not s.upward_reports else (),
                    area="a1",
                )
                self._move(store, transacting, moved)
                s = moved.suggestion
            elif n % 3 == 1 and transacting is not None:
                moved = advance(s, due_at=None if n % 2 else s.received_at + dt.timedelta(days=n))
                self._move(store, transacting, moved)
                s = moved.suggestion
            rows.append(s)
        return rows

    def _move(self, store: Store, transacting: TransactingStore | None, change: Change) -> None:
        if transacting is None:
            self.commit(store, change)
            return

        def work() -> Event:
            assert store.load(change.suggestion.id).version == change.expected_version
            return self.commit(store, change)

        transacting.transaction(work)

    @staticmethod
    def _cursor(rng: random.Random, q: Query, rows: list[Suggestion]) -> tuple[Any, str] | None:
        """A cursor to continue ``q`` after: a row's (in another zone), or a value between rows."""
        choice = rng.random()
        if choice < 0.45:
            return None
        candidates = [r for r in rows if sort_key(q.order, r) is not None]
        r = rng.choice(candidates)
        value = sort_key(q.order, r)
        if isinstance(value, dt.datetime):
            value = value.astimezone(rng.choice(ODD_ZONES))
            if choice > 0.85:
                value += dt.timedelta(microseconds=rng.choice([-1, 1]))
        elif choice > 0.85:
            value = value + rng.choice([" ", "~", "\x7f"])
        sid = r.id if choice < 0.85 else rng.choice(["", "m", "\U0010ffff"])
        return (value, sid)

    def _random_queries(self, rows: list[Suggestion], count: int, seed: int) -> list[Query]:
        rng = random.Random(seed)
        shared = T0 + dt.timedelta(days=3, hours=5)
        york = ZoneInfo("America/New_York")
        first_0145 = dt.datetime(2024, 11, 3, 1, 45, tzinfo=york, fold=0)
        bounds = [None, None, T0, shared, shared + dt.timedelta(microseconds=1), T0 + dt.timedelta(days=10),
                  T0 - dt.timedelta(days=5), first_0145, first_0145.replace(fold=1)]
        out: list[Query] = []
        for _ in range(count):
            q = Query(
                states=rng.choice([None, None, OPEN_STATES, frozenset(rng.sample(list(State), 3))]),
                unit=rng.choice([None, None, None, "u1", "u2", "U1", "r1"]),
                lead_unit=rng.choice([None, None, None, "u1", "u3"]),
                co_unit=rng.choice([None, None, None, "u2", "U1"]),
                recommending_unit=rng.choice([None, None, None, "r1", "u2"]),
                proposer_account=rng.choice([None, None, None, "wx_a", "WX_A", "wx_a "]),
                received_by=rng.choice([None, None, None, "collection_office:office-1", "information_officer:io-1"]),
                area=rng.choice([None, None, "a1", "a2"]),
                topic=rng.choice([None, None, "t1"]),
                campaign=rng.choice([None, None, "c1", "c2"]),
                received_after=rng.choice(bounds),
                received_before=rng.choice(bounds),
                due_after=rng.choice(bounds[:1] * 4 + bounds),
                due_before=rng.choice(bounds[:1] * 4 + bounds),
                provisional=rng.choice([None, None, True, False]),
                reported_upward=rng.choice([None, None, True, False]),
                forwarded_to_city=rng.choice([None, None, True, False]),
                overdue_unflagged=rng.random() < 0.2,
                order=rng.choice(list(Order)),
                descending=rng.random() < 0.5,
                limit=rng.choice([None, None, 1, 4, 9]),
            )
            out.append(attrs.evolve(q, after=self._cursor(rng, q, rows)))
        return out

    def test_query_filters_and_orders_match_the_reference(self, store: Store) -> None:
        """Every filter, every order both ways, with cursors and limits: what ``matches`` and ``order`` give."""
        rows = self._query_rows(store)
        shared = T0 + dt.timedelta(days=3, hours=5)
        york = ZoneInfo("America/New_York")
        first_0145 = dt.datetime(2024, 11, 3, 1, 45, tzinfo=york, fold=0)
        queries = [
            Query(),
            Query(states=frozenset()),
            Query(states=OPEN_STATES),
            Query(unit="u1"),
            Query(unit="U1"),
            Query(unit="r1"),
            Query(unit="nobody"),
            Query(lead_unit="u1"),
            Query(lead_unit="u1 "),
            Query(co_unit="u2"),
            Query(recommending_unit="u2"),
            Query(proposer_account="wx_a"),
            Query(proposer_account="WX_A"),
            Query(proposer_account="wx_a "),
            Query(received_by="information_officer:io-1"),
            Query(received_after=shared),
            Query(received_before=shared),
            Query(received_after=shared, received_before=shared + dt.timedelta(microseconds=1)),
            Query(provisional=True),
            Query(provisional=False),
            Query(reported_upward=True),
            Query(reported_upward=False),
            Query(forwarded_to_city=True),
            Query(forwarded_to_city=False),
            Query(area="a1", limit=5),
            Query(campaign="c1"),
            Query(topic="t2"),
            Query(after_id="Z9"),
            Query(after_id="_u", limit=3),
            Query(after_id="b2"),
            Query(due_before=shared),
            Query(due_after=shared),
            Query(due_after=shared, due_before=shared + dt.timedelta(microseconds=1)),
            Query(states=OPEN_STATES, due_before=T0 + dt.timedelta(days=4), limit=10),
            Query(overdue_unflagged=True),
            Query(due_before=first_0145),  # fold-2 (05:30Z) only: fold-1 is 06:30Z
            Query(due_after=first_0145),  # fold-1, not fold-2
            Query(due_before=first_0145.replace(fold=1)),  # both: 06:45Z
            Query(due_before=shared + dt.timedelta(microseconds=1), overdue_unflagged=True),
            Query(states=OPEN_STATES, due_before=T0 + dt.timedelta(days=4), limit=10, overdue_unflagged=True),
            *(Query(order=o, descending=d) for o in Order for d in (False, True)),
            *(Query(order=o, descending=d, limit=6, area="a1") for o in Order for d in (False, True)),
        ]
        queries.extend(self._random_queries(rows, 150, 7))
        flagged = [r for r in rows if r.overdue_flagged_at is not None and r.overdue_flagged_at == r.due_at]
        assert flagged and len(flagged) < len(rows)  # the unflagged filter has something to leave out, and to keep
        for q in queries:
            expected = order(q, [r for r in rows if matches(q, r)])
            got = store.query(q)
            assert [r.id for r in got] == [r.id for r in expected], q
            for g, e in zip(got, expected, strict=True):
                assert_same(g, e, f"{q}: {e.id}")  # datetimes as instants (a DST fold is never == across zones)
            unpaged = q.unpaged()
            assert store.count(q) == len([r for r in rows if matches(unpaged, r)]), q

    def test_rows_without_a_sort_value_are_left_out_of_that_order(self, store: Store) -> None:
        """Due order lists only rows with a due time; registration order only registered rows."""
        self.commit(store, create(make_suggestion("ord-none")))
        self.commit(store, create(make_suggestion("ord-due", due_at=T0 + dt.timedelta(days=1))))
        self.commit(store, create(make_suggestion("ord-reg", registration_number="R-1")))
        assert [r.id for r in store.query(Query(order=Order.DUE))] == ["ord-due"]
        assert [r.id for r in store.query(Query(order=Order.DUE, descending=True))] == ["ord-due"]
        assert [r.id for r in store.query(Query(order=Order.REGISTRATION))] == ["ord-reg"]
        assert store.count(Query(order=Order.DUE)) == 1 and store.count(Query(order=Order.REGISTRATION)) == 1
        assert [r.id for r in store.query(Query(order=Order.RECEIVED))] == ["ord-due", "ord-none", "ord-reg"]
        assert store.count(Query()) == 3

    def _page_through(self, store: Store, q: Query, size: int, between: Any = None) -> list[Suggestion]:
        seen: list[Suggestion] = []
        query = attrs.evolve(q, limit=size)
        for _ in range(1000):
            page = store.query(query)
            assert len(page) <= size
            seen.extend(page)
            if len(page) < size:
                return seen
            query = attrs.evolve(query, after=query.cursor_of(page[-1]))
            if between is not None:
                between(len(seen))
        raise AssertionError("paging did not end")

    def test_commits_read_in_a_transaction_keep_unit_queries_right(self, store: Store) -> None:
        """A commit after a read in its transaction may write only the unit links that changed: queries agree."""
        rows = self._query_rows(store, self.needs(store, TransactingStore))
        for unit in ("u1", "u2", "u3", "u4", "U1", "r1"):
            for o in Order:
                for q in (Query(unit=unit, order=o), Query(lead_unit=unit, order=o), Query(co_unit=unit, order=o),
                          Query(recommending_unit=unit, order=o)):
                    expected = [r.id for r in order(q, [r for r in rows if matches(q, r)])]
                    assert [r.id for r in store.query(q)] == expected, q

    def test_a_transaction_commits_its_reads_and_writes_together(self, store: Store) -> None:
        transacting = self.needs(store, TransactingStore)
        a = create(make_suggestion("tx-a", lead_unit="u1"), notify=["office"])
        self.commit(store, a)
        moved = advance(a.suggestion, lead_unit="u2", co_units=("u3",), notify=["unit:u2"])

        def fails() -> None:
            store.load("tx-a")
            self.commit(store, moved)
            raise RuntimeError("after the commit")

        with pytest.raises(RuntimeError):
            transacting.transaction(fails)
        assert store.load("tx-a") == a.suggestion, "a transaction that raised kept its commit"
        assert [r.id for r in store.query(Query(unit="u1"))] == ["tx-a"]
        stale = advance(attrs.evolve(a.suggestion, version=3))

        def swallows() -> None:
            self.commit(store, moved)
            with pytest.raises(ConcurrencyConflict):
                store.commit(stale)

        with pytest.raises(ConcurrencyConflict):
            transacting.transaction(swallows)
        assert store.load("tx-a") == a.suggestion, "a transaction whose commit failed kept another"

        def works() -> Event:
            assert store.load("tx-a") == a.suggestion
            return self.commit(store, moved)

        assert transacting.transaction(works).seq == 2
        assert store.load("tx-a") == moved.suggestion
        assert [r.id for r in store.query(Query(unit="u1"))] == []
        assert [r.id for r in store.query(Query(co_unit="u3"))] == ["tx-a"]
        assert [m.recipient for m in self.drain(store)] == ["office", "unit:u2"]
        if BatchingStore in self.capabilities:  # inside a batch it joins the batch
            with self.needs(store, BatchingStore).batch():
                last = advance(moved.suggestion, co_units=())
                transacting.transaction(lambda: self.commit(store, last))
                assert store.load("tx-a") == last.suggestion
            assert [r.id for r in store.query(Query(co_unit="u3"))] == []

    def test_cursor_paging_gives_every_row_once_in_order(self, store: Store) -> None:
        rows = self._query_rows(store)
        filters = [Query(), Query(area="a1"), Query(unit="u1"), Query(received_before=T0, provisional=False)]
        for base in filters:
            for o in Order:
                for descending in (False, True):
                    q = attrs.evolve(base, order=o, descending=descending)
                    expected = [r.id for r in order(q, [r for r in rows if matches(q, r)])]
                    for size in (1, 5):
                        assert [r.id for r in self._page_through(store, q, size)] == expected, (q, size)
        # after_id pages in id order too
        seen: list[str] = []
        after: str | None = None
        while True:
            page = store.query(Query(after_id=after, limit=7))
            seen.extend(r.id for r in page)
            if len(page) < 7:
                break
            after = page[-1].id
        assert seen == sorted(r.id for r in rows)

    def test_cursor_paging_is_stable_while_rows_are_written(self, store: Store) -> None:
        """Between pages rows are inserted, updated in place and moved: a row whose sort value stayed is seen once.

        Every row seen comes in the query's order, nothing is seen twice unless its sort
        value changed, and every row that matched throughout with an unchanged sort
        value is seen exactly once.
        """
        rng = random.Random(5)

        def new_row(sid: str) -> Suggestion:
            return make_suggestion(sid, at=(T0 - dt.timedelta(minutes=rng.randrange(40_000))).astimezone(
                                       rng.choice(ODD_ZONES)),
                                   due_at=None if rng.random() < 0.2 else T0 + dt.timedelta(
                                       minutes=rng.randrange(-20_000, 20_000)),
                                   registration_number=None if rng.random() < 0.2 else f"JY-{rng.randrange(1000):03d}"
                                                                                       f"-{sid}")

        rows: dict[str, Suggestion] = {}
        for n in range(24):
            rows[f"st{n:02d}"] = new_row(f"st{n:02d}")
            self.commit(store, create(rows[f"st{n:02d}"]))
        for o in Order:
            for descending in (False, True):
                q = Query(order=o, descending=descending)
                moved: set[str] = set()

                def write(seen: int, q: Query = q, moved: set[str] = moved) -> None:
                    if seen > 24:
                        return
                    for _ in range(2):  # inserts with sort values anywhere
                        sid = f"new-{q.order.value}-{int(q.descending)}-{seen}-{rng.randrange(10**6)}"
                        rows[sid] = new_row(sid)
                        self.commit(store, create(rows[sid]))
                    for sid in rng.sample(sorted(rows), 2):  # updates that keep the sort value
                        change = advance(store.load(sid), reply=f"update {seen}")
                        self.commit(store, change)
                        rows[sid] = change.suggestion
                    sid = rng.choice(sorted(rows))  # and one that moves it, where the order has a value to move
                    if q.order is Order.DUE:
                        change = advance(store.load(sid), due_at=T0 + dt.timedelta(minutes=rng.randrange(-9999, 9999)))
                        moved.add(sid)
                    elif q.order is Order.REGISTRATION:
                        change = advance(store.load(sid), registration_number=f"JY-{rng.randrange(1000):03d}-{sid}m")
                        moved.add(sid)
                    else:  # nothing changes a row's id or time of receipt
                        change = advance(store.load(sid), reply=f"update {seen}")
                    self.commit(store, change)
                    rows[sid] = change.suggestion

                before = {sid: sort_key(o, r) for sid, r in rows.items()}
                seen = self._page_through(store, q, 4, write)
                keys = [(sort_key(o, r), r.id) for r in seen]
                assert keys == sorted(keys, reverse=descending), (o, descending)
                ids = [r.id for r in seen]
                twice = {sid for sid in ids if ids.count(sid) > 1}
                assert twice <= moved, (o, descending, twice)
                steady = {sid for sid, value in before.items() if value is not None and sid not in moved
                          and sort_key(o, rows[sid]) == value}
                missing = steady - set(ids)
                assert not missing, (o, descending, sorted(missing))

    def test_count_is_the_length_of_the_unpaged_query(self, store: Store) -> None:
        rows = self._query_rows(store)
        for q in self._random_queries(rows, 60, 11):
            assert store.count(q) == len(store.query(q.unpaged())), q

    def test_overdue_order_and_limit(self, store: Store) -> None:
        """The supervision query: open, due before now, by due time then id, cut at the limit."""
        now = T0 + dt.timedelta(days=20)
        rows: list[Suggestion] = []
        for n in range(30):
            due = T0 + dt.timedelta(days=n % 7, hours=n % 3) if n % 5 else None
            state = State.RATED if n % 11 == 0 else State.TRANSFERRED
            s = make_suggestion(f"od{29 - n:02d}", state=state, due_at=due, lead_unit=f"u{n % 2}")
            self.commit(store, create(s))
            rows.append(s)
        expected = sorted(
            (r for r in rows if r.state in OPEN_STATES and r.due_at is not None and r.due_at < now),
            key=lambda r: (r.due_at, r.id),
        )
        overdue = Query(states=OPEN_STATES, due_before=now, order=Order.DUE, limit=10)
        assert [r.id for r in store.query(overdue)] == [r.id for r in expected[:10]]
        assert [r.id for r in store.query(attrs.evolve(overdue, limit=None))] == [r.id for r in expected]
        unit0 = [r.id for r in expected if r.lead_unit == "u0"][:4]
        assert [r.id for r in store.query(attrs.evolve(overdue, unit="u0", limit=4))] == unit0
        # Flow.overdue is this query, for whoever asks: the office sees all, a unit its own
        flow = self.flow(store, FakeClock(now))
        assert [r.id for r in flow.overdue(OFFICE_ACTOR, limit=10)] == [r.id for r in expected[:10]]
        assert [r.id for r in flow.overdue(unit_actor("u0"), limit=4)] == unit0

    def test_due_order_holds_between_commits_to_one_due_time(self, store: Store) -> None:
        """Queries between commits that add to and take from one shared due time stay in id order."""
        shared = T0 + dt.timedelta(days=2)
        later = T0 + dt.timedelta(days=9)
        now = T0 + dt.timedelta(days=5)
        overdue = Query(due_before=now)
        both = Query(due_before=later + dt.timedelta(days=1))  # the shared and the later due time
        # a dozen ids, committed out of order: a store that forgot to sort would show it
        others = ["dq-m", "dq-k", "dq-t", "dq-e", "dq-r", "dq-g", "dq-p", "dq-b", "dq-w", "dq-h", "dq-n"]
        rows: dict[str, Suggestion] = {}
        for sid in ["dq-c", *others]:
            rows[sid] = make_suggestion(sid, state=State.TRANSFERRED, due_at=shared)
            self.commit(store, create(rows[sid]))
        assert [r.id for r in store.query(overdue)] == sorted(["dq-c", *others])
        rows["dq-a"] = make_suggestion("dq-a", state=State.TRANSFERRED, due_at=shared)
        self.commit(store, create(rows["dq-a"]))  # joins the due time the query just read
        assert [r.id for r in store.query(overdue)] == sorted(["dq-a", "dq-c", *others])
        moved = advance(rows["dq-c"], due_at=later)  # leaves it, for a due time a wider query reads too
        self.commit(store, moved)
        assert [r.id for r in store.query(overdue)] == sorted(["dq-a", *others])
        assert [r.id for r in store.query(attrs.evolve(both, order=Order.DUE))] == [*sorted(["dq-a", *others]),
                                                                                     "dq-c"]
        assert [r.id for r in store.query(Query(due_after=now))] == ["dq-c"]
        back = advance(moved.suggestion, due_at=shared)  # and comes back
        self.commit(store, back)
        assert [r.id for r in store.query(attrs.evolve(both, order=Order.DUE))] == sorted(["dq-a", "dq-c", *others])
        for sid in ["dq-a", *others]:  # all but one leave: the due time is still read right
            self.commit(store, advance(store.load(sid), due_at=None))
        assert [r.id for r in store.query(overdue)] == ["dq-c"]
        self.commit(store, advance(back.suggestion, due_at=None))
        assert store.query(overdue) == []
        rows["dq-z"] = make_suggestion("dq-z", state=State.TRANSFERRED, due_at=shared)
        self.commit(store, create(rows["dq-z"]))  # a new one at the due time that emptied
        assert [r.id for r in store.query(overdue)] == ["dq-z"]

    def test_unit_query_follows_unit_changes(self, store: Store) -> None:
        def units_of(unit: str) -> list[str]:
            return [r.id for r in store.query(Query(unit=unit))]

        first = create(make_suggestion("units-1", recommending_unit="r1"))
        self.commit(store, first)
        self.commit(store, create(make_suggestion("units-2", lead_unit="b")))
        assert units_of("r1") == ["units-1"] and units_of("b") == ["units-2"]
        moved = advance(first.suggestion, kind="transfer", lead_unit="a", co_units=("b", "c"))
        self.commit(store, moved)
        assert (units_of("a"), units_of("b"), units_of("c")) == (["units-1"], ["units-1", "units-2"], ["units-1"])
        assert [r.id for r in store.query(Query(co_unit="b"))] == ["units-1"]
        assert [r.id for r in store.query(Query(lead_unit="b"))] == ["units-2"]
        again = advance(moved.suggestion, kind="transfer", lead_unit="d", co_units=("b",))
        self.commit(store, again)
        assert (units_of("a"), units_of("c"), units_of("d")) == ([], [], ["units-1"])
        assert units_of("r1") == ["units-1"]
        # a change whose event does not mention the units still moves them
        quiet = advance(again.suggestion, kind="edit", recorded={}, co_units=(), recommending_unit="r2")
        self.commit(store, quiet)
        assert (units_of("b"), units_of("r1"), units_of("r2"), units_of("d")) == (
            ["units-2"], [], ["units-1"], ["units-1"])
        assert [r.id for r in store.query(Query(recommending_unit="r2"))] == ["units-1"]
        # and one that says the units changed when they did not
        loud = advance(quiet.suggestion, kind="transfer", recorded={"lead_unit": "d"}, reply="x")
        self.commit(store, loud)
        assert units_of("d") == ["units-1"] and store.load("units-1") == loud.suggestion

    def test_flow_lists_what_each_actor_may_see_page_by_page(self, store: Store) -> None:
        """``Flow.list_suggestions`` on this store: a unit's own rows, a proposer's own, every page once."""
        clock = FakeClock(T0)
        flow = self.flow(store, clock)
        mine: list[str] = []
        for n in range(9):
            s = flow.receive(self.draft(recommending_unit=None,
                                        proposer=Proposer(name="张三", account=PROPOSER_ACCOUNT if n % 3 else "wx_o")),
                             OFFICE_ACTOR)
            if n % 3:
                mine.append(s.id)
            flow.register(s.id, OFFICE_ACTOR)
            if n % 2:
                flow.transfer(s.id, OFFICE_ACTOR, lead_unit=LEAD_UNIT if n % 4 == 1 else OTHER_UNIT,
                              co_units=(CO_UNIT,) if n == 3 else ())
            clock.advance(minutes=7)

        def listed(actor: Actor, **kwargs: Any) -> list[str]:
            ids: list[str] = []
            cursor: str | None = None
            for _ in range(50):
                page = flow.list_suggestions(actor, limit=2, cursor=cursor, with_total=True, **kwargs)
                ids.extend(s.id for s in page.items)
                assert page.total == len(ids) or page.next_cursor is not None
                if page.next_cursor is None:
                    return ids
                cursor = page.next_cursor
            raise AssertionError("listing did not end")

        every = [s.id for s in store.query(Query(order=Order.RECEIVED))]
        assert listed(OFFICE_ACTOR) == every
        assert listed(OFFICE_ACTOR, descending=True) == every[::-1]
        lead = [s.id for s in store.query(Query(order=Order.RECEIVED, unit=LEAD_UNIT))]
        assert lead and listed(unit_actor(LEAD_UNIT)) == lead
        assert listed(unit_actor(CO_UNIT)) == [s.id for s in store.query(Query(order=Order.RECEIVED, unit=CO_UNIT))]
        assert listed(PROPOSER_ACTOR) == mine
        assert listed(OFFICE_ACTOR, order=Order.REGISTRATION) == sorted(
            every, key=lambda sid: (store.load(sid).registration_number or "", sid))

    # --- outbox ------------------------------------------------------------------------------------
    def test_outbox_claims_oldest_first_under_a_lease(self, store: Store) -> None:
        a = create(make_suggestion("ob-1"), notify=["office", "proposer:ob-1"])
        b = create(make_suggestion("ob-2"), notify=["unit:u1"])
        c = advance(a.suggestion, kind="register", state=State.REGISTERED, notify=["proposer:ob-1"])
        for change in (a, b, c):
            self.commit(store, change)
        sent = [*a.messages, *b.messages, *c.messages]
        lease = dt.timedelta(minutes=10)

        first = store.claim(2, T0, lease)
        rest = store.claim(10, T0, lease)
        claimed = first + rest
        assert len(first) == 2 and len(rest) == 2
        ids = [m.id for m in claimed if isinstance(m.id, int)]
        assert len(ids) == 4 and ids == sorted(ids) and len(set(ids)) == 4
        for got, want in zip(claimed, sent, strict=True):
            assert got == attrs.evolve(want, id=got.id, attempts=1)
            assert got.sent_at is None
            assert_same(got.created_at, want.created_at, "created_at")

        assert store.claim(10, T0 + lease - dt.timedelta(microseconds=1), lease) == []  # still leased
        again = store.claim(10, T0 + lease, lease)  # the lease ran out: delivered at least once
        assert [m.id for m in again] == ids and [m.attempts for m in again] == [2, 2, 2, 2]

        store.mark_sent([ids[0], ids[2], 10**12], T0 + lease)
        later = store.claim(10, T0 + 3 * lease, lease)
        assert [m.id for m in later] == [ids[1], ids[3]] and [m.attempts for m in later] == [3, 3]
        store.mark_sent([ids[1], ids[3]], T0 + 3 * lease)
        store.mark_sent([ids[1]], T0 + 4 * lease)  # twice is fine
        assert store.claim(10, _FAR_FUTURE, lease) == []

        d = advance(c.suggestion, kind="transfer", notify=["unit:u9"])
        self.commit(store, d)
        [newest] = store.claim(10, T0, lease)
        assert isinstance(newest.id, int) and newest.id > max(ids) and newest.recipient == "unit:u9"

    def test_outbox_claim_is_exclusive_across_threads(self, store: Store) -> None:
        for n in range(15):
            self.commit(store, create(make_suggestion(f"ex-{n:02d}"),
                                      notify=["office", "proposer", "unit:u1", "unit:u2"]))
        total = 60
        lease = dt.timedelta(hours=1)

        def relay(i: int) -> list[int]:
            got: list[int] = []
            while len(got) <= total:  # more than every message: some were claimed twice, stop
                batch = store.claim(4, T0, lease)
                if not batch:
                    break
                got.extend(m.id for m in batch if m.id is not None)
            return got

        results = run_threads(self.threads, relay)
        claimed: list[int] = []
        for r in results:
            assert isinstance(r, list), repr(r)
            claimed.extend(r)
        assert len(claimed) == len(set(claimed)) == total, "a message was claimed twice while leased"
        assert store.claim(10, T0 + lease - dt.timedelta(seconds=1), lease) == []
        # after the lease, unsent messages come back; sent ones never do
        store.mark_sent(claimed[: total // 2], T0)
        back = store.claim(total, T0 + lease, lease)
        assert sorted(m.id for m in back if m.id is not None) == sorted(claimed[total // 2:])
        assert all(m.attempts == 2 for m in back)

    def test_sent_messages_keep_their_time_and_are_never_claimed_again(self, store: Store) -> None:
        """``mark_sent(ids, at)``: ``sent_at`` is ``at`` (the first delivery), and the message stays as a log."""
        self.commit(store, create(make_suggestion("sent-1"), notify=["office", "proposer:sent-1", "unit:u1"]))
        lease = dt.timedelta(minutes=5)
        claimed = store.claim(10, T0, lease)
        ids = [m.id for m in claimed if m.id is not None]
        at = dt.datetime(2024, 8, 21, 1, 2, 3, 456_789, tzinfo=ODD_ZONES[0])
        store.mark_sent(ids[:2], at)
        store.mark_sent(ids[:1], at + dt.timedelta(hours=1))  # a second report does not move the first
        for now in (T0 + lease, T0 + dt.timedelta(days=400), _FAR_FUTURE):  # each time the lease ran out
            assert [m.id for m in store.claim(10, now, lease)] == ids[2:]
        if HistoryScanner in self.capabilities:
            [h] = self.needs(store, HistoryScanner).scan_histories(None, 10)
            by_id = {m.id: m for m in h.messages}
            assert sorted(by_id) == sorted(ids)
            for mid in ids[:2]:
                assert by_id[mid].sent_at is not None
                assert_same(by_id[mid].sent_at, at, f"message {mid}.sent_at")
            assert by_id[ids[2]].sent_at is None

    def test_outbox_arguments_are_checked(self, store: Store) -> None:
        """Bad ``claim`` and ``mark_sent`` arguments are a ValidationError, and change nothing."""
        self.commit(store, create(make_suggestion("arg-1"), notify=["office"]))
        naive = dt.datetime(2024, 8, 21, 9)
        bad_claims: list[tuple[Any, Any, Any]] = [
            (10, naive, dt.timedelta(minutes=1)),
            (10, T0, dt.timedelta(0)),
            (10, T0, -dt.timedelta(minutes=1)),
            (10, T0, 60),
            ("10", T0, dt.timedelta(minutes=1)),
            (-1, T0, dt.timedelta(minutes=1)),
            (True, T0, dt.timedelta(minutes=1)),
            (10**30, T0, dt.timedelta(minutes=1)),
        ]
        for limit, now, lease in bad_claims:
            with pytest.raises(ValidationError):
                store.claim(limit, now, lease)
        bad_marks: list[tuple[Any, Any]] = [([1], naive), ([1], None), ("12", T0), ([1.5], T0), ([True], T0),
                                            (None, T0)]
        for ids, at in bad_marks:
            with pytest.raises(ValidationError):
                store.mark_sent(ids, at)
        [m] = store.claim(10, T0, dt.timedelta(minutes=1))
        assert m.attempts == 1 and m.sent_at is None

    def test_outbox_pending_counts_the_messages_not_yet_sent(self, store: Store) -> None:
        backlog = self.needs(store, OutboxBacklog)
        assert backlog.outbox_pending() == 0
        self.commit(store, create(make_suggestion("pend-1"), notify=["office", "proposer:pend-1", "unit:u1"]))
        assert backlog.outbox_pending() == 3
        claimed = store.claim(2, T0, dt.timedelta(minutes=1))
        assert backlog.outbox_pending() == 3  # claimed is not sent
        store.mark_sent([m.id for m in claimed if m.id is not None], T0)
        assert backlog.outbox_pending() == 1
        with pytest.raises(DuplicateSuggestion):
            store.commit(create(make_suggestion("pend-1"), notify=["office"]))
        assert backlog.outbox_pending() == 1

    # --- scanning --------------------------------------------------------------------------------
    def test_scan_histories_pages_in_id_order(self, store: Store) -> None:
        """Every suggestion once, in id order (by code point), with its row, its events and all its messages."""
        scanner = self.needs(store, HistoryScanner)
        ids = ["b", "A", "a", "_", "b ", "b-", "B", "中", "aa"]
        for sid in ids:
            change = create(make_suggestion(sid), notify=["office", f"proposer:{sid}"])
            self.commit(store, change)
            self.commit(store, advance(change.suggestion, kind="register", notify=["unit:u1"]))
        messages = self.drain(store)
        store.mark_sent([m.id for m in messages[::2] if m.id is not None], T0)
        for size in (1, 2, 4, 100):
            got = []
            after: str | None = None
            while True:
                page = scanner.scan_histories(after, size)
                assert len(page) <= size
                got.extend(page)
                if len(page) < size:
                    break
                after = page[-1].suggestion_id
            assert [h.suggestion_id for h in got] == sorted(ids), size
            for h in got:
                assert h.problem is None
                assert h.row is not None
                assert_same_suggestion(h.row, store.load(h.suggestion_id))
                assert list(h.events) == store.history(h.suggestion_id)
                assert sorted(m.version for m in h.messages) == [1, 1, 2]
                assert {m.recipient for m in h.messages} == {"office", f"proposer:{h.suggestion_id}", "unit:u1"}
                assert all(m.suggestion_id == h.suggestion_id for m in h.messages)
        sent = {m.id for m in messages[::2]}
        for h in scanner.scan_histories(None, 100):
            for m in h.messages:
                assert (m.sent_at is not None) == (m.id in sent)
        assert scanner.scan_histories("中", 10) == []
        assert [h.suggestion_id for h in scanner.scan_histories("b", 2)] == ["b ", "b-"]
        assert scanner.scan_histories(None, 0) == []
        assert scanner.last_seq() == 2 * len(ids)
        # a suggestion whose events exist but whose row is gone cannot be made through the
        # store's public API: the SQL tamper tests delete a row and check scan_histories there

    def test_last_seq_follows_every_commit(self, store: Store) -> None:
        scanner = self.needs(store, HistoryScanner)
        assert scanner.last_seq() == 0
        flow = self.flow(store)
        s = flow.receive(self.draft(), OFFICE_ACTOR)
        assert scanner.last_seq() == 1
        flow.register(s.id, OFFICE_ACTOR)
        with pytest.raises(PermissionDenied):
            flow.register(s.id, PROPOSER_ACTOR)
        assert scanner.last_seq() == 2
        assert [e.seq for e in store.history(s.id)] == [1, 2]

    # --- named values ------------------------------------------------------------------------------
    def test_meta_values_round_trip(self, store: Store) -> None:
        meta = self.needs(store, MetadataStore)
        assert meta.get_meta("simulation") is None
        meta.set_meta("simulation", '{"seed": 1}')
        meta.set_meta("中文名", "值 ✅" + "长" * 5000)
        assert meta.get_meta("simulation") == '{"seed": 1}'
        meta.set_meta("simulation", '{"seed": 2}')
        assert meta.get_meta("simulation") == '{"seed": 2}'
        assert meta.get_meta("中文名") == "值 ✅" + "长" * 5000
        meta.set_meta("empty", "")
        assert meta.get_meta("empty") == ""
        for bad in ((1, "x"), ("x", None), (None, "x")):
            with pytest.raises(ValidationError):
                meta.set_meta(*bad)

    # --- batches ------------------------------------------------------------------------------------
    def test_batch_commits_are_visible_inside_and_after_the_block(self, store: Store) -> None:
        batching = self.needs(store, BatchingStore)
        a, b = create(make_suggestion("batch-a"), notify=["office"]), create(make_suggestion("batch-b"), key="bk")
        with batching.batch():
            seqs = [self.commit(store, a).seq]
            assert store.load("batch-a") == a.suggestion  # Flow reads what it just wrote, inside the batch
            nxt = advance(a.suggestion, kind="register", state=State.REGISTERED, notify=["unit:u1"])
            seqs.append(self.commit(store, nxt).seq)
            seqs.append(self.commit(store, b).seq)
        assert seqs == [1, 2, 3]
        assert store.load("batch-a") == nxt.suggestion
        assert [e.seq for e in store.history("batch-a")] == [1, 2]
        assert store.load("batch-b") == b.suggestion
        assert store.idempotency(OFFICE_ACTOR.key, "bk") == b.idempotency
        assert [m.recipient for m in self.drain(store)] == ["office", "unit:u1"]
        # a Flow run inside a batch, as a simulation does
        flow = self.flow(store)
        with batching.batch():
            s = flow.receive(self.draft(), OFFICE_ACTOR)
            flow.register(s.id, OFFICE_ACTOR)
        assert [e.kind for e in store.history(s.id)] == ["receive", "register"]
        if HistoryScanner in self.capabilities:
            assert flow.verify_all() == []

    def test_a_failed_commit_in_a_batch_raises_and_keeps_the_others(self, store: Store) -> None:
        batching = self.needs(store, BatchingStore)
        a = create(make_suggestion("bf-a"), notify=["office"], key="bf-1")
        with batching.batch():
            seqs = [self.commit(store, a).seq]
            for bad, error in [(create(make_suggestion("bf-a"), notify=["x"], key="bf-2"), DuplicateSuggestion),
                               (create(make_suggestion("bf-b"), key="bf-1"), IdempotencyKeyReused),
                               (advance(attrs.evolve(a.suggestion, version=3)), ConcurrencyConflict)]:
                with pytest.raises(error):
                    store.commit(bad)
            b = create(make_suggestion("bf-b"), notify=["unit:u1"])
            seqs.append(self.commit(store, b).seq)
            seqs.append(self.commit(store, advance(a.suggestion, reply="答复")).seq)
        assert seqs == [1, 2, 3], "a failed commit inside a batch took a place in the log"
        assert store.load("bf-a").version == 2 and store.load("bf-b") == b.suggestion
        assert store.idempotency(OFFICE_ACTOR.key, "bf-2") is None
        assert [m.recipient for m in self.drain(store)] == ["office", "unit:u1"]
        if HistoryScanner in self.capabilities:
            assert self.needs(store, HistoryScanner).last_seq() == 3

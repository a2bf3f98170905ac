"""The outbox catalogue is what commands really write: every event's notices and messages follow NOTICES."""

from __future__ import annotations

import datetime as dt

from jianyi_flow import (
    SHANGHAI,
    Actor,
    FakeClock,
    Flow,
    MemoryStore,
    Outcome,
    Proposer,
    Rating,
    ReplyForm,
    ResearchMethod,
    Role,
    SuggestionDraft,
)
from jianyi_flow.service.commands import NOTICES, Recipient

OFFICE = Actor("office-1", Role.COLLECTION_OFFICE, unit="zjb")
UNIT = Actor("unit-1", Role.HANDLING_UNIT, unit="u_traffic")
HEAD = Actor("head-1", Role.HANDLING_UNIT_HEAD, unit="u_traffic")
CITIZEN = Actor("wx_li", Role.PROPOSER)


def _lifecycle() -> MemoryStore:
    store = MemoryStore()
    clock = FakeClock(dt.datetime(2024, 9, 2, 9, tzinfo=SHANGHAI))
    flow = Flow(store, clock)
    draft = SuggestionDraft(title="建议", subject="事项", problem="问题", measures="措施", area="a1",
                            proposer=Proposer("李四", account="wx_li"))
    s = flow.receive(draft, CITIZEN)
    flow.register(s.id, OFFICE)
    flow.transfer(s.id, OFFICE, lead_unit="u_other", co_units=["u_env"])
    flow.object_transfer(s.id, Actor("unit-9", Role.HANDLING_UNIT, unit="u_other"), reason="不属本单位职责")
    flow.accept_objection(s.id, OFFICE)
    flow.transfer(s.id, OFFICE, lead_unit="u_traffic")
    flow.research(s.id, UNIT, findings="属实", method=ResearchMethod.FORUM)
    flow.request_extension(s.id, UNIT, days=10, reason="需征求意见")
    flow.approve_extension(s.id, HEAD)
    flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED)
    flow.reply(s.id, UNIT, text="已采纳", form=ReplyForm.WRITTEN)
    flow.rate(s.id, CITIZEN, rating=Rating.DISSATISFIED)
    flow.reopen(s.id, OFFICE, reason="建议人不满意")
    flow.report_upward(s.id, OFFICE, form="excerpt")
    flow.forward_to_city(s.id, OFFICE)
    clock.advance(days=200)
    flow.tick()
    return store


def test_every_message_is_announced_by_its_event_and_listed_in_the_catalogue() -> None:
    store = _lifecycle()
    (sid,) = {m.suggestion_id for m in store.claim(1000, dt.datetime(2030, 1, 1, tzinfo=SHANGHAI),
                                                   dt.timedelta(minutes=1))}
    events = store.history(sid)
    messages = store.scan_histories(None, 10)[0].messages
    kinds = {e.kind for e in events if e.notices}
    assert kinds <= set(NOTICES), kinds - set(NOTICES)
    assert {"receive", "transfer", "accept_objection", "approve_extension", "rate", "flag_overdue"} <= kinds
    for e in events:
        sent = sorted(m.recipient for m in messages if m.version == e.version)
        assert sorted(e.notices) == sent, e.kind
        assert all(m.topic == e.kind and m.payload == {"state": e.to_state.value}
                   for m in messages if m.version == e.version)
        if e.kind not in NOTICES:
            assert e.notices == ()
    transfer = next(e for e in events if e.kind == "transfer")
    assert transfer.notices == ("unit:u_other", "unit:u_env")
    accepted = next(e for e in events if e.kind == "accept_objection")
    assert accepted.notices == ("unit:u_other", "office")
    approved = next(e for e in events if e.kind == "approve_extension")
    assert approved.notices == (f"proposer:{sid}", "unit:u_traffic")


def test_every_recipient_kind_is_used_by_some_command() -> None:
    used = {r for notice in NOTICES.values() for r in notice.recipients}
    assert used == set(Recipient)

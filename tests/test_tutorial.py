"""docs/tutorial.md, run: the portal sequence works with the campaign and permission guards on."""

from __future__ import annotations

import datetime as dt

from jianyi_flow import (
    SHANGHAI,
    Actor,
    Channel,
    FakeClock,
    MemoryStore,
    Proposer,
    ProposerKind,
    Role,
    State,
    SuggestionDraft,
)
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.service.campaign_flow import make_flow
from jianyi_flow.service.permissions import PermissionGuard, PermissionTable, view_for


def test_the_tutorial_sequence_runs_under_the_guards() -> None:
    campaign = yongchuan_2024()
    store = MemoryStore()
    clock = FakeClock(dt.datetime(2024, 9, 2, 9, 30, tzinfo=SHANGHAI))
    flow = make_flow(campaign, store, clock, guards=[PermissionGuard(PermissionTable.default(), store)])
    draft = SuggestionDraft(
        title="关于优化公交线路的建议", subject="优化公交线路", problem="高峰班次少", measures="增开高峰班次",
        area="A4", topic="T15", channel=Channel.ONLINE_PORTAL,
        proposer=Proposer("李明", kind=ProposerKind.CITIZEN, phone="13800000000", confidential=True,
                          account="user-1"),
    )
    citizen = Actor("user-1", Role.PROPOSER)
    s = flow.receive(draft, citizen, idempotency_key="req-1")
    assert flow.receive(draft, citizen, idempotency_key="req-1") == s
    office = Actor("clerk-7", Role.COLLECTION_OFFICE, unit="XFB")
    s = flow.register(s.id, office)
    s = flow.transfer(s.id, office, lead_unit="JTJ", co_units=["CGJ"])
    unit = Actor("staff-3", Role.HANDLING_UNIT, unit="JTJ")
    shown = view_for(unit, s)
    assert shown.proposer.phone != "13800000000" and shown.proposer.name != "李明"
    s = flow.research(s.id, unit, findings="实地调研")
    s = flow.decide(s.id, unit, outcome="partially_adopted", adopted_part="增开高峰班次")
    s = flow.reply(s.id, unit, text="感谢您的建议")
    s = flow.rate(s.id, citizen, rating="dissatisfied", comment="仍不满意")
    s = flow.reopen(s.id, office, reason="建议人不满意")
    assert s.state is State.TRANSFERRED
    assert flow.verify_history(s.id) == []

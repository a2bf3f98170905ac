"""One suggestion through its whole lifecycle, then its history.

Run: ``python examples/lifecycle.py``.  Uses the in-memory store and a fake clock, so it
prints the same thing every time.
"""

from __future__ import annotations

import datetime as dt

from jianyi_flow import (
    SHANGHAI,
    Actor,
    Channel,
    FakeClock,
    Flow,
    MemoryStore,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ResearchMethod,
    Role,
    SuggestionDraft,
)


def main() -> None:
    clock = FakeClock(dt.datetime(2024, 9, 2, 9, 30, tzinfo=SHANGHAI))
    ids = iter(["S0001"])
    flow = Flow(MemoryStore(), clock, campaign="YC2024", ids=lambda: next(ids))

    proposer = Actor("p-1001", Role.PROPOSER, name="李明")
    office = Actor("clerk-7", Role.COLLECTION_OFFICE, unit="XFB", name="区征集办")
    unit = Actor("staff-3", Role.HANDLING_UNIT, unit="JTJ", name="区交通运输局")

    draft = SuggestionDraft(
        title="关于优化永川城区公交线路的建议",
        subject="优化城区公交线路",
        problem="新城区至高铁站公交班次少，高峰时段候车时间超过30分钟。",
        measures="增开高峰时段直达班次，并在高铁站设置公交换乘指引。",
        area="A4",
        topic="T15",
        channel=Channel.ONLINE_PORTAL,
        proposer=Proposer("李明", kind=ProposerKind.CITIZEN, phone="13800000000", account="p-1001"),
    )
    s = flow.receive(draft, proposer)
    clock.advance(days=1)
    s = flow.register(s.id, office)
    s = flow.transfer(s.id, office, lead_unit="JTJ", co_units=["CGJ"])
    clock.advance(days=10)
    s = flow.research(s.id, unit, findings="实地调研高峰客流，线路运力不足属实。", method=ResearchMethod.FIELD_VISIT)
    s = flow.decide(
        s.id, unit, outcome=Outcome.PARTIALLY_ADOPTED, adopted_part="增开高峰班次", reason="换乘指引已在建设中"
    )
    clock.advance(days=2)
    s = flow.reply(s.id, unit, text="感谢您的建议，我局已于10月起增开高峰时段班次。", form=ReplyForm.WRITTEN)
    clock.advance(days=3)
    s = flow.rate(s.id, proposer, rating=Rating.SATISFIED)

    print(f"{s.title}  [{s.registration_number}]  (as the proposer sees it)")
    print(f"state: {s.state.value}, version {s.version}, outcome {s.outcome and s.outcome.value}")
    print("history:")
    for e in flow.history(s.id, office):
        local = e.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        came_from = e.from_state.value if e.from_state else "-"
        print(f"  v{e.version} {local} {e.kind:<10} {came_from:>17} -> {e.to_state.value:<17} by {e.actor}")
    problems = flow.verify_history(s.id)
    print("history verified: " + ("ok" if not problems else "; ".join(map(str, problems))))


if __name__ == "__main__":
    main()

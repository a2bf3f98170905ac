"""A small, hand-countable 2024 Yongchuan campaign for the report and render tests.

Thirty suggestions are driven through the guarded :class:`~jianyi_flow.Flow` of the
``yongchuan-2024`` preset (default permissions: every command by the actor the permission
table names) with a :class:`~jianyi_flow.FakeClock`, each to a situation the report must get
right: on time, a late reply, a late research step, an approved extension that saves a step
and a refused one, an overdue open step (research and register), an unrated reply, a
reopen, a misroute objection the office accepts and one it refuses, not accepted,
withdrawn, pending steps, and the summary-phase commands.  Twelve plain suggestions
(``b01``–``b12``) pad the counts uniformly.

Who acts: a proposer files and rates their own suggestion under their portal account
(``p001``…); a suggestion naming a recommending unit is filed by that unit; the collection
office registers, transfers, decides objections, reopens and reports upward; the lead
unit's staff research, decide, reply, object and ask for extensions; the unit's head
approves or refuses them; an evaluator scores and nominates.

The expected numbers are worked out by hand in tests/test_report.py, from the dates below;
the 2024 calendar facts they rely on are noted where used.  :func:`rewrite` copies a store's
log with some events changed and the hash chain re-sealed: the tests use it to mark
deadlines provisional (暂定) and to write a log as earlier versions wrote it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from jianyi_flow import (
    SHANGHAI,
    Actor,
    Channel,
    FakeClock,
    Flow,
    MemoryStore,
    Outcome,
    Proposer,
    Rating,
    ReportForm,
    RewardTier,
    Role,
    State,
    Store,
    SuggestionDraft,
    replay,
)
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.domain.history import seal
from jianyi_flow.domain.model import AdoptionForm, Event, ReplyForm, ResearchMethod
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.service.campaign_flow import make_flow
from jianyi_flow.storage.base import Change, iter_suggestions

NOW = dt.datetime(2024, 12, 20, 10, 0, tzinfo=SHANGHAI)
"""When the report is taken: a Friday in the summary phase."""

OFFICE = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="XFB", name="区征集办")
EVALUATOR = Actor(id="judge-1", role=Role.EVALUATOR, name="评审组")
CONFIDENTIAL_NAME = "李四光"
"""The one confidential proposer (s04): this name must never appear in a masked output."""


class ChosenIds:
    """Suggestion ids a test names in advance, handed to ``Flow(ids=...)``: only the office may pass
    ``suggestion_id`` to ``receive`` itself, and these suggestions are filed by proposers and units."""

    def __init__(self) -> None:
        self.queue: list[str] = []

    def __call__(self) -> str:
        return self.queue.pop(0)


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, 0, tzinfo=SHANGHAI)


def proposer_actor(n: int) -> Actor:
    """The portal account proposer ``n`` acts under (filing, rating, withdrawing their own suggestion)."""
    return Actor(id=f"p{n:03d}", role=Role.PROPOSER)


def unit_actor(unit: str) -> Actor:
    return Actor(id=f"unit-{unit.lower()}", role=Role.HANDLING_UNIT, unit=unit)


def head_actor(unit: str) -> Actor:
    """The head of ``unit``: approves or refuses its extension requests."""
    return Actor(id=f"head-{unit.lower()}", role=Role.HANDLING_UNIT_HEAD, unit=unit)


def recommender_actor(unit: str) -> Actor:
    return Actor(id=f"rec-{unit.lower()}", role=Role.RECOMMENDING_UNIT, unit=unit)


def phone_of(n: int) -> str:
    return f"1391234{n:04d}"


def address_of(n: int) -> str:
    return f"重庆市永川区人民大道{100 + n}号"


@attrs.frozen
class Spec:
    """Who sends suggestion ``n`` where: area, topic, channel, recommending unit."""

    n: int
    area: str
    topic: str | None
    channel: Channel
    recommending_unit: str | None
    received: dt.datetime
    confidential: bool = False
    title: str = ""


@attrs.define
class Built:
    """The built campaign: the flow (and its store and clock), plus what tests look for."""

    campaign: Campaign
    flow: Flow
    store: Store
    clock: FakeClock
    phones: list[str] = attrs.field(factory=list)
    addresses: list[str] = attrs.field(factory=list)
    proposers: dict[str, Actor] = attrs.field(factory=dict)
    """Suggestion id → its proposer's actor."""


class _Driver:
    def __init__(self, variant: bool, store: Store | None, vault: bool = False) -> None:
        self.campaign = yongchuan_2024()
        self.store = store if store is not None else MemoryStore()
        self.clock = FakeClock(at(8, 1))
        self.ids = ChosenIds()
        self.flow = make_flow(self.campaign, self.store, self.clock, ids=self.ids, vault=vault)
        self.built = Built(self.campaign, self.flow, self.store, self.clock)
        self.variant = variant

    def receive(self, spec: Spec, sid: str) -> None:
        self.clock.set(spec.received)
        name = CONFIDENTIAL_NAME if spec.confidential else f"市民{spec.n:02d}"
        phone, address = phone_of(spec.n), address_of(spec.n)
        self.built.phones.append(phone)
        self.built.addresses.append(address)
        problem = f"{spec.title or '相关工作'}存在短板，群众反映较多。"
        if spec.n == 1:
            # a proposer who writes their own number into the text: the masked report scrubs it
            problem += f"如需核实请联系{phone}。"
        if spec.confidential:
            # a confidential proposer who signs the text: the masked report scrubs the name too
            problem += f"建议人：{name}。"
        me = proposer_actor(spec.n)
        self.built.proposers[sid] = me
        draft = SuggestionDraft(
            title=spec.title or f"关于改进{spec.area}相关工作的建议{spec.n:02d}",
            subject=f"{spec.title or '相关工作'}事项",
            problem=problem,
            measures="建议完善政策措施，健全工作机制，提升工作效能。",
            area=spec.area,
            topic=spec.topic,
            # a unit's recommendation is filed on the 推荐表, whatever way the citizen reached the unit
            channel=Channel.RECOMMENDATION_FORM if spec.recommending_unit else spec.channel,
            recommending_unit=spec.recommending_unit,
            proposer=Proposer(name=name, phone=phone, address=address, confidential=spec.confidential,
                              account=me.id),
        )
        # a suggestion naming a recommending unit is filed by that unit (its recommendation);
        # any other by the proposer under their own account
        filer = me if spec.recommending_unit is None else recommender_actor(spec.recommending_unit)
        self.ids.queue.append(sid)
        self.flow.receive(draft, filer)

    def proposer(self, sid: str) -> Actor:
        return self.built.proposers[sid]

    def do(self, when: dt.datetime, command: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.clock.set(when)
        command(*args, **kwargs)

    def handle(self, sid: str, unit: str, *, registered: dt.datetime, transferred: dt.datetime,
               decided: dt.datetime | None = None, outcome: Outcome = Outcome.ADOPTED,
               replied: dt.datetime | None = None, rated: dt.datetime | None = None,
               rating: Rating = Rating.SATISFIED, researched: dt.datetime | None = None,
               method: ResearchMethod = ResearchMethod.FORUM, form: ReplyForm = ReplyForm.WRITTEN,
               reply_text: str = "感谢您的建议，已研究采纳并落实。") -> None:
        """register → transfer → (research) → decide → reply → rate, each at its time (None stops there)."""
        f = self.flow
        self.do(registered, f.register, sid, OFFICE)
        self.do(transferred, f.transfer, sid, OFFICE, lead_unit=unit)
        actor = unit_actor(unit)
        if researched is not None:
            self.do(researched, f.research, sid, actor, findings="实地调研，召开座谈会论证。", method=method)
        if decided is None:
            return
        self.decide(sid, unit, decided, outcome)
        if replied is None:
            return
        self.do(replied, f.reply, sid, actor, text=reply_text, form=form)
        if rated is not None:
            self.do(rated, f.rate, sid, self.proposer(sid), rating=rating)

    def decide(self, sid: str, unit: str, when: dt.datetime, outcome: Outcome) -> None:
        """Decide at ``when``, recording the (required) research first, by written consultation, if not yet done."""
        actor = unit_actor(unit)
        if self.flow.get(sid, OFFICE).state is State.TRANSFERRED:
            self.do(when, self.flow.research, sid, actor, findings="研究论证。",
                    method=ResearchMethod.WRITTEN_CONSULTATION)
        if outcome is Outcome.DECLINED:
            self.do(when, self.flow.decide, sid, actor, outcome=outcome, reason="与现行规划不符，暂不采纳")
        elif outcome is Outcome.PARTIALLY_ADOPTED:
            self.do(when, self.flow.decide, sid, actor, outcome=outcome, adopted_part="采纳其中关于机制建设的部分")
        else:
            self.do(when, self.flow.decide, sid, actor, outcome=outcome)


SPECS: tuple[Spec, ...] = (
    Spec(1, "A1", "T01", Channel.ONLINE_PORTAL, "ZSL", at(8, 5), title="建设永川科技创新服务平台"),
    Spec(2, "A1", "T02", Channel.WECHAT, "ZSL", at(8, 12), title="培育汽车零部件产业集群"),
    Spec(3, "A2", "T06", Channel.EMAIL, "SLL", at(9, 2), title="拓展西部陆海新通道班列"),
    Spec(4, "A3", "T11", Channel.LETTER, "SLL", at(9, 3), confidential=True, title="推行涉企审批一网通办"),
    Spec(5, "A4", "T15", Channel.ON_SITE, "QF", at(9, 10), title="完善老旧小区物业管理"),
    Spec(6, "A5", "T20", Channel.CIRCUIT_VISIT, "QF", at(9, 5), title="发展茶旅融合乡村产业"),
    Spec(7, "A6", "T24", Channel.DOUYIN, "STHJ", at(8, 22), title="推广垃圾分类积分制"),
    Spec(8, "A7", "T29", Channel.PHONE, "STHJ", at(9, 20), title="加密成渝城际公交班次"),
    Spec(9, "A1", "T05", Channel.ONLINE_PORTAL, "JL", at(11, 28), title="建设数字农业示范基地"),
    Spec(10, "A4", "T17", Channel.LETTER, "CS", at(9, 15), title="个人劳动争议诉求"),
    Spec(11, "A3", "T13", Channel.WECHAT, None, at(10, 8), title="盘活闲置国有资产"),
    Spec(12, "A4", "T16", Channel.ON_SITE, "CGJ", at(10, 9), title="数字城管平台接入社区网格"),
    Spec(13, "A2", "T07", Channel.EMAIL, "JL", at(11, 25), title="建设港桥物流园冷链中心"),
    Spec(14, "A6", "T25", Channel.ONLINE_PORTAL, "CS", at(8, 21), title="治理临江河支流黑臭水体"),
    Spec(15, "A1", "T04", Channel.WECHAT, "SLL", at(9, 9), title="建设街道创新创业孵化空间"),
    Spec(16, "A7", "T33", Channel.DOUYIN, "WHLY", at(10, 15), title="打造巴蜀文化旅游精品线路"),
    Spec(17, "A3", "T12", Channel.ONLINE_PORTAL, None, at(11, 20), title="推进数字政务服务改革"),
    Spec(18, "A1", "T03", Channel.PHONE, None, at(11, 1), title="发展高效生态现代农业"),
)


def build(*, variant: bool = False, store: Store | None = None, vault: bool = False) -> Built:
    """Build the campaign on ``store`` (a new MemoryStore by default).

    ``variant=True`` changes one reply text, so exactly one event's content differs.
    ``vault=True`` keeps the proposers' personal data in the store's vault.
    """
    d = _Driver(variant, store, vault)
    f = d.flow
    sid = {s.n: f"s{s.n:02d}" for s in SPECS}
    for spec in SPECS:
        d.receive(spec, sid[spec.n])

    # s01: everything on time, researched on site; summary phase: excerpt, city, evaluation, first-tier
    # reward, adoption into a policy
    d.handle("s01", "FGW", registered=at(8, 6), transferred=at(8, 7), researched=at(8, 20), decided=at(8, 25),
             replied=at(8, 28), rated=at(8, 30), method=ResearchMethod.FIELD_VISIT)
    # s02: on time, basically satisfied; later a typical case
    d.handle("s02", "JXW", registered=at(8, 13), transferred=at(8, 14), decided=at(9, 1), replied=at(9, 3),
             rated=at(9, 5), rating=Rating.BASICALLY_SATISFIED)
    # s03: partially adopted; later reported upward as an original and turned into a mechanism
    d.handle("s03", "SWW", registered=at(9, 3), transferred=at(9, 4), decided=at(9, 20),
             outcome=Outcome.PARTIALLY_ADOPTED, replied=at(9, 23), rated=at(9, 25))
    # s04: declined, dissatisfied, reopened, then adopted and satisfied (two research and reply steps)
    d.handle("s04", "FGW", registered=at(9, 4), transferred=at(9, 5), decided=at(9, 25),
             outcome=Outcome.DECLINED, replied=at(9, 26), rated=at(9, 28), rating=Rating.DISSATISFIED)
    d.do(at(10, 10), f.reopen, "s04", OFFICE, reason="建议人不满意，重新办理")
    d.decide("s04", "FGW", at(10, 20), Outcome.ADOPTED)
    d.do(at(10, 22), f.reply, "s04", unit_actor("FGW"), text="经重新研究，决定采纳。", form=ReplyForm.IN_PERSON)
    d.do(at(10, 25), f.rate, "s04", d.proposer("s04"), rating=Rating.SATISFIED)
    # s05: late reply: decided 9-20, reply due 10-05 → National Day holiday → 10-08; replied 10-15
    d.handle("s05", "CGJ", registered=at(9, 10, 15), transferred=at(9, 11), decided=at(9, 20),
             replied=at(10, 15), rated=at(10, 16))
    # s06: research due 11-05 (9-06 + 60); the unit asks for 20 more days on 11-01, its head approves on
    # 11-04: due 11-25; decided 11-20: on time.  Replied 11-22 by phone, rating window open until 12-22
    # (after NOW): awaiting a rating
    d.handle("s06", "NYNC", registered=at(9, 5, 15), transferred=at(9, 6))
    d.do(at(11, 1), f.request_extension, "s06", unit_actor("NYNC"), days=20, reason="需跨部门会商")
    d.do(at(11, 4), f.approve_extension, "s06", head_actor("NYNC"), note="同意延期")
    d.decide("s06", "NYNC", at(11, 20), Outcome.ADOPTED)
    d.do(at(11, 22), f.reply, "s06", unit_actor("NYNC"), text="已采纳，纳入明年计划。", form=ReplyForm.PHONE)
    # s07: replied 9-12, never rated: the tick at NOW closes it unrated
    d.handle("s07", "STHJ", registered=at(8, 22, 15), transferred=at(8, 23), decided=at(9, 10),
             replied=at(9, 12))
    # s08: research due 11-25 (9-24 + 60 = 11-23, a Saturday); an extension asked on 11-20 is refused on
    # 11-21: still open at NOW, 19 working days overdue
    d.handle("s08", "JTJ", registered=at(9, 23), transferred=at(9, 24))
    d.do(at(11, 20), f.request_extension, "s08", unit_actor("JTJ"), days=10, reason="需补充调研")
    d.do(at(11, 21), f.reject_extension, "s08", head_actor("JTJ"), reason="已逾两月，不予延期")
    # s09: registered, never routed: register due 12-13, 5 working days overdue at NOW
    d.do(at(11, 29), f.register, "s09", OFFICE)
    # s10: not accepted (a personal complaint), within the register step
    d.do(at(9, 18), f.not_accept, "s10", OFFICE, reason="属个人劳动争议，转信访渠道办理")
    # s11: withdrawn by its proposer before routing: the register step is not judged
    d.do(at(10, 9), f.withdraw, "s11", d.proposer("s11"), reason="问题已解决")
    # s12: sent to JTJ, which objects (misrouted) the next day; the office agrees on 10-14 and routes it
    # again to CGJ: research of JTJ not judged (ended before its due time), objection decided on time
    d.handle("s12", "JTJ", registered=at(10, 9, 15), transferred=at(10, 10))
    d.do(at(10, 11), f.object_transfer, "s12", unit_actor("JTJ"), reason="不属本单位职责")
    d.do(at(10, 14, 9), f.accept_objection, "s12", OFFICE, note="核实属区城市管理局职责")
    d.do(at(10, 14), f.transfer, "s12", OFFICE, lead_unit="CGJ")
    d.decide("s12", "CGJ", at(10, 30), Outcome.PARTIALLY_ADOPTED)
    d.do(at(11, 1), f.reply, "s12", unit_actor("CGJ"), text="部分采纳。", form=ReplyForm.ONLINE)
    d.do(at(11, 3), f.rate, "s12", d.proposer("s12"), rating=Rating.BASICALLY_SATISFIED)
    # s13: transferred 11-26; SWW objects on 11-27, the office refuses on 11-28: research due again from
    # 11-28 (2025-01-27), pending
    d.handle("s13", "SWW", registered=at(11, 25, 15), transferred=at(11, 26))
    d.do(at(11, 27), f.object_transfer, "s13", unit_actor("SWW"), reason="建议涉及多部门，应由发改委牵头")
    d.do(at(11, 28), f.reject_objection, "s13", OFFICE, reason="属区商务委职责，请继续办理")
    # s14: research due 10-21 (8-22 + 60); declined 10-28: late research; reply on time; dissatisfied
    d.handle("s14", "STHJ", registered=at(8, 21, 15), transferred=at(8, 22), decided=at(10, 28),
             outcome=Outcome.DECLINED, replied=at(10, 30), rated=at(11, 1), rating=Rating.DISSATISFIED)
    # s15: a street handles a suggestion it recommended
    d.handle("s15", "SLL", registered=at(9, 10), transferred=at(9, 11), decided=at(10, 8), replied=at(10, 10),
             rated=at(10, 11))
    # s16: adopted after a hearing; its reply text is what the variant changes
    d.handle("s16", "WHLY", registered=at(10, 16), transferred=at(10, 16, 15), researched=at(11, 1),
             decided=at(11, 10), replied=at(11, 12), rated=at(11, 14), method=ResearchMethod.HEARING,
             reply_text="感谢建议，线路已纳入年度推介。" + ("（修订）" if variant else ""))
    # s17: researched by experts, decision pending (due 2025-01-20)
    d.handle("s17", "FGW", registered=at(11, 20, 15), transferred=at(11, 21), researched=at(12, 2),
             method=ResearchMethod.EXPERT_REVIEW)
    # s18: declined 12-10, reply due 12-25 (Wednesday): pending, and due within a week of NOW
    d.handle("s18", "JXW", registered=at(11, 1, 15), transferred=at(11, 4), decided=at(12, 10),
             outcome=Outcome.DECLINED)

    # b01..b12: plain and on time, replied by SMS; even numbers adopted, odd declined; no recommending
    # unit, no topic
    for i in range(1, 13):
        received = at(10, 1 + i)
        spec = Spec(100 + i, f"A{(i - 1) % 7 + 1}", None, Channel.ONLINE_PORTAL, None, received)
        bid = f"b{i:02d}"
        d.receive(spec, bid)
        day = dt.timedelta(days=1)
        d.handle(bid, "MZJ", registered=received + day, transferred=received + 2 * day,
                 decided=received + 10 * day, outcome=Outcome.ADOPTED if i % 2 == 0 else Outcome.DECLINED,
                 replied=received + 12 * day, rated=received + 13 * day, form=ReplyForm.SMS)

    # reporting upward and the summary phase (December)
    d.do(at(12, 3), f.report_upward, "s01", OFFICE, form=ReportForm.EXCERPT)
    d.do(at(12, 3), f.report_upward, "s02", OFFICE, form=ReportForm.EXCERPT)
    d.do(at(12, 3), f.report_upward, "s03", OFFICE, form=ReportForm.ORIGINAL)
    d.do(at(12, 3), f.report_upward, "s04", OFFICE, form=ReportForm.EXCERPT)
    d.do(at(12, 4), f.report_upward, "s04", OFFICE, form=ReportForm.ANALYSIS)
    d.do(at(12, 5), f.forward_to_city, "s01", OFFICE)
    d.do(at(12, 6), f.evaluate, "s01", EVALUATOR, quality=8, value=9, effect=7, evaluator="评审组")
    d.do(at(12, 6), f.evaluate, "s02", EVALUATOR, quality=6, value=6, effect=5, evaluator="评审组")
    d.do(at(12, 6), f.evaluate, "s04", EVALUATOR, quality=9, value=9, effect=9, evaluator="评审组")
    d.do(at(12, 9), f.nominate_reward, "s01", EVALUATOR, tier=RewardTier.FIRST)
    d.do(at(12, 9), f.nominate_reward, "s04", EVALUATOR, tier=RewardTier.SPECIAL)
    d.do(at(12, 10), f.record_adoption, "s01", OFFICE, adopted_into="《永川区科技创新服务平台建设实施方案》",
         form=AdoptionForm.POLICY)
    d.do(at(12, 10), f.record_adoption, "s03", OFFICE, adopted_into="区商务委2025年开放通道工作要点",
         form=AdoptionForm.MECHANISM)
    d.do(at(12, 11), f.mark_typical, "s02", OFFICE, note="产业集群培育典型案例")

    d.clock.set(NOW)
    f.tick(NOW)
    return d.built


def rewrite(store: Store, edit: Callable[[list[Event]], Iterable[Event]]) -> MemoryStore:
    """A copy of ``store`` in which each suggestion's history is ``edit(history)``, re-sealed.

    The edited events are renumbered and chained again (``prev_hash``, ``hash``) and every
    row is their replay, so the copy verifies like any store: it is a log some other writer
    could have written, not a corrupted one.
    """
    copy = MemoryStore()
    for row in iter_suggestions(store):
        prev = ""
        events: list[Event] = []
        for version, event in enumerate(edit(store.history(row.id)), start=1):
            sealed = seal(attrs.evolve(event, version=version, prev_hash=prev, hash="", mac=None, seq=None))
            events.append(sealed)
            prev = sealed.hash
        for i, event in enumerate(events):
            new = replay(events[: i + 1])
            assert new is not None
            copy.commit(Change(new, event, i))
    return copy


PROVISIONAL_DEADLINES: frozenset[tuple[str, str]] = frozenset(
    {("s08", "transfer"), ("s13", "reject_objection"), ("s18", "decide")})
"""(suggestion, event kind) whose deadline :func:`provisional` marks: s08's overdue research step,
s13's pending research step and s18's reply step, due within a week of :data:`NOW`."""


def provisional(store: Store, marked: frozenset[tuple[str, str]] = PROVISIONAL_DEADLINES) -> MemoryStore:
    """``store``'s log with the deadlines set by ``marked`` events counted over provisional days (暂定).

    It is the log a Flow on a provisional calendar writes when those deadlines reach a year
    with no published holiday schedule: the event that sets the deadline says
    ``due_provisional``.
    """
    def edit(history: list[Event]) -> list[Event]:
        return [attrs.evolve(e, changes={**e.changes, "due_provisional": True})
                if (e.suggestion_id, e.kind) in marked else e for e in history]

    return rewrite(store, edit)


@attrs.frozen
class TwoVersions:
    """A store written by two flows: ``v1`` (the default workflow and policy) and ``v2`` (a workflow
    with one more command, a 45-day research period)."""

    campaign: Campaign
    store: MemoryStore
    now: dt.datetime
    v1: Flow
    v2: Flow


def two_versions() -> TwoVersions:
    """x1 and x2 received under v1; x1 then transferred under v2; x3 received under v2."""
    from jianyi_flow.domain.deadlines import DEFAULT_POLICY, CalendarDays, Step
    from jianyi_flow.domain.workflow import TRANSITIONS, Workflow

    campaign = yongchuan_2024()
    store = MemoryStore()
    clock = FakeClock(at(9, 2))
    ids = ChosenIds()
    v1 = make_flow(campaign, store, clock, ids=ids)
    v2 = make_flow(campaign, store, clock, ids=ids,
                   workflow=Workflow("suggestion", [*TRANSITIONS, {"trigger": "ask_for_material",
                                                                   "source": State.TRANSFERRED, "dest": None}]),
                   policy=DEFAULT_POLICY.with_step(Step.RESEARCH, CalendarDays(45), "a district's revised rule"))

    def draft(n: int) -> SuggestionDraft:
        return SuggestionDraft(title=f"建议{n}", subject="事项", problem="问题", measures="措施", area="A1",
                               proposer=Proposer(name="王五", account=proposer_actor(n).id))

    for n in (1, 2):
        ids.queue.append(f"x{n}")
        v1.receive(draft(n), proposer_actor(n))
    v1.register("x1", OFFICE)
    clock.set(at(9, 3))
    v2.transfer("x1", OFFICE, lead_unit="FGW")
    ids.queue.append("x3")
    v2.receive(draft(3), proposer_actor(3))
    return TwoVersions(campaign, store, at(9, 4), v1, v2)

"""``CampaignSimulator``: a whole campaign in seconds, on any store, reproducible by seed.

It generates proposers and suggestions (channel mix, areas and topics, recommending units
including some that miss their quota, handling units including slow ones that go overdue,
misrouted transfers, the outcome mix, ratings including dissatisfied → reopen, replies never
rated, extensions) and drives each through :class:`~jianyi_flow.Flow` with a virtual clock
that jumps straight to the next moment something happens — no sleeping, like Temporal's
time-skipping test server.  ``Flow.tick`` runs at the start of every day on the way, so
overdue steps are flagged and unrated replies closed exactly as in production.

Determinism: every random choice comes from one ``random.Random(seed)``, drawn in the order
the agenda is processed, and the agenda is ordered by (time, sequence number).  The same
seed therefore produces the same event log on every store; the campaign report's
``history_digest`` proves it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import heapq
import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import attrs

from .domain.campaign import Campaign, UnitKind
from .domain.clock import SHANGHAI, FakeClock, start_of_local_day
from .domain.model import (
    Actor,
    Channel,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReportForm,
    RewardTier,
    Role,
    State,
    Suggestion,
    SuggestionDraft,
)
from .domain.workflow import HANDLED_STATES
from .errors import ValidationError
from .service.campaign_flow import make_flow
from .service.flow import OPEN_STATES, Flow
from .storage.base import Store

OFFICE_UNIT = "XFB"
"""The unit that runs the collection office (区征集办) in the Yongchuan preset."""

AREA_DEPARTMENTS: Mapping[str, tuple[str, ...]] = {
    "A1": ("FGW", "JXW", "KJJ"),  # 产业发展
    "A2": ("SWW", "FGW"),  # 扩大开放
    "A3": ("FGW", "DSJ", "CZJ"),  # 深化改革
    "A4": ("CGJ", "DSJ", "JTJ", "ZJW"),  # 超大城市治理
    "A5": ("NYNC", "ZJW", "GHZY"),  # 城乡融合
    "A6": ("STHJ", "SLJ", "GHZY"),  # 绿色生态
    "A7": ("FGW", "WHLY", "JTJ"),  # 区域协同
}
"""Which district departments usually handle each area (illustrative configuration)."""

CHANNEL_MIX: Mapping[Channel, float] = {
    Channel.ONLINE_PORTAL: 0.30,
    Channel.WECHAT: 0.22,
    Channel.DOUYIN: 0.05,
    Channel.EMAIL: 0.08,
    Channel.LETTER: 0.10,
    Channel.ON_SITE: 0.10,
    Channel.CIRCUIT_VISIT: 0.10,
    Channel.PHONE: 0.05,
}

PROPOSER_MIX: Mapping[ProposerKind, float] = {
    ProposerKind.CITIZEN: 0.62,
    ProposerKind.INFORMATION_OFFICER: 0.15,
    ProposerKind.PARTY_MEMBER_OR_CADRE: 0.10,
    ProposerKind.PARTY_CONGRESS_DEPUTY: 0.03,
    ProposerKind.PEOPLES_CONGRESS_DEPUTY: 0.06,
    ProposerKind.CPPCC_MEMBER: 0.04,
}

MIDDLE_GENERATION_EVERY = 1000
"""While :meth:`CampaignSimulator.run` freezes the collector's long-lived objects, it collects
the middle generation only every this many young collections (CPython's default is 10)."""


@attrs.frozen
class SimulationConfig:
    """The mix of what happens.  Rates are probabilities per suggestion (or per step)."""

    not_accepted: float = 0.04
    withdrawn: float = 0.02
    misrouted: float = 0.06
    recommended: float = 0.55
    """Share of suggestions that come recommended by a unit (the rest come directly)."""
    quota_missers: float = 0.2
    """Share of units that recommend fewer than their quota."""
    slow_units: float = 0.2
    """Share of handling departments that are slow (research overruns its deadline)."""
    extension_when_slow: float = 0.4
    outcome_mix: Mapping[Outcome, float] = attrs.field(
        factory=lambda: {Outcome.ADOPTED: 0.3, Outcome.PARTIALLY_ADOPTED: 0.3, Outcome.DECLINED: 0.4}
    )
    unrated: float = 0.12
    dissatisfied: float = 0.1
    reopen_when_dissatisfied: float = 0.7
    confidential: float = 0.1
    evaluated: float = 0.15
    """Share of handled suggestions evaluated in the summary phase."""
    tail_days: int = 365
    """How long after the summary phase the handling tail may run (it stops earlier once nothing is open)."""

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(SimulationConfig):
            value = getattr(self, field.name)
            if isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise ValidationError(field.name, "must be a probability between 0 and 1")
        if self.tail_days < 0:
            raise ValidationError("tail_days", "must not be negative")
        mix = self.outcome_mix
        if (
            not isinstance(mix, Mapping) or not mix or not all(isinstance(k, Outcome) for k in mix)
            or not all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in mix.values())
            or not sum(mix.values()) > 0
        ):
            raise ValidationError("outcome_mix", "must map Outcome members to weights of 0 or more, not all 0")


@attrs.frozen
class SimulationResult:
    """What a run did: how many suggestions and commands, and the virtual time span."""

    suggestions: int
    commands: int
    ticks: int
    started: dt.datetime
    ended: dt.datetime
    by_command: Mapping[str, int]


@attrs.define
class _Plan:
    """The random fate of one suggestion, drawn when it arrives."""

    sid: str
    proposer: Actor
    lead: str
    slow: bool
    misroute_to: str | None
    outcome: Outcome
    fate: str  # "normal", "not_accepted", "withdrawn"
    rating: Rating | None
    reopen: bool
    extend: bool
    area: str
    state: State = State.RECEIVED
    """The state as the simulator last saw it (kept from command results and tick events)."""
    extended: bool = False
    round: int = 1


# One agenda item: (when as a POSIX timestamp, seq, when, suggestion id, action).  The heap
# orders by the float first: comparing floats is much cheaper than comparing aware datetimes,
# and a 2024 instant to the microsecond is exact in a float.
_Item = tuple[float, int, dt.datetime, str, str]


class CampaignSimulator:
    """Drives a whole campaign through ``Flow`` on ``store`` with a virtual clock.

    ``flow_factory`` builds the flow (default: :func:`jianyi_flow.domain.campaign.make_flow` with
    the campaign's phase guard and deterministic ids).  ``progress`` is called with
    (done, total) arrivals as the run goes.  ``batch`` is how many agenda items share one
    store transaction when the store has ``batch()`` (:class:`~jianyi_flow.sql.SqlStore`;
    a day's tick runs in a transaction of its own, between two batches); it changes the speed,
    never the event log.  ``freeze_gc`` see :meth:`run`.
    """

    def __init__(
        self,
        campaign: Campaign,
        store: Store,
        *,
        seed: int = 0,
        suggestions: int = 1000,
        config: SimulationConfig | None = None,
        flow_factory: Callable[[Campaign, Store, FakeClock], Flow] | None = None,
        progress: Callable[[int, int], None] | None = None,
        batch: int = 200,
        freeze_gc: bool = True,
    ) -> None:
        if not isinstance(suggestions, int) or isinstance(suggestions, bool) or suggestions < 0:
            raise ValidationError("suggestions", "must be a whole number, 0 or more")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValidationError("seed", "must be a whole number")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValidationError("batch", "must be a whole number, at least 1")
        self.campaign = campaign
        self.store = store
        self.seed = seed
        self.total = suggestions
        self.config = config or SimulationConfig()
        self.rng = random.Random(seed)
        self._outcomes = _Mix(self.config.outcome_mix)
        launch = campaign.phases[0]
        self.clock = FakeClock(start_of_local_day(launch.start))
        self._ids = (f"S{n:07d}" for n in range(1, 10**7))
        factory = flow_factory or (lambda c, s, clk: make_flow(c, s, clk, ids=lambda: next(self._ids)))
        self.flow = factory(campaign, store, self.clock)
        self.progress = progress
        self.batch = batch
        self.freeze_gc = freeze_gc
        # The agenda: the steps due in the current bucket (one UTC day of timestamps) as a heap,
        # the later ones in unsorted lists by bucket, heapified when their bucket comes up (see _push).
        self._agenda: list[_Item] = []
        self._bucket = -1  # every bucket before the first push is "past": the first push opens its own
        self._buckets: dict[int, list[_Item]] = {}
        self._bucket_keys: list[int] = []
        self._seq = 0
        self._plans: dict[str, _Plan] = {}
        self._count: dict[str, int] = {}
        self._ticks = 0
        self._steps: dict[str, Callable[[dt.datetime, _Plan], None]] = {
            name[len("_step_"):]: getattr(self, name) for name in dir(self) if name.startswith("_step_")
        }
        self._unit_actors: dict[str, Actor] = {}  # one Actor per unit, not one per command
        self._recommender_actors: dict[str, Actor] = {}
        self.office = Actor("office-clerk", Role.COLLECTION_OFFICE, unit=OFFICE_UNIT, name="区征集办")
        self.evaluator = Actor("evaluator-1", Role.EVALUATOR, name="评审组")
        self.leadership = Actor("leader-1", Role.LEADERSHIP, name="党委政府")
        self._setup_units()

    # --- set-up --------------------------------------------------------------------------
    def _setup_units(self) -> None:
        c = self.campaign
        recommenders = [u.code for u in c.units if c.recommendation.applies_to(u)]
        departments = {u.code for u in c.units if u.kind is UnitKind.DEPARTMENT and not u.organiser}
        self.handlers: dict[str, tuple[str, ...]] = {}
        for area in c.area_codes:
            known = tuple(u for u in AREA_DEPARTMENTS.get(area, ()) if u in departments)
            self.handlers[area] = known or tuple(sorted(departments)) or (OFFICE_UNIT,)
        all_handlers = sorted({u for units in self.handlers.values() for u in units})
        self.slow = frozenset(u for u in all_handlers if self.rng.random() < self.config.slow_units)
        # units that will miss their quota recommend 0 or 1; the others at least the minimum
        self.missers = frozenset(u for u in recommenders if self.rng.random() < self.config.quota_missers)
        minimum = c.recommendation.minimum
        owed: list[str] = []
        for unit in recommenders:
            n = self.rng.randint(0, minimum - 1) if unit in self.missers else minimum
            owed.extend([unit] * n)
        self.rng.shuffle(owed)
        self._owed = owed
        self._free_recommenders = [u for u in recommenders if u not in self.missers]
        self.all_handlers = all_handlers

    # --- the run -------------------------------------------------------------------------
    def run(self) -> SimulationResult:
        """Run the campaign to the end of its handling tail and return what happened.

        While it runs, if ``freeze_gc`` is set (the default), the garbage collector and
        nobody else is freezing objects (``gc.get_freeze_count() == 0``), the objects alive at
        each simulated day's tick are moved out of the collector's sight with
        :func:`gc.freeze`, and :func:`gc.unfreeze` brings them all back at the end.  A big
        campaign keeps millions of long-lived objects (rows, plans, the agenda); without
        this every full collection walks all of them to find almost no garbage (measured: a
        seventh of a 100,000-suggestion run on MemoryStore).  For the same reason the middle
        generation is then collected only every :data:`MIDDLE_GENERATION_EVERY` young
        collections (a simulated day makes a handful), and so full collections are about
        that much rarer too: what survives a young collection is frozen at the day's end
        anyway (the collector's time at 100,000 suggestions on MemoryStore, two runs each:
        2.12 / 1.98 s with CPython's default, 1.12 / 1.25 s so; docs/performance.md).  The thresholds are set back at
        the end, unless someone else changed them meanwhile.  Reference counting still frees
        everything as usual; only cyclic garbage that outlives a young collection waits, for
        a middle collection or the end of the run.
        """
        freeze = self.freeze_gc and gc.isenabled() and gc.get_freeze_count() == 0
        thresholds = gc.get_threshold()
        ours = thresholds
        if freeze:
            young, middle, old = thresholds
            ours = (young, max(middle, MIDDLE_GENERATION_EVERY), old)
            gc.set_threshold(*ours)
        try:
            return self._run(freeze)
        finally:
            if freeze:
                gc.unfreeze()
                if gc.get_threshold() == ours:  # not if another run or the caller set them since
                    gc.set_threshold(*thresholds)

    def _run(self, freeze: bool) -> SimulationResult:
        started = self.clock.now()
        self._schedule_arrivals()
        summary = self.campaign.phases[-1]
        end = start_of_local_day(summary.end) + dt.timedelta(days=1 + self.config.tail_days)
        summary_day = start_of_local_day(summary.start) + dt.timedelta(hours=10)
        self._push(summary_day, "", "summary")
        next_tick = start_of_local_day(self.clock.now().astimezone(SHANGHAI).date()) + dt.timedelta(days=1)
        arrived = 0
        end_ts = end.timestamp()
        pop, clock = heapq.heappop, self.clock
        while True:
            if not self._agenda and not self._next_bucket():
                break
            agenda = self._agenda  # the current bucket's heap: steps done below may push onto it
            when_ts = agenda[0][0]
            if when_ts > end_ts:
                break
            while next_tick.timestamp() <= when_ts:
                self._tick(next_tick, freeze)
                next_tick += dt.timedelta(days=1)
            # Up to ``batch`` items per store transaction, popped one at a time: a step may
            # schedule another before the next one already due, and the agenda must stay in
            # time order (the clock never goes back), whatever the batch size.
            tick_ts = next_tick.timestamp()
            with self._batch():
                for _ in range(self.batch):
                    if not agenda or agenda[0][0] >= tick_ts or agenda[0][0] > end_ts:
                        break
                    item = pop(agenda)
                    clock.set(item[2])
                    if item[4] == "receive":
                        arrived += 1
                        if self.progress is not None and (arrived % 500 == 0 or arrived == self.total):
                            self.progress(arrived, self.total)
                    self._do(item)
        # the tail: tick until nothing is open or time is up
        candidates = [sid for sid, plan in self._plans.items() if plan.state in OPEN_STATES]
        while next_tick <= end and self._anything_open(candidates):
            self._tick(next_tick, freeze)
            next_tick += dt.timedelta(days=1)
        if self.progress is not None:
            self.progress(self.total, self.total)
        return SimulationResult(
            suggestions=self.total,
            commands=sum(self._count.values()),
            ticks=self._ticks,
            started=started,
            ended=self.clock.now(),
            by_command=dict(sorted(self._count.items())),
        )

    def _anything_open(self, candidates: list[str]) -> bool:
        """Whether the store holds any open suggestion (the tail ticks until it holds none).

        The store's answer, found cheaply: first among ``candidates``, the run's own
        suggestions its record last saw open (pruned here as the record closes them), each
        checked in the store; only when none of them is open, the store is asked for any
        open row (another run's or a portal's).  At 100,000 suggestions that query walked
        most of the store on each of the tail's 19 days to find one of the few still open
        (1.4 s of a 45-second run on MemoryStore).
        """
        plans = self._plans
        candidates[:] = [sid for sid in candidates if plans[sid].state in OPEN_STATES]
        for sid in candidates:
            if self.flow.get(sid).state in OPEN_STATES:
                return True
        return bool(self.flow.query(states=OPEN_STATES, limit=1))

    def _batch(self) -> AbstractContextManager[Any]:
        batch = getattr(self.store, "batch", None)
        return batch() if batch is not None else nullcontext()

    def _tick(self, when: dt.datetime, freeze: bool = False) -> None:
        if freeze:
            gc.freeze()
        self.clock.set(when)
        with self._batch():
            events = self.flow.tick(when)
        self._ticks += 1
        for e in events:
            self._count[e.kind] = self._count.get(e.kind, 0) + 1
            plan = self._plans.get(e.suggestion_id)
            if plan is not None:
                plan.state = e.to_state

    def _push(self, when: dt.datetime, sid: str, action: str) -> None:
        """Put a step on the agenda, in ``(timestamp, sequence)`` order.

        One heap of every step ahead held up to 100,000 items at 100,000 suggestions, and
        popping from it was 5 % of a py-spy profile of that run (pushing 2 %: together
        7.7 % with the buckets, from 8.8 %).  So only the current bucket — a UTC day of
        timestamps, ``ts // 86400`` — is a heap; a step for a later bucket is appended to
        that bucket's list, which becomes the heap when the run reaches it
        (:meth:`_next_bucket`).  Buckets are contiguous ranges of time, so the steps come
        off in exactly the order one heap gives.
        """
        self._seq += 1
        ts = when.timestamp()
        item = (ts, self._seq, when, sid, action)
        bucket = int(ts // 86400)
        if bucket <= self._bucket:
            heapq.heappush(self._agenda, item)
            return
        later = self._buckets.get(bucket)
        if later is None:
            self._buckets[bucket] = [item]
            heapq.heappush(self._bucket_keys, bucket)
        else:
            later.append(item)

    def _next_bucket(self) -> bool:
        """Make the next bucket with steps the current heap; ``False`` when none is left."""
        if not self._bucket_keys:
            return False
        self._bucket = heapq.heappop(self._bucket_keys)
        agenda = self._buckets.pop(self._bucket)
        heapq.heapify(agenda)
        self._agenda = agenda
        return True

    def _schedule_arrivals(self) -> None:
        """Arrival times over the receiving windows: a trickle in launch, the bulk later."""
        phases = [p for p in self.campaign.phases if self.campaign.is_open("receive", _noon(p.start))]
        if not phases:
            raise ValidationError("campaign", "no phase is open for receiving suggestions")
        first, last = phases[0].start, phases[-1].end
        span = (last - first).days + 1
        weights = [0.3 if phases[0].contains(first + dt.timedelta(days=d)) and len(phases) > 1 else 1.0
                   for d in range(span)]
        days = self.rng.choices(range(span), weights=weights, k=self.total)
        days.sort()
        for n, d in enumerate(days):
            minute = self.rng.randint(8 * 60, 22 * 60 - 1)
            when = _local(first + dt.timedelta(days=d), minute)
            self._push(when, f"#{n}", "receive")

    # --- one step ------------------------------------------------------------------------
    def _do(self, item: _Item) -> None:
        _, _, when, sid, action = item
        if action == "summary":
            self._summary(when)
            return
        if action == "receive":
            self._receive(when)
            return
        if action.startswith("evaluate:"):
            self._do_summary(when, sid, action)
            return
        self._steps[action](when, self._plans[sid])

    def _call(self, command: str, *args: Any, **kwargs: Any) -> Suggestion:
        """Run one Flow command and count it."""
        result: Suggestion = getattr(self.flow, command)(*args, **kwargs)
        self._count[command] = self._count.get(command, 0) + 1
        plan = self._plans.get(result.id)
        if plan is not None:
            plan.state = result.state
        return result

    def _later(self, when: dt.datetime, low_days: float, high_days: float) -> dt.datetime:
        """A moment ``low..high`` days later, moved into office hours (9:00–17:30)."""
        t = when + dt.timedelta(days=self.rng.uniform(low_days, high_days))
        local = t.astimezone(SHANGHAI)
        if not 9 <= local.hour < 17:
            day = local.date() + (dt.timedelta(days=1) if local.hour >= 17 else dt.timedelta(0))
            t = _local(day, self.rng.randint(9 * 60, 17 * 60 + 30))
        return t

    def _receive(self, when: dt.datetime) -> None:
        rng, cfg, c = self.rng, self.config, self.campaign
        n = self._seq
        area = rng.choice(c.area_codes)
        topics = c.topics_of(area)
        topic = rng.choice(topics).code if topics else None
        channel = _CHANNELS.pick(rng)
        kind = _PROPOSERS.pick(rng)
        recommending: str | None = None
        if self._owed:
            recommending = self._owed.pop()
        elif self._free_recommenders and rng.random() < cfg.recommended:
            recommending = rng.choice(self._free_recommenders)
        account = f"citizen-{n:07d}"
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        proposer = Proposer(
            name=rng.choice(_SURNAMES) + rng.choice(_GIVEN),
            kind=kind,
            phone=phone,
            address=f"重庆市永川区{rng.choice(_STREETS)}{rng.randint(1, 300)}号",
            confidential=rng.random() < cfg.confidential,
            account=account,
        )
        area_name = c.area(area).name
        draft = SuggestionDraft(
            title=f"关于{area_name}的建议（{n}）",
            subject=f"{area_name}：{c.topic(topic).title[:40] if topic else area_name}",
            problem=f"在{area_name}方面，群众反映的问题之{n % 97}尚未解决。",
            measures=f"建议完善政策措施、健全机制制度，提升工作效能（方案{n % 89}）。",
            area=area,
            topic=topic,
            channel=channel,
            proposer=proposer,
            recommending_unit=recommending,
        )
        actor = self._intake_actor(channel, kind, recommending, account)
        s = self._call("receive", draft, actor)
        lead = rng.choice(self.handlers[area])
        others = [u for u in self.all_handlers if u != lead]
        fate = "normal"
        r = rng.random()
        if r < cfg.not_accepted:
            fate = "not_accepted"
        elif r < cfg.not_accepted + cfg.withdrawn:
            fate = "withdrawn"
        rating: Rating | None = None
        if rng.random() >= cfg.unrated:
            rating = Rating.DISSATISFIED if rng.random() < cfg.dissatisfied else rng.choice(
                [Rating.SATISFIED, Rating.SATISFIED, Rating.BASICALLY_SATISFIED])
        plan = _Plan(
            sid=s.id,
            proposer=Actor(account, Role.PROPOSER),
            lead=lead,
            slow=lead in self.slow,
            misroute_to=rng.choice(others) if others and rng.random() < cfg.misrouted else None,
            outcome=self._outcomes.pick(rng),
            fate=fate,
            rating=rating,
            reopen=rating is Rating.DISSATISFIED and rng.random() < cfg.reopen_when_dissatisfied,
            extend=False,
            area=area,
        )
        plan.extend = plan.slow and rng.random() < cfg.extension_when_slow
        self._plans[s.id] = plan
        if fate == "withdrawn":
            self._push(self._later(when, 1, 20), s.id, "withdraw")
        self._push(self._later(when, 0.2, 6), s.id, "register")

    def _intake_actor(self, channel: Channel, kind: ProposerKind, recommending: str | None, account: str) -> Actor:
        if recommending is not None:
            actor = self._recommender_actors.get(recommending)
            if actor is None:
                actor = Actor(f"staff-{recommending}", Role.RECOMMENDING_UNIT, unit=recommending)
                self._recommender_actors[recommending] = actor
            return actor
        if channel in (Channel.LETTER, Channel.ON_SITE, Channel.CIRCUIT_VISIT, Channel.PHONE):
            return self.office
        if kind is ProposerKind.INFORMATION_OFFICER:
            return Actor(account, Role.INFORMATION_OFFICER)
        return Actor(account, Role.PROPOSER)

    def _unit(self, code: str) -> Actor:
        actor = self._unit_actors.get(code)
        if actor is None:
            actor = self._unit_actors[code] = Actor(f"staff-{code}", Role.HANDLING_UNIT, unit=code)
        return actor

    def _alive(self, plan: _Plan) -> State | None:
        """The current state, or ``None`` if the suggestion has left the path (withdrawn...)."""
        state = plan.state
        return None if state in (State.WITHDRAWN, State.NOT_ACCEPTED, State.UNRATED) else state

    def _step_withdraw(self, when: dt.datetime, plan: _Plan) -> None:
        state = self._alive(plan)
        if state in (State.RECEIVED, State.REGISTERED, State.TRANSFERRED, State.RESEARCHED, State.RETURNED):
            self._call("withdraw", plan.sid, plan.proposer, reason="建议人主动撤回")

    def _step_register(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) is not State.RECEIVED:
            return
        if plan.fate == "not_accepted":
            self._call("not_accept", plan.sid, self.office, reason="属个人诉求，不属于人民建议，按信访事项另行办理")
            return
        self._call("register", plan.sid, self.office)
        self._push(self._later(when, 0.1, 5), plan.sid, "transfer")

    def _step_transfer(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) not in (State.REGISTERED, State.RETURNED):
            return
        if plan.misroute_to is not None:
            self._call("transfer", plan.sid, self.office, lead_unit=plan.misroute_to)
            self._push(self._later(when, 0.5, 4), plan.sid, "return_transfer")
            return
        co = [u for u in self.handlers[plan.area] if u != plan.lead][:1]
        co = co if self.rng.random() < 0.3 else []
        self._call("transfer", plan.sid, self.office, lead_unit=plan.lead, co_units=co)
        self._schedule_research(when, plan)

    def _schedule_research(self, when: dt.datetime, plan: _Plan) -> None:
        if plan.slow:
            if plan.extend:
                self._push(self._later(when, 40, 55), plan.sid, "extend")
            self._push(self._later(when, 62, 85), plan.sid, "research")
        else:
            self._push(self._later(when, 5, 45), plan.sid, "research")

    def _step_return_transfer(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) is not State.TRANSFERRED or plan.misroute_to is None:
            return
        self._call("return_transfer", plan.sid, self._unit(plan.misroute_to), reason="不属于本单位职责范围，申请退回")
        plan.misroute_to = None
        self._push(self._later(when, 0.5, 3), plan.sid, "transfer")

    def _step_extend(self, when: dt.datetime, plan: _Plan) -> None:
        if plan.state is State.TRANSFERRED and not plan.extended:
            plan.extended = True
            self._call("extend", plan.sid, self.office, days=30, approver="区征集办主任", reason="需多部门会商论证")

    def _step_research(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) is not State.TRANSFERRED:
            return
        self._call("research", plan.sid, self._unit(plan.lead), findings="经实地调研和部门会商，形成办理意见。")
        self._push(self._later(when, 0.1, 3), plan.sid, "decide")

    def _step_decide(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) is not State.RESEARCHED:
            return
        outcome = plan.outcome
        self._call("decide",
            plan.sid,
            self._unit(plan.lead),
            outcome=outcome,
            reason="现有政策已覆盖或条件暂不具备" if outcome is Outcome.DECLINED else None,
            adopted_part="建议的第一项措施" if outcome is Outcome.PARTIALLY_ADOPTED else None,
        )
        high = 25 if plan.slow else 12
        self._push(self._later(when, 1, high), plan.sid, "reply")

    def _step_reply(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) not in (State.ADOPTED, State.PARTIALLY_ADOPTED, State.DECLINED):
            return
        self._call("reply", plan.sid, self._unit(plan.lead), text="感谢您的建议，办理情况答复如下。")
        if plan.rating is not None:
            self._push(self._later(when, 1, 25), plan.sid, "rate")

    def _step_rate(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) is not State.REPLIED or plan.rating is None:
            return
        self._call("rate", plan.sid, plan.proposer, rating=plan.rating)
        if plan.rating is Rating.DISSATISFIED and plan.reopen and plan.round == 1:
            self._push(self._later(when, 0.5, 3), plan.sid, "reopen")

    def _step_reopen(self, when: dt.datetime, plan: _Plan) -> None:
        if self._alive(plan) is not State.RATED:
            return
        self._call("reopen", plan.sid, self.office, reason="建议人对答复不满意，交承办单位重新办理")
        plan.round = 2
        plan.rating = self.rng.choice([Rating.SATISFIED, Rating.BASICALLY_SATISFIED, Rating.DISSATISFIED, None])
        plan.outcome = self._outcomes.pick(self.rng)
        self._push(self._later(when, 5, 30), plan.sid, "research")

    # --- the summary phase ---------------------------------------------------------------
    def _summary(self, when: dt.datetime) -> None:
        """Evaluate, report upward, forward, nominate, record adoption and mark typical cases.

        Spread over the summary phase's working days; only suggestions already decided count.
        """
        # the suggestions this run handled, by id (the order a store pages them in), from the run's
        # own record of each state (kept from command results and tick events): rows of the campaign
        # that another run or a portal put in the store are not this run's to evaluate, and reading
        # every handled row back just for its id cost 2 % of a 100,000-suggestion run on SQLite
        plans = self._plans
        chosen = [sid for sid in sorted(plans) if plans[sid].state in _HANDLED
                  and self.rng.random() < self.config.evaluated]
        summary = self.campaign.phases[-1]
        days = [summary.start + dt.timedelta(days=d) for d in range((summary.end - summary.start).days + 1)]
        working = [d for d in days if self.flow.calendar.is_working_day(d)] or days
        for sid in chosen:
            day = self.rng.choice(working[: max(1, len(working) - 3)])
            self._summary_item(_local(day, self.rng.randint(9 * 60, 17 * 60)), sid)

    def _summary_item(self, when: dt.datetime, sid: str) -> None:
        rng = self.rng
        quality, value, effect = rng.randint(3, 10), rng.randint(3, 10), rng.randint(2, 10)
        self._push(when, sid, f"evaluate:{quality}:{value}:{effect}")

    def _do_summary(self, when: dt.datetime, sid: str, spec: str) -> None:
        _, q, v, e = spec.split(":")
        quality, value, effect = int(q), int(v), int(e)
        if self._plans[sid].state not in _HANDLED:
            return  # reopened since it was chosen: it is being handled again
        s = self._call("evaluate", sid, self.evaluator, quality=quality, value=value, effect=effect, evaluator="评审组")
        total = quality + value + effect
        if total >= 18:
            form = ReportForm.EXCERPT if total < 24 else ReportForm.ORIGINAL
            self._call("report_upward", sid, self.office, form=form)
        if total >= 22:
            self._call("forward_to_city", sid, self.office)
            tier = _tier(total)
            self._call("nominate_reward", sid, self.evaluator, tier=tier)
        if s.outcome in (Outcome.ADOPTED, Outcome.PARTIALLY_ADOPTED) and effect >= 7:
            measure = f"永川区完善{self.campaign.area(s.area).name}工作机制的措施"
            self._call("record_adoption", sid, self.office, adopted_into=measure)
        if total >= 27:
            self._call("mark_typical", sid, self.office, note="入选典型案例")


_HANDLED = frozenset(HANDLED_STATES)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
          "秀英", "华", "建国", "晓东", "红梅", "志强", "海燕")
_STREETS = ("中山路", "胜利路", "南大街", "人民大道", "兴龙大道", "昌州大道", "萱花路", "红河大道")


class _Mix:
    """A weighted choice prepared once: draws exactly what ``rng.choices(keys, weights)[0]`` draws.

    ``random.choices`` accumulates the weights on every call; the simulator draws from the
    same few mixes hundreds of thousands of times, so the sums are kept (same floats, same
    bisection, so the same seed still gives the same event log).  The weights are checked
    where they come from a caller (:class:`SimulationConfig`); the module's mixes are fixed.
    """

    __slots__ = ("cum", "hi", "keys", "total")

    def __init__(self, mix: Mapping[Any, float]) -> None:
        self.keys = list(mix)
        self.cum = list(itertools.accumulate(mix[k] for k in self.keys))
        self.total = self.cum[-1] + 0.0
        self.hi = len(self.cum) - 1

    def pick(self, rng: random.Random) -> Any:
        return self.keys[bisect.bisect(self.cum, rng.random() * self.total, 0, self.hi)]


_CHANNELS = _Mix(CHANNEL_MIX)
_PROPOSERS = _Mix(PROPOSER_MIX)


def _local(day: dt.date, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=SHANGHAI)


def _noon(day: dt.date) -> dt.datetime:
    return _local(day, 12 * 60)


def _tier(total: int) -> RewardTier:
    if total >= 29:
        return RewardTier.SPECIAL
    if total >= 27:
        return RewardTier.FIRST
    if total >= 25:
        return RewardTier.SECOND
    if total >= 23:
        return RewardTier.THIRD
    return RewardTier.ENCOURAGEMENT


__all__: Sequence[str] = ("CampaignSimulator", "SimulationConfig", "SimulationResult")

"""Wiring a :class:`~jianyi_flow.domain.campaign.Campaign` to a :class:`~jianyi_flow.Flow`.

:func:`make_flow` gives the flow the campaign code, the known codes it validates inputs
against, and a :class:`PhaseGuard`, which refuses a command outside the phases its
:class:`~jianyi_flow.domain.campaign.PhaseRule` allows, judged on the Asia/Shanghai day of
the injected clock.
"""

from __future__ import annotations

from typing import Any, TypedDict

import attrs

from ..domain.campaign import Campaign
from ..domain.clock import Clock
from ..domain.model import Channel, Role
from ..errors import ValidationError
from ..storage.base import Store
from .flow import Flow
from .guards import CommandContext, Guard

__all__ = ["FlowKwargs", "PhaseGuard", "RecommendationGuard", "flow_kwargs", "make_flow"]


class FlowKwargs(TypedDict):
    """The keyword arguments :class:`~jianyi_flow.Flow` takes from a campaign."""

    campaign: str
    known_areas: frozenset[str]
    known_topics: frozenset[str]
    known_units: frozenset[str]
    guards: tuple[Guard, ...]


def flow_kwargs(campaign: Campaign) -> FlowKwargs:
    """What :class:`~jianyi_flow.Flow` needs from ``campaign``: ``Flow(store, clock, **flow_kwargs(c))``."""
    return FlowKwargs(
        campaign=campaign.code,
        known_areas=frozenset(campaign.area_codes),
        known_topics=frozenset(campaign.topic_codes),
        known_units=frozenset(campaign.unit_codes),
        guards=(PhaseGuard(campaign), RecommendationGuard(campaign)),
    )


@attrs.frozen
class PhaseGuard:
    """Refuses a command outside the phase windows its :class:`PhaseRule` allows.

    The day is ``ctx.now`` (the injected clock) in Asia/Shanghai.  Unrestricted commands
    (no rule, or a rule with ``phases=None``) always pass.  It raises
    :class:`~jianyi_flow.errors.PhaseClosed` naming the command, the day and the windows;
    Flow runs guards before writing, so a refused command writes nothing.
    """

    campaign: Campaign

    def check(self, ctx: CommandContext) -> None:
        if not self.campaign.is_open(ctx.command, ctx.now):
            raise self.campaign.phase_closed(ctx.command, ctx.now)


def make_flow(campaign: Campaign, store: Store, clock: Clock, /, **extra: Any) -> Flow:
    """A :class:`~jianyi_flow.Flow` for ``campaign``: its codes, its phase guard, and ``extra``.

    ``extra`` passes other Flow options (``policy``, ``calendar``, ``ids``...).  Guards in
    ``extra["guards"]`` run after the phase guard, so a closed phase is reported before a
    permission problem.  ``campaign`` may not be overridden: suggestions would be filed
    under a code the campaign's reports do not look for.
    """
    if "campaign" in extra:
        raise ValidationError("campaign", "make_flow takes the campaign code from the Campaign; do not pass it",
                              code="not_applicable")
    kwargs: dict[str, Any] = dict(flow_kwargs(campaign))
    more_guards = tuple(extra.pop("guards", ()))
    kwargs.update(extra)
    kwargs["guards"] = (*kwargs["guards"], *more_guards)
    return Flow(store, clock, **kwargs)


@attrs.frozen
class RecommendationGuard:
    """The campaign's rules for a unit's recommendation (推荐), checked when a draft is received.

    * A unit files its recommendation on the 推荐表 (notice 四（二）2): a draft received by a
      recommending unit's actor has ``Channel.RECOMMENDATION_FORM``, and a draft on the form
      names the unit that recommends it.
    * A suggestion from an institution that is not itself a participating unit is recommended
      through the unit the campaign names for it — a school's through the education
      commission (区教委), a hospital's through the health commission (区卫健委)
      (``RecommendationRule.recommended_via``): a draft from such an institution names that
      unit as its recommending unit, and an institution the campaign does not know is refused.
    """

    campaign: Campaign

    def check(self, ctx: CommandContext) -> None:
        draft = ctx.draft
        if ctx.command != "receive" or draft is None:
            return
        form = draft.channel == Channel.RECOMMENDATION_FORM
        if ctx.actor.role is Role.RECOMMENDING_UNIT and not form:
            raise ValidationError("channel", "a unit's recommendation is filed on the 推荐表 "
                                             "(channel recommendation_form; notice 四（二）2)",
                                  code="not_one_of", details={"allowed": [Channel.RECOMMENDATION_FORM.value]})
        if form and draft.recommending_unit is None:
            raise ValidationError("recommending_unit", "a 推荐表 names the unit that recommends it", code="required")
        institution = draft.institution
        if institution is None:
            return
        via = self.campaign.recommendation.recommended_via
        if institution not in via:
            raise ValidationError("institution", f"unknown institution kind {institution!r} for this campaign",
                                  code="unknown_code", details={"value": institution, "allowed": sorted(via)})
        if draft.recommending_unit != via[institution]:
            raise ValidationError("recommending_unit", f"a suggestion from a {institution} is recommended through "
                                                       f"{via[institution]}", code="not_one_of",
                                  details={"allowed": [via[institution]]})

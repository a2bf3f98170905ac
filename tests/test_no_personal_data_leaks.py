"""Issue 7 §2: scan every output of a simulated campaign for the generated phone numbers.

Exports, reports (every format and the two summary documents), the CLI's JSON and text,
``repr`` of rows and events, log records, error messages and the masked views of every
suggestion: none may contain a proposer's phone or address, and none may contain a
confidential proposer's name.  With an authorised actor and ``unmasked=True`` they do appear
(proving the scan would see them).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from pathlib import Path

import attrs
import pytest

from jianyi_flow import SHANGHAI, Actor, FakeClock, MemoryStore, Role, Suggestion, SuggestionDraft, ValidationError
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.render import analysis_report, excerpt_report, render, render_text
from jianyi_flow.report import build_report
from jianyi_flow.service.campaign_flow import make_flow
from jianyi_flow.service.permissions import view_for
from jianyi_flow.simulation import CampaignSimulator
from jianyi_flow.storage.base import iter_events, iter_suggestions

OFFICE = Actor("clerk-1", Role.COLLECTION_OFFICE, unit="XFB")


def _texts_of(path: Path) -> list[str]:
    """Every text inside an output file or folder (XLSX and zips opened, PNGs skipped)."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    out: list[str] = []
    for f in files:
        if f.is_dir() or f.suffix == ".png":
            continue
        data = f.read_bytes()
        if f.suffix in (".xlsx", ".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                out.extend(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
        else:
            out.append(data.decode("utf-8-sig", "replace"))
    return out


def sim_draft(s: Suggestion) -> SuggestionDraft:
    """A draft with a simulated suggestion's texts and codes (its proposer included)."""
    return SuggestionDraft(title=s.title, subject=s.subject, problem=s.problem, measures=s.measures, area=s.area,
                           proposer=s.proposer, channel=s.channel, topic=s.topic,
                           recommending_unit=s.recommending_unit, accused_units=s.accused_units)


def _listed(sim: CampaignSimulator, actor: Actor) -> list[Suggestion]:
    """Every suggestion ``actor`` may see, page by page through ``Flow.list_suggestions``."""
    out: list[Suggestion] = []
    cursor: str | None = None
    while True:
        page = sim.flow.list_suggestions(actor, cursor=cursor, limit=100, with_total=False)
        out.extend(page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


@pytest.fixture(scope="module")
def campaign_run() -> tuple[CampaignSimulator, MemoryStore]:
    store = MemoryStore()
    sim = CampaignSimulator(yongchuan_2024(), store, seed=5, suggestions=150)
    sim.run()
    return sim, store


def test_no_output_contains_a_phone_an_address_or_a_confidential_name(
    campaign_run: tuple[CampaignSimulator, MemoryStore], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim, store = campaign_run
    rows = list(iter_suggestions(store))
    phones = {s.proposer.phone for s in rows if s.proposer.phone}
    addresses = {s.proposer.address for s in rows if s.proposer.address}
    open_names = {s.proposer.name for s in rows if not s.proposer.confidential}
    # names are drawn from short lists: a confidential name also borne by an open proposer may show legitimately
    secret_names = {s.proposer.name for s in rows if s.proposer.confidential and len(s.proposer.name) > 1} - open_names
    assert len(phones) > 100 and secret_names
    caplog.set_level(logging.DEBUG)

    report = build_report(sim.campaign, store, sim.clock.now())
    outputs: list[str] = [render_text(report), excerpt_report(report), analysis_report(report)]
    for fmt, name in (("md", "r.md"), ("html", "r.html"), ("json", "r.json"), ("xlsx", "r.xlsx"),
                      ("csv", "csv"), ("text", "r.txt")):
        outputs.extend(_texts_of(render(report, fmt, tmp_path / name)))
    outputs.extend(repr(s) for s in rows)
    outputs.extend(repr(e) for e in iter_events(store))
    unit = Actor("staff-1", Role.HANDLING_UNIT, unit=rows[0].lead_unit or "FGW")
    outputs.extend(repr(view_for(unit, s)) for s in rows if s.lead_unit == unit.unit)
    # what a portal shows a unit through Flow's reads: every row it may see, and their histories
    shown = _listed(sim, unit)
    assert shown, "the unit sees no suggestion: the read scan proves nothing"
    outputs.extend(repr(attrs.asdict(s)) for s in shown)
    outputs.extend(repr(attrs.asdict(sim.flow.get(s.id, unit))) for s in shown)
    outputs.extend(repr([attrs.asdict(e) for e in sim.flow.history(s.id, unit)]) for s in shown)
    # an error about a phone must not echo it: a phone typed as the lead unit of a registered suggestion
    # (the campaign is over, every simulated one is closed: a flow of the same campaign during it)
    during = make_flow(sim.campaign, MemoryStore(), FakeClock(dt.datetime(2024, 9, 2, 10, tzinfo=SHANGHAI)))
    open_one = during.register(during.receive(attrs.evolve(sim_draft(rows[0]), recommending_unit=None),
                                              OFFICE).id, OFFICE)
    with pytest.raises(ValidationError) as bad:
        during.transfer(open_one.id, OFFICE, lead_unit=next(iter(phones)))
    outputs.append(str(bad.value))
    outputs.extend(r.getMessage() for r in caplog.records)

    blob = "\n".join(outputs)
    assert [p for p in phones if p in blob] == []
    assert [a for a in addresses if a in blob] == []
    assert [n for n in secret_names if n in blob] == []


def test_the_scan_would_see_them_in_an_authorised_unmasked_report(
    campaign_run: tuple[CampaignSimulator, MemoryStore], tmp_path: Path
) -> None:
    sim, store = campaign_run
    phones = {s.proposer.phone for s in iter_suggestions(store) if s.proposer.phone}
    report = build_report(sim.campaign, store, sim.clock.now(), unmasked=True, actor=OFFICE)
    blob = "\n".join(_texts_of(render(report, "json", tmp_path / "unmasked.json")))
    assert any(p in blob for p in phones)
    office_reads = "\n".join(repr(attrs.asdict(s)) for s in _listed(sim, OFFICE))
    assert any(p in office_reads for p in phones)  # the office's reads are whole: the scan above would see a leak

"""jianyi_flow.labels: every exposed enum member, command and draft field has a Chinese label,
and docs/glossary.md agrees with the module."""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import jianyi_flow
from jianyi_flow import Proposer, SuggestionDraft, labels
from jianyi_flow.domain.calendar import CalendarMode, DayKind, HealthStatus
from jianyi_flow.domain.campaign import HANDLING_COMMANDS, SUMMARY_COMMANDS, UnitKind
from jianyi_flow.domain.model import (
    AdoptionForm,
    Channel,
    Outcome,
    ProposerKind,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Step,
)
from jianyi_flow.domain.validation import check_draft
from jianyi_flow.domain.workflow import DESCRIPTIONS
from jianyi_flow.service.commands import Recipient
from jianyi_flow.service.flow import Flow, Relation
from jianyi_flow.service.permissions import COMMANDS, Scope
from jianyi_flow.storage.base import Order

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.md"

EXPOSED: tuple[type[enum.Enum], ...] = (
    State, Outcome, Rating, Role, Step, Channel, ProposerKind, ReportForm, RewardTier, ResearchMethod, ReplyForm,
    AdoptionForm, DayKind, UnitKind, Scope, CalendarMode, HealthStatus, Order, Recipient, Relation,
)


def _public_enums() -> set[type[enum.Enum]]:
    """Every enum class defined in a public module of the package (not under a ``_private`` name)."""
    found: set[type[enum.Enum]] = set()
    for info in pkgutil.walk_packages(jianyi_flow.__path__, "jianyi_flow."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or "migrations" in parts or parts[1] in ("testing", "pytest_plugin"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, enum.Enum) and value.__module__ == info.name and not value.__name__.startswith("_"):
                found.add(value)
    return found


def test_every_public_enum_of_the_package_has_a_table() -> None:
    """An enum added to a public module without a table here fails this test."""
    enums = _public_enums()
    assert set(EXPOSED) <= enums
    assert {e.__name__ for e in enums} == set(labels.BY_ENUM)
    assert len({e.__name__ for e in enums}) == len(enums), "label tables are found by class name: keep names unique"


@pytest.mark.parametrize("kind", EXPOSED, ids=lambda k: k.__name__)
def test_every_member_has_a_label_and_every_label_a_member(kind: type[enum.Enum]) -> None:
    table = labels.BY_ENUM[kind.__name__]
    for member in kind:
        assert labels.label(member).strip(), f"{kind.__name__}.{member.name} has no Chinese label"
        assert labels.label(member) == table[member.value]
        assert labels.code_label(table, member.value) == labels.label(member)
    assert set(table) == {m.value for m in kind}, f"{kind.__name__}: labels for values that do not exist"


def test_labels_are_chinese_and_distinct_within_an_enum() -> None:
    for name, table in labels.BY_ENUM.items():
        assert len(set(table.values())) == len(table), name
        for text in table.values():
            assert re.search("[\u4e00-\u9fff]", text), (name, text)


def test_state_labels_keep_the_words_of_the_renderers_and_the_diagram() -> None:
    assert labels.label(State.RECEIVED) == "已收到"
    assert labels.label(State.UNRATED) == "评价期满未评价"
    assert labels.label(Outcome.DECLINED) == "不予采纳"
    assert labels.label(Step.OBJECT_TRANSFER) == "异议退回"
    assert labels.label(DayKind.SWAPPED_WORKING_DAY) == "调休上班日"  # a plain Enum, not a StrEnum


def test_code_label_shows_none_as_empty_and_unknown_codes_as_themselves() -> None:
    assert labels.code_label(labels.STATE, None) == ""
    assert labels.code_label(labels.STATE, "escalated") == "escalated"
    assert labels.code_label(labels.STATE, State.RATED) == "已评价"
    assert labels.code_label(labels.DAY_KIND, DayKind.HOLIDAY) == "法定节假日"
    assert labels.code_label(labels.STATE, 3) == "3"


def test_every_command_has_a_label() -> None:
    """Workflow triggers, Flow's commands, the permission table's and the phase table's."""
    commands = {*DESCRIPTIONS, "decide", *COMMANDS, *HANDLING_COMMANDS, *SUMMARY_COMMANDS}
    commands |= {name for name, f in vars(Flow).items()
                 if inspect.isfunction(f) and not name.startswith("_") and "actor" in inspect.signature(f).parameters}
    missing = sorted(c for c in commands if not labels.COMMAND.get(c, "").strip())
    assert missing == []
    assert labels.command_label("receive") == "收到建议"
    assert labels.command_label("brand_new") == "brand_new"


def test_every_field_a_draft_can_be_refused_for_has_a_label() -> None:
    fields = {p.field for p in check_draft(None)}
    bad = SuggestionDraft(title="", subject="", problem="", measures="", area="", channel="fax", topic="?",
                          recommending_unit="?", accused_units="AB",
                          proposer=Proposer(name="", kind="alien", phone="12", address="\x00", confidential="no",
                                            account="\x00"))
    fields |= {p.field for p in check_draft(bad)}
    assert len(fields) == 16
    assert sorted(f for f in fields if not labels.field_label(f)) == []
    assert labels.field_label("topics[T01].area") == ""


# --- docs/glossary.md --------------------------------------------------------------------------

def _generated(page: str, name: str) -> str:
    begin = f"<!-- BEGIN generated: {name} -->\n"
    start = page.index(begin) + len(begin)
    return page[start:page.index("<!-- END generated -->", start)]


def test_glossary_label_tables_match_the_module() -> None:
    page = GLOSSARY.read_text(encoding="utf-8")
    assert _generated(page, "jianyi_flow.labels.glossary_tables()") == labels.glossary_tables(), (
        "docs/glossary.md is stale: replace its Labels section with the output of "
        "python -c 'from jianyi_flow.labels import glossary_tables; print(glossary_tables(), end=\"\")'"
    )


def test_glossary_terms_naming_an_enum_member_use_its_label() -> None:
    """A hand-written row that names ``Enum.MEMBER`` must contain that member's label."""
    page = GLOSSARY.read_text(encoding="utf-8")
    hand_written = page[:page.index("<!-- BEGIN generated")]
    checked = 0
    for line in hand_written.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2:
            continue
        for kind_name, member_name in re.findall(r"`(\w+)\.([A-Z_]+)`", cells[1]):
            kind = next((k for k in EXPOSED if k.__name__ == kind_name), None)
            if kind is None:
                continue
            text = labels.label(kind[member_name])
            assert text in cells[0], f"{kind_name}.{member_name} is labelled {text!r}, the glossary says {cells[0]!r}"
            checked += 1
    assert checked >= 15

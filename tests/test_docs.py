"""Docs that are generated from code must match the code."""

from __future__ import annotations

from pathlib import Path

from jianyi_flow.diagram import states_page

ROOT = Path(__file__).resolve().parents[1]


def test_states_page_matches_the_workflow_definition() -> None:
    page = (ROOT / "docs" / "states.md").read_text(encoding="utf-8")
    assert page == states_page(), (
        "docs/states.md is stale: regenerate it with "
        "python -c 'from jianyi_flow.diagram import states_page; print(states_page(), end=\"\")' > docs/states.md"
    )

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


def _generated(page: str, name: str) -> str:
    begin = f"<!-- BEGIN generated: {name} -->\n"
    start = page.index(begin) + len(begin)
    return page[start:page.index("<!-- END generated -->", start)]


def test_outbox_page_matches_the_notice_table() -> None:
    from jianyi_flow.service.commands import outbox_catalogue

    page = (ROOT / "docs" / "outbox.md").read_text(encoding="utf-8")
    assert _generated(page, "jianyi_flow.service.commands.outbox_catalogue()") == outbox_catalogue()


def test_the_readme_example_runs() -> None:
    import re

    code = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert code, "README.md has a Python example"
    namespace: dict[str, object] = {}
    exec(compile(code[0], "README.md", "exec"), namespace)  # the page's own example
    s = namespace["s"]
    assert s.state.value == "rated"

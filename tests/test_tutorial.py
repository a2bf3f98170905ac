"""docs/tutorial.md, run: its Python blocks execute in order, in one namespace, and hold."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(encoding="utf-8"), re.S)


def test_the_tutorial_runs_as_written() -> None:
    namespace: dict[str, object] = {}
    blocks = _blocks()
    assert len(blocks) >= 10
    for n, block in enumerate(blocks, start=1):
        exec(compile(block, f"docs/tutorial.md block {n}", "exec"), namespace)  # the page's own code
    endpoint = namespace["register_endpoint"]
    assert callable(endpoint)


def test_the_async_example_calls_the_flow_from_a_worker_thread() -> None:
    namespace: dict[str, object] = {}
    for n, block in enumerate(_blocks(), start=1):
        exec(compile(block, f"docs/tutorial.md block {n}", "exec"), namespace)
    flow = namespace["flow"]
    draft, citizen = namespace["draft"], namespace["citizen"]
    s = flow.receive(draft, citizen)  # type: ignore[attr-defined]
    state = asyncio.run(namespace["register_endpoint"](s.id, s.version))  # type: ignore[operator]
    assert state == "registered"

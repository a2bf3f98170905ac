"""The state diagram, generated from :data:`jianyi_flow.workflow.TRANSITIONS` so docs never drift."""

from __future__ import annotations

from .model import TERMINAL_STATES, State
from .workflow import edges

_LABELS = {
    State.RECEIVED: "received 已收到",
    State.REGISTERED: "registered 已登记",
    State.TRANSFERRED: "transferred 已转送交办",
    State.RESEARCHED: "researched 已调研论证",
    State.ADOPTED: "adopted 采纳",
    State.PARTIALLY_ADOPTED: "partially_adopted 部分采纳",
    State.DECLINED: "declined 不予采纳",
    State.REPLIED: "replied 已回复",
    State.RATED: "rated 已评价",
    State.NOT_ACCEPTED: "not_accepted 不予受理",
    State.WITHDRAWN: "withdrawn 已撤回",
    State.RETURNED: "returned 已退回",
    State.UNRATED: "unrated 评价期满未评价",
}


def mermaid() -> str:
    """A Mermaid ``stateDiagram-v2`` of every state and state-changing command.

    Internal commands (an event, no state change) are listed in a note, not drawn.
    """
    lines = ["stateDiagram-v2"]
    for state in State:
        lines.append(f'    state "{_LABELS[state]}" as {state.value}')
    lines.append("    [*] --> received: receive")
    internal: dict[str, list[str]] = {}
    for source, trigger, dest in edges():
        if dest is None:
            internal.setdefault(trigger, []).append(source.value)
            continue
        lines.append(f"    {source.value} --> {dest.value}: {trigger}")
    for state in sorted(TERMINAL_STATES | {State.RATED}, key=list(State).index):
        lines.append(f"    {state.value} --> [*]")
    for trigger, sources in internal.items():
        lines.append(f"    note right of transferred: {trigger} (internal) in {', '.join(sources)}")
    return "\n".join(lines) + "\n"

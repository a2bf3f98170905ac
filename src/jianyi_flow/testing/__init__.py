"""Test kit for store adapters and for tests that drive Flow: the contract, builders, real actors.

* :class:`StoreContract` — the tests every store must pass (subclass it; see
  :mod:`jianyi_flow.testing.contract`).
* :mod:`~jianyi_flow.testing.builders` — suggestions, messages and the ``Change`` objects that
  write them, for tests of your own.
* :mod:`~jianyi_flow.testing.drive` — actors of every role and a driver that walks a
  suggestion to any state through ``Flow`` under the default permission table.

Needs pytest, which is a test dependency, not a runtime one: import this package from
tests only.
"""

from .builders import (
    ODD_ZONES,
    advance,
    assert_same,
    assert_same_event,
    assert_same_suggestion,
    create,
    fingerprint_of,
    make_maximal,
    make_suggestion,
    message,
    run_threads,
)
from .contract import StoreContract
from .drive import (
    CO_UNIT,
    EVALUATOR_ACTOR,
    LEAD_UNIT,
    OFFICE_ACTOR,
    OTHER_UNIT,
    PATHS,
    PROPOSER_ACCOUNT,
    PROPOSER_ACTOR,
    STEPS,
    T0,
    UNIT_ACTOR,
    UNIT_HEAD_ACTOR,
    actor_for,
    drive_to,
    make_draft,
    make_flow,
    proposer_actor,
    unit_actor,
    unit_head,
)

__all__ = [
    "CO_UNIT",
    "EVALUATOR_ACTOR",
    "LEAD_UNIT",
    "ODD_ZONES",
    "OFFICE_ACTOR",
    "OTHER_UNIT",
    "PATHS",
    "PROPOSER_ACCOUNT",
    "PROPOSER_ACTOR",
    "STEPS",
    "T0",
    "UNIT_ACTOR",
    "UNIT_HEAD_ACTOR",
    "StoreContract",
    "actor_for",
    "advance",
    "assert_same",
    "assert_same_event",
    "assert_same_suggestion",
    "create",
    "drive_to",
    "fingerprint_of",
    "make_draft",
    "make_flow",
    "make_maximal",
    "make_suggestion",
    "message",
    "proposer_actor",
    "run_threads",
    "unit_actor",
    "unit_head",
]

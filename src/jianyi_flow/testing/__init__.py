"""Test kit for store adapters: subclass :class:`StoreContract` (see its module for details).

Needs pytest, which is a test dependency, not a runtime one: import this package from
tests only.
"""

from .contract import (
    OFFICE_ACTOR,
    PROPOSER_ACTOR,
    T0,
    UNIT_ACTOR,
    StoreContract,
    advance,
    assert_same_event,
    assert_same_suggestion,
    create,
    make_maximal,
    make_suggestion,
    message,
)

__all__ = [
    "OFFICE_ACTOR",
    "PROPOSER_ACTOR",
    "T0",
    "UNIT_ACTOR",
    "StoreContract",
    "advance",
    "assert_same_event",
    "assert_same_suggestion",
    "create",
    "make_maximal",
    "make_suggestion",
    "message",
]

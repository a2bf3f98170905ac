"""The demo accounts the login page offers: one or two per role.

A real portal authenticates people (the government's single sign-on, an SMS code for
citizens) and maps the signed-in person to an :class:`~jianyi_flow.Actor` — role, id and
unit — from its own user directory.  Only that mapping is what the library sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from jianyi_flow import Actor, Role

ACCOUNTS: Mapping[str, Actor] = MappingProxyType({a.id: a for a in (
    Actor("zhangsan", Role.PROPOSER, name="张三"),
    Actor("lisi", Role.PROPOSER, name="李四"),
    Actor("clerk-wang", Role.COLLECTION_OFFICE, unit="XFB", name="王敏"),
    Actor("clerk-zhao", Role.COLLECTION_OFFICE, unit="XFB", name="赵磊"),
    Actor("fgw-liu", Role.HANDLING_UNIT, unit="FGW", name="刘洋"),
    Actor("fgw-chen", Role.HANDLING_UNIT_HEAD, unit="FGW", name="陈主任"),
    Actor("jtj-sun", Role.HANDLING_UNIT, unit="JTJ", name="孙丽"),
    Actor("jtj-zhou", Role.HANDLING_UNIT_HEAD, unit="JTJ", name="周主任"),
    Actor("cgj-wu", Role.HANDLING_UNIT, unit="CGJ", name="吴刚"),
    Actor("leader-he", Role.LEADERSHIP, name="何书记"),
)})
"""Account id → the actor it acts as."""

UNIT_ROLES = frozenset({Role.HANDLING_UNIT, Role.HANDLING_UNIT_HEAD})

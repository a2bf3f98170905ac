"""Issue 20 §4 and §5 in the views a unit is shown: ``history_for`` and ``view_for``.

§4: the proposer is the actor of their own receive, rate and withdraw events, and that
actor's id is their portal account (here a phone number).  A unit shown the history must
see neither the account nor, for a confidential (保密) proposer, the name.  §5: a
neighbour's phone, an ID number or an e-mail address written into the text, a reason or
a payload value is masked for the unit too.  On main the actor is passed through as is and
only the proposer's own phone and address are scrubbed, so these tests fail there.

Every command is run by the actor the default permission table names: the proposer files and
rates under their account, the office registers and transfers, the lead unit's staff ask for
an extension, research, decide and reply, and the unit's head approves the extension.
"""

from __future__ import annotations

import attrs

from helpers import LEAD_UNIT, OFFICE, UNIT, make_draft, make_flow, make_proposer
from jianyi_flow import Actor, Flow, Outcome, Rating, Role, Suggestion
from jianyi_flow.domain.model import Event, ReplyForm, ResearchMethod
from jianyi_flow.service.visibility import history_for, view_for

ACCOUNT = "13987654321"
"""The proposer's portal account: a phone number, as many portals use."""
NAME = "李四光"
ID_NUMBER = "11010519491231002X"
NEIGHBOUR = "135-9876-5432"
EMAIL = "li.siguang@example.com"
LANDLINE = "023-49299053"
UNIT_HEAD = Actor(id="head-1", role=Role.HANDLING_UNIT_HEAD, unit=LEAD_UNIT, name="交通局负责人")
"""The lead unit's head: approves its extension requests."""
APPROVER_NOTE = "区政府办 13512345678 同意"
MASKED_ID = "***"
"""The id the proposer gets where they acted (``visibility.MASKED_ID``; written out so
that these tests fail on main by their assertions, not at import)."""


def proposer_actor(name: str | None = NAME) -> Actor:
    return Actor(id=ACCOUNT, role=Role.PROPOSER, name=name)


def handled(flow: Flow, *, confidential: bool, name: str = NAME) -> Suggestion:
    """A suggestion its proposer filed, handled by the unit (its deadline extended), replied and rated."""
    draft = make_draft(
        proposer=make_proposer(name=name, confidential=confidential, account=ACCOUNT),
        problem=f"邻居王先生（电话 {NEIGHBOUR}，身份证 {ID_NUMBER}）反映班次太少，邮件 {EMAIL}。",
    )
    me = proposer_actor(name)
    s = flow.receive(draft, me)
    s = flow.register(s.id, OFFICE)
    s = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT, note=f"请联系座机 {LANDLINE}")
    s = flow.request_extension(s.id, UNIT, days=10, reason="需会商")
    s = flow.approve_extension(s.id, UNIT_HEAD, note=APPROVER_NOTE)
    s = flow.research(s.id, UNIT, findings=f"已电话联系 {NEIGHBOUR} 核实。", method=ResearchMethod.FIELD_VISIT)
    s = flow.decide(s.id, UNIT, outcome=Outcome.ADOPTED)
    s = flow.reply(s.id, UNIT, text="已采纳。", form=ReplyForm.PHONE)
    return flow.rate(s.id, me, rating=Rating.SATISFIED, comment=f"满意，可联系 {EMAIL}")


def secrets_in(events: list[Event]) -> list[str]:
    blob = "\n".join(f"{e.actor!r} {e.changes!r} {e.payload!r} {e.reason!r}" for e in events)
    found = [ACCOUNT, ID_NUMBER, NEIGHBOUR, EMAIL, LANDLINE, "13512345678"]
    return [x for x in found if x in blob]


def test_a_confidential_proposer_is_not_shown_as_the_actor_of_their_events() -> None:
    flow = make_flow(vault=False)  # a history that holds the proposer's data
    s = handled(flow, confidential=True)
    raw = flow.history(s.id, OFFICE)
    mine = [e for e in raw if e.actor.id == ACCOUNT]
    assert [e.kind for e in mine] == ["receive", "rate"]

    shown = history_for(UNIT, s, raw)
    for event in shown:
        if event.kind in ("receive", "rate"):
            assert event.actor == Actor(MASKED_ID, Role.PROPOSER)  # id hidden, name dropped
        else:
            assert event.actor == next(e.actor for e in raw if e.version == event.version)  # staff stay
    blob = repr(shown)
    assert ACCOUNT not in blob and NAME not in blob
    assert secrets_in(shown) == []


def test_a_proposer_who_is_not_confidential_keeps_their_name_but_not_their_account() -> None:
    flow = make_flow(vault=False)  # a history that holds the proposer's data
    s = handled(flow, confidential=False, name="张三丰")
    shown = history_for(UNIT, s, flow.history(s.id, OFFICE))
    actors = {e.kind: e.actor for e in shown}
    assert actors["receive"] == actors["rate"] == Actor(MASKED_ID, Role.PROPOSER, name="张三丰")
    assert ACCOUNT not in repr(shown)


def test_the_office_and_the_proposer_see_the_history_as_stored() -> None:
    flow = make_flow()
    s = handled(flow, confidential=True)
    raw = flow.history(s.id, OFFICE)
    assert history_for(OFFICE, s, raw) == raw
    assert history_for(proposer_actor(), s, raw) == raw


def test_an_actor_whose_id_is_the_proposer_s_account_is_masked_whatever_its_role() -> None:
    from jianyi_flow.service.visibility import MASKED_ACTOR_ID, masked_actor

    assert MASKED_ACTOR_ID == MASKED_ID
    p = make_proposer(account=ACCOUNT, confidential=True)
    officer = Actor(ACCOUNT, Role.INFORMATION_OFFICER, unit="street_xq", name=NAME)
    assert masked_actor(officer, p) == Actor(MASKED_ID, Role.INFORMATION_OFFICER, unit="street_xq")
    other = Actor("officer-7", Role.INFORMATION_OFFICER, name="王五")
    assert masked_actor(other, p) is other
    named_by_number = Actor(ACCOUNT, Role.PROPOSER, name="13987654321")
    assert masked_actor(named_by_number, make_proposer(account=ACCOUNT)).name == "139******21"


def test_free_text_reasons_and_payloads_are_masked_for_the_unit() -> None:
    flow = make_flow(vault=False)  # a history that holds the proposer's data
    s = handled(flow, confidential=False)
    raw = flow.history(s.id, OFFICE)
    assert set(secrets_in(raw)) == {ACCOUNT, ID_NUMBER, NEIGHBOUR, EMAIL, LANDLINE, "13512345678"}
    shown = history_for(UNIT, s, raw)
    assert secrets_in(shown) == []
    by_kind = {e.kind: e for e in shown}
    assert by_kind["transfer"].reason == "请联系座机 023-******53"
    assert by_kind["approve_extension"].reason == "区政府办 135******78 同意"
    assert by_kind["approve_extension"].payload == {"days": 10, "approver": UNIT_HEAD.key}
    assert by_kind["research"].changes["research_notes"] == "已电话联系 135-****-**32 核实。"


def test_a_text_payload_of_an_earlier_version_s_event_is_masked_for_the_unit() -> None:
    """Earlier versions' ``extend`` named its approver in free text in the payload; a store may hold one."""
    flow = make_flow()
    s = handled(flow, confidential=False)
    raw = flow.history(s.id, OFFICE)
    approval = next(e for e in raw if e.kind == "approve_extension")
    old = attrs.evolve(approval, kind="extend", actor=OFFICE, reason="需会商",
                       payload={"days": 10, "approver": "区政府办 13512345678"})
    (shown,) = history_for(UNIT, s, [old])
    assert shown.payload == {"days": 10, "approver": "区政府办 135******78"}


def test_the_reason_of_an_extension_request_and_of_an_objection_is_masked_like_every_reason() -> None:
    flow = make_flow()
    me = proposer_actor()
    s = flow.receive(make_draft(proposer=make_proposer(account=ACCOUNT)), me)
    s = flow.register(s.id, OFFICE)
    s = flow.transfer(s.id, OFFICE, lead_unit=LEAD_UNIT)
    s = flow.request_extension(s.id, UNIT, days=10, reason=f"需联系邻居 {NEIGHBOUR} 核实")
    s = flow.object_transfer(s.id, UNIT, reason=f"应由住建委办理，联系人电话 {NEIGHBOUR}")
    raw = flow.history(s.id, OFFICE)
    assert NEIGHBOUR in repr(raw)  # the search would see it
    shown = history_for(UNIT, s, raw)
    assert NEIGHBOUR not in repr([attrs.asdict(e) for e in shown])
    view = view_for(UNIT, flow.get(s.id, OFFICE))
    assert NEIGHBOUR not in repr(attrs.asdict(view))


def test_view_for_masks_a_third_party_s_details_in_free_text() -> None:
    flow = make_flow()
    s = handled(flow, confidential=False)
    view = view_for(UNIT, s)
    assert view.problem == (
        "邻居王先生（电话 135-****-**32，身份证 110*************2X）反映班次太少，邮件 l*********@*******.com。"
    )
    assert view.rating_comment == "满意，可联系 l*********@*******.com"
    assert view_for(OFFICE, s).problem == s.problem


def test_with_the_vault_the_stored_history_holds_neither_the_proposer_s_account_nor_name() -> None:
    flow = make_flow()  # the default: MemoryStore keeps a vault
    s = handled(flow, confidential=False, name="张三丰")
    raw = flow.history(s.id, OFFICE)
    assert ACCOUNT not in repr(raw) and "张三丰" not in repr(raw)
    assert {e.kind: e.actor for e in raw if e.actor.role is Role.PROPOSER} == {
        "receive": Actor(MASKED_ID, Role.PROPOSER), "rate": Actor(MASKED_ID, Role.PROPOSER)}
    assert flow.get(s.id, OFFICE).proposer.account == ACCOUNT  # the row reads it back from the vault
    assert secrets_in(history_for(UNIT, s, raw)) == []

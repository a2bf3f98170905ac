"""The reference portal (examples/portal) over HTTP, without a browser: forms, errors, the other roles' paths.

The browser walk is tests/test_portal_browser.py; these run the app in-process on a
MemoryStore with a FakeClock (Starlette's test client), so they are quick and need nothing
installed beyond the ``test`` extra.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from jianyi_flow import SHANGHAI, FakeClock
from jianyi_flow.service.commands import ARGUMENTS
from portal_server import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

fastapi = pytest.importorskip("fastapi", reason="the portal needs the 'portal' extra (pip install -e '.[test]')")
with warnings.catch_warnings():  # starlette's test client warns that it will want httpx2 one day
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from examples.portal import forms  # noqa: E402
from examples.portal.app import create_app  # noqa: E402
from examples.portal.compat import command_label  # noqa: E402
from examples.portal.settings import Settings  # noqa: E402


class Browserless:
    """One person's session against the in-process app."""

    def __init__(self, app: Any, account: str) -> None:
        self.client = TestClient(app)
        assert self.client.post("/login", data={"account": account}, follow_redirects=False).status_code == 303

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def form_of(self, html: str, command: str) -> dict[str, str]:
        """The hidden fields of the ``command`` form on a page."""
        found = re.search(rf'id="do-{command}".*?name="expected_version" value="(\d+)".*?'
                          r'name="idempotency_key" value="(\w+)"', html, re.S)
        assert found, f"no {command} form on the page"
        return {"expected_version": found[1], "idempotency_key": found[2]}

    def run(self, sid: str, command: str, **fields: Any) -> Any:
        page = self.get(f"/s/{sid}").text
        data = {**self.form_of(page, command), **fields}
        return self.client.post(f"/s/{sid}/do/{command}", data=data, follow_redirects=False)

    def submit(self, **changes: str) -> Any:
        key = re.search(r'name="idempotency_key" value="(\w+)"', self.get("/submit").text)
        assert key
        data = {"idempotency_key": key[1], "title": "路灯维修建议", "subject": "修复滨江路路灯",
                "problem": "夜间照明不足。", "measures": "排查并更换损坏路灯。", "area": "A4", "name": "张三",
                "phone": "13812345678", "kind": "citizen", "consent": "1", **changes}
        return self.client.post("/submit", data=data, follow_redirects=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2024, 9, 2, 9, 30, tzinfo=SHANGHAI))


@pytest.fixture
def app(clock: FakeClock, tmp_path: Any) -> Iterator[Any]:
    yield create_app(Settings(store="memory", state_dir=tmp_path), clock=clock)


def login(app: Any, account: str) -> Browserless:
    return Browserless(app, account)


def errors(html: str) -> list[str]:
    return re.findall(r'class="(?:error|field-error)"[^>]*>([^<]*)<', html)


def transferred(app: Any) -> str:
    response = login(app, "zhangsan").submit()
    sid: str = response.headers["location"].rsplit("/", 1)[1]
    clerk = login(app, "clerk-wang")
    assert clerk.run(sid, "register").status_code == 303
    assert clerk.run(sid, "transfer", lead_unit="FGW", co_units=["JTJ"]).status_code == 303
    return sid


def test_every_command_gets_a_form_with_chinese_labels() -> None:
    from jianyi_flow.presets import yongchuan_2024

    campaign = yongchuan_2024()
    for command, arguments in ARGUMENTS.items():
        assert command_label(command) != command, f"{command} has no Chinese name"
        for field in forms.fields(command, arguments, campaign):
            assert field.label != field.name, f"{command}.{field.name} has no Chinese label"
            for option in field.options:
                assert option.label != option.value or field.widget != "select" or not option.value.islower(), \
                    f"{command}.{field.name}={option.value} has no Chinese label"


def test_the_citizen_form_reports_every_problem_at_once(app: Any) -> None:
    response = login(app, "zhangsan").submit(title="长" * 101, phone="12345")
    assert response.status_code == 422
    shown = errors(response.text)
    assert any("标题" in e for e in shown) and any("电话" in e for e in shown), shown
    assert "有2处需要修改" in response.text


def test_consent_is_required(app: Any) -> None:
    response = login(app, "zhangsan").submit(consent="")
    assert response.status_code == 422
    assert "请阅读并勾选同意" in response.text


def test_pages_need_a_login_and_the_right_role(app: Any) -> None:
    anonymous = TestClient(app)
    assert anonymous.get("/office", follow_redirects=False).headers["location"] == "/login"
    assert login(app, "zhangsan").get("/office").status_code == 403


def test_an_unknown_command_is_not_found(app: Any) -> None:
    sid = transferred(app)
    response = login(app, "fgw-liu").client.post(f"/s/{sid}/do/drop_table", data={})
    assert response.status_code == 404


def test_server_timing_gives_the_library_share(app: Any) -> None:
    response = login(app, "zhangsan").submit()
    timing = dict(re.findall(r"(\w+);dur=([\d.]+)", response.headers["server-timing"]))
    assert set(timing) == {"app", "flow"}
    assert 0 < float(timing["flow"]) <= float(timing["app"])


def test_the_unit_head_approves_an_extension(app: Any) -> None:
    sid = transferred(app)
    staff, head = login(app, "fgw-liu"), login(app, "fgw-chen")
    assert "approve_extension" not in head.get(f"/s/{sid}").text
    assert staff.run(sid, "request_extension", days="10", reason="需要听证。").status_code == 303
    queue = head.get("/unit").text
    assert "待审批的延期申请" in queue and sid in queue.split('id="lead"')[0]
    assert head.run(sid, "approve_extension").status_code == 303
    page = head.get(f"/s/{sid}").text
    assert "延期申请" not in page


def test_a_bad_extension_shows_the_library_message(app: Any) -> None:
    sid = transferred(app)
    response = login(app, "fgw-liu").run(sid, "request_extension", days="45", reason="需要听证。")
    assert response.status_code == 422
    assert any("延期天数" in e for e in errors(response.text)), errors(response.text)


def test_a_misroute_objection_goes_back_to_the_office(app: Any) -> None:
    sid = transferred(app)
    unit, clerk = login(app, "fgw-liu"), login(app, "clerk-wang")
    assert unit.run(sid, "object_transfer", reason="公交线路属于区交通运输局职责。").status_code == 303
    assert "异议待核" in clerk.get("/office?tab=objected").text
    assert clerk.run(sid, "accept_objection").status_code == 303
    assert login(app, "fgw-liu").get(f"/s/{sid}").status_code == 404  # no longer its suggestion
    assert clerk.run(sid, "transfer", lead_unit="JTJ").status_code == 303
    assert "区交通运输局" in clerk.get(f"/s/{sid}").text


def test_the_office_reopens_after_dissatisfied(app: Any, clock: FakeClock) -> None:
    sid = transferred(app)
    unit, citizen, clerk = login(app, "fgw-liu"), login(app, "zhangsan"), login(app, "clerk-wang")
    assert unit.run(sid, "research", findings="座谈。", method="forum").status_code == 303
    assert unit.run(sid, "decide", outcome="declined", reason="财力不足。").status_code == 303
    assert unit.run(sid, "reply", text="暂不采纳。", form="written").status_code == 303
    assert "reopen" not in clerk.get(f"/s/{sid}").text.split('id="commands"')[1].split("其他操作")[0]
    assert citizen.run(sid, "rate", rating="dissatisfied", comment="没有说明理由。").status_code == 303
    assert clerk.run(sid, "reopen", reason="请补充说明理由并重新研究。").status_code == 303
    assert "已转送交办" in clerk.get(f"/s/{sid}").text


def test_supervision_lists_overdue_per_unit(app: Any, clock: FakeClock) -> None:
    sid = transferred(app)
    clock.advance(days=120)
    page = login(app, "clerk-wang").get("/supervision").text
    assert "区发展改革委" in page and sid in page
    unit_page = login(app, "jtj-sun").get("/supervision").text
    assert sid in unit_page  # the co-handling unit sees it too
    assert sid not in login(app, "cgj-wu").get("/supervision").text

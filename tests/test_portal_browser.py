"""The reference portal (examples/portal) in a real Chromium: what people see on its pages.

Debian's ``chromium`` driven by Playwright for Python through ``executable_path`` (no
browser download).  Without chromium or playwright these tests skip, saying why — except
under CI (``CI`` set), where that is a failure: a green CI that skipped the browser would
be lying.  Screenshots of the main pages go to ``build/portal-screenshots/`` (not committed).

The portal runs as a subprocess, as its README command runs it, with the demo clock at
2024-09-02 09:30 (implementation phase of the 2024 Yongchuan campaign) — and a second one
after the phase closed for the late-submission test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from portal_server import ROOT, portal

pytestmark = pytest.mark.browser

CHROMIUM_ENV = "JIANYI_FLOW_CHROMIUM"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "build" / "portal-screenshots"
STORE = "sqlite"
"""Where the portal under test keeps its data: ``memory``, or ``sqlite`` for a file of its own."""


def store_for(state: Path) -> str:
    return f"sqlite:///{state / 'jianyi.db'}" if STORE == "sqlite" else STORE


def unavailable(reason: str) -> NoReturn:
    """Skip locally, fail under CI (as tests/dbs.py does for the databases)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        unavailable(f"chromium is not installed (apt-get install chromium, or set {CHROMIUM_ENV})")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("portal")
    with portal(state, "--store", store_for(state), "--demo-clock", "2024-09-02T09:30") as url:
        yield url


class User:
    """One person's browser context, logged in as a demo account."""

    def __init__(self, browser: Any, base: str, account: str) -> None:
        self.base = base
        self.context = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 900})
        self.page = self.context.new_page()
        self.go("/login")
        with self.page.expect_navigation():
            self.page.click(f"#login-{account}")

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def text(self, selector: str = "main") -> str:
        text: str = self.page.inner_text(selector)
        return text

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def submit(self, title: str, *, confidential: bool = False, name: str = "张三丰",
               phone: str = "13812345678") -> str:
        """Fill in the citizen form and send it; the new suggestion's id."""
        self.go("/submit")
        self.fill_form(title, confidential=confidential, name=name, phone=phone)
        with self.page.expect_navigation():
            self.page.click("#submit")
        assert "/s/" in self.page.url, self.text()
        return self.page.url.rsplit("/", 1)[1]

    def fill_form(self, title: str, *, confidential: bool = False, name: str = "张三丰",
                  phone: str = "13812345678") -> None:
        p = self.page
        p.fill("[name=title]", title)
        p.fill("[name=subject]", "优化永川城区公交线路")
        p.fill("[name=problem]", f"早晚高峰公交拥挤，换乘不便。联系我：{phone}")
        p.fill("[name=measures]", "增开高峰区间车，调整站点，公布实时到站信息。")
        p.select_option("[name=area]", "A4")
        p.fill("[name=name]", name)
        p.fill("[name=phone]", phone)
        if confidential:
            p.check("[name=confidential]")
        p.check("[name=consent]")

    def command(self, sid: str | None, command: str, **fields: str | list[str]) -> int:
        """Run ``command`` through its form on the suggestion page; the response status."""
        if sid is not None:
            self.go(f"/s/{sid}")
        p = self.page
        form = f"#do-{command}"
        assert p.locator(form).count() == 1, f"no {command} button: {self.text()}"
        p.evaluate("document.querySelectorAll('details.command').forEach(d => d.open = true)")
        for name, value in fields.items():
            target = p.locator(f"{form} [name={name}]")
            if isinstance(value, list):
                for v in value:
                    p.check(f"{form} [name={name}][value={v}]")
            elif target.first.evaluate("e => e.tagName") == "SELECT":
                target.select_option(value)
            else:
                target.fill(value)
        with p.expect_navigation() as nav:
            p.click(f"#btn-{command}")
        status: int = nav.value.status if nav.value is not None else 0
        return status

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def users(browser: Any, base: str) -> Iterator[Any]:
    made: list[User] = []

    def login(account: str) -> User:
        user = User(browser, base, account)
        made.append(user)
        return user

    yield login
    for user in made:
        user.close()


def title() -> str:
    return f"公交线路优化建议-{uuid.uuid4().hex[:6]}"


def transferred(users: Any, *, confidential: bool = False) -> tuple[str, str]:
    """A suggestion submitted by 张三 and transferred by the office to FGW (lead) and JTJ (co)."""
    t = title()
    sid = users("zhangsan").submit(t, confidential=confidential)
    clerk = users("clerk-wang")
    assert clerk.command(sid, "register") == 200
    assert clerk.command(None, "transfer", lead_unit="FGW", co_units=["JTJ"]) == 200
    assert "区发展改革委" in clerk.text("#lead-unit")
    return sid, t


def test_walk_from_citizen_form_to_rated_reply(users: Any) -> None:
    citizen = users("zhangsan")
    citizen.go("/submit")
    citizen.shot("01-citizen-form")
    t = title()
    sid = citizen.submit(t)
    assert "建议已提交" in citizen.text(".flash")
    assert citizen.text("#state") == "已收到"

    clerk = users("clerk-wang")
    clerk.go("/office")
    assert t in clerk.text("table.list")
    clerk.shot("02-office-inbox")
    assert clerk.command(sid, "register") == 200
    assert "已完成：登记" in clerk.text(".flash")
    assert clerk.text("#state") == "已登记"
    clerk.shot("03-office-transfer")
    assert clerk.command(None, "transfer", lead_unit="FGW", co_units=["JTJ"]) == 200
    assert clerk.text("#state") == "已转送交办"

    unit = users("fgw-liu")
    unit.go("/unit")
    lead_rows = unit.page.locator("h2#lead + table").inner_text()
    assert t in lead_rows
    unit.shot("04-unit-queue")
    assert unit.command(sid, "research", findings="实地走访了三条线路并听取乘客意见。", method="field_visit") == 200
    assert unit.text("#state") == "已调研论证"
    assert unit.command(None, "decide", outcome="adopted") == 200
    assert unit.text("#outcome").startswith("采纳")
    reply = "已采纳：9月起增开早晚高峰区间车，并在站台公布实时到站信息。"
    assert unit.command(None, "reply", text=reply, form="online") == 200
    assert unit.text("#state") == "已回复"
    unit.shot("05-unit-suggestion")

    co = users("jtj-sun")
    co.go("/unit")
    assert t in co.page.locator("h2#co + p + table").inner_text()
    co.go(f"/s/{sid}")
    assert co.page.locator("#do-research").count() == 0  # only the lead unit researches and decides
    assert "当前没有您可以进行的操作" in co.text("#commands")

    citizen.go("/mine")
    row = citizen.page.locator(f"tr[data-id='{sid}']")
    assert row.locator(".state").inner_text() == "已回复"
    assert reply in row.locator(".reply").inner_text()
    assert citizen.command(sid, "rate", rating="satisfied", comment="很快就办了，谢谢。") == 200
    citizen.go("/mine")
    row = citizen.page.locator(f"tr[data-id='{sid}']")
    assert row.locator(".state").inner_text() == "已评价"
    assert row.locator(".rating").inner_text() == "满意"
    citizen.shot("06-citizen-mine")

    clerk.go(f"/s/{sid}/history")
    history = clerk.text("#history")
    for step in ("收到建议", "登记", "转送交办", "调研论证", "答复", "评价"):
        assert step in history
    clerk.shot("07-history")
    clerk.go("/supervision")
    assert "督办" in clerk.text("h1")
    clerk.shot("08-supervision")


def test_the_same_form_posted_twice_makes_one_suggestion(users: Any) -> None:
    citizen = users("lisi")
    citizen.go("/submit")
    t = title()
    citizen.fill_form(t, name="李四")
    statuses = citizen.page.evaluate("""async () => {
        const form = document.querySelector('#suggestion-form');
        const send = () => fetch(form.action, {method: 'POST', body: new URLSearchParams(new FormData(form)),
                                               redirect: 'manual'}).then(r => r.type);
        return Promise.all([send(), send()]);
    }""")
    assert statuses == ["opaqueredirect", "opaqueredirect"]  # both answered with the redirect to the suggestion
    with citizen.page.expect_navigation():
        citizen.page.click("#submit")  # and a third time, by the button
    citizen.go("/mine")
    assert citizen.page.locator("#mine tbody tr", has_text=t).count() == 1


def test_two_clerks_on_one_suggestion_one_wins(users: Any) -> None:
    sid = users("zhangsan").submit(title())
    wang, zhao = users("clerk-wang"), users("clerk-zhao")
    wang.go(f"/s/{sid}")
    zhao.go(f"/s/{sid}")
    assert wang.command(None, "register") == 200
    assert zhao.command(None, "register") == 409
    assert "已被他人处理" in zhao.text(".error")
    zhao.shot("09-conflict")
    assert zhao.text("#state") == "已登记"  # the page now shows what the other clerk did


def test_a_unit_cannot_open_another_units_suggestion(users: Any) -> None:
    sid, t = transferred(users)
    other = users("cgj-wu")
    response = other.go(f"/s/{sid}")
    assert response.status == 404
    assert other.text("h1") == "未找到该建议"
    assert t not in other.text()
    other.go("/unit")
    assert t not in other.text()


def test_a_command_in_the_wrong_state_shows_why(users: Any) -> None:
    citizen = users("zhangsan")
    sid = citizen.submit(title())
    assert citizen.page.locator("#do-rate").count() == 0  # not offered: nothing was replied yet
    # a hand-made (or outdated portal's) form for a command the state does not allow
    status = citizen.page.evaluate("""async (sid) => {
        const version = document.querySelector('[name=expected_version]').value;
        const body = new URLSearchParams({expected_version: version, idempotency_key: 'wrong-state-' + sid,
                                          rating: 'satisfied'});
        const r = await fetch('/s/' + sid + '/do/rate', {method: 'POST', body});
        document.open(); document.write(await r.text()); document.close();
        return r.status;
    }""", sid)
    assert status == 409
    message = citizen.text(".error")
    assert "已收到" in message and "不能进行" in message and "评价" in message
    citizen.shot("10-wrong-state")


def test_a_confidential_proposer_is_masked_for_the_unit(users: Any) -> None:
    sid, _ = transferred(users, confidential=True)
    unit = users("fgw-liu")
    unit.go(f"/s/{sid}")
    assert unit.text("#proposer-name") == "张**"
    page = unit.text()
    assert "张三丰" not in page and "13812345678" not in page
    assert "保密" in unit.text("#proposer")
    unit.shot("11-masked-for-unit")
    unit.go(f"/s/{sid}/history")
    history = unit.text()
    assert "张三丰" not in history and "13812345678" not in history
    clerk = users("clerk-wang")
    clerk.go(f"/s/{sid}")
    assert clerk.text("#proposer-name") == "张三丰"  # the office sees the proposer in full


def test_a_submission_after_the_phase_closed_is_refused(browser: Any, tmp_path: Path) -> None:
    with portal(tmp_path, "--store", store_for(tmp_path), "--demo-clock", "2024-12-02T10:00") as url:
        citizen = User(browser, url, "zhangsan")
        try:
            citizen.go("/submit")
            assert "已不在征集时间内" in citizen.text("#closed")
            citizen.fill_form(title())
            with citizen.page.expect_navigation() as nav:
                citizen.page.click("#submit")
            assert nav.value.status == 409
            message = citizen.text(".error")
            assert "不在" in message and "开放时间" in message
            citizen.shot("12-phase-closed")
            citizen.go("/mine")
            assert "还没有提交过建议" in citizen.text("#mine")
        finally:
            citizen.close()

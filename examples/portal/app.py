"""The portal's pages.  Every read and every command goes through one :class:`~jianyi_flow.Flow`.

One ``Portal`` per process holds the campaign, the store, the clock and the flow; FastAPI
runs the (synchronous) page functions in its thread pool, so request threads share that
one flow and store, as the library expects.  What a page does:

* who is asking: the session cookie names a demo account (:mod:`.accounts`) → an ``Actor``;
* reads: ``flow.get`` / ``flow.history`` / ``flow.list_suggestions`` with that actor — the
  library masks the proposer for whoever may not see them in full;
* buttons: ``flow.available_commands`` — the forms of the commands offered, and the reasons
  (in Chinese) others are not;
* commands: each form carries the version it was rendered from (``expected_version``: a
  stale form is refused, never applied) and an idempotency key generated when it was
  rendered (the same form posted twice is done once);
* errors: every ``JianyiFlowError`` is shown with its Chinese message.

The ``Server-Timing`` header of each response says how long the request took (``app``)
and how much of it was spent in the library (``flow``); benchmarks/portal_load.py reads it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jianyi_flow import (
    SHANGHAI,
    Actor,
    Clock,
    ConcurrencyConflict,
    Flow,
    IdempotencyKeyReused,
    InvalidTransition,
    JianyiFlowError,
    MemoryStore,
    NotFound,
    Order,
    PermissionDenied,
    PhaseClosed,
    Proposer,
    ProposerKind,
    Role,
    State,
    Store,
    Suggestion,
    SuggestionDraft,
    SystemClock,
    ValidationError,
    WindowClosed,
    make_flow,
)
from jianyi_flow.domain.campaign import Campaign
from jianyi_flow.presets import yongchuan_2024
from jianyi_flow.service.commands import ARGUMENTS

from . import forms
from .accounts import ACCOUNTS, UNIT_ROLES
from .compat import command_label, describe, labels, problems_of
from .democlock import DemoClock
from .settings import Settings

HERE = Path(__file__).resolve().parent
T = TypeVar("T")

HANDLING_STATES = (State.TRANSFERRED, State.RESEARCHED, State.ADOPTED, State.PARTIALLY_ADOPTED, State.DECLINED)
INBOX_TABS: Mapping[str, tuple[str, tuple[State, ...] | None]] = {
    "received": ("待登记", (State.RECEIVED,)),
    "to_transfer": ("待转办", (State.REGISTERED, State.RETURNED)),
    "objected": ("异议待核", (State.OBJECTED,)),
    "handling": ("办理中", HANDLING_STATES),
    "replied": ("已答复/已评价", (State.REPLIED, State.RATED)),
    "all": ("全部", None),
}
"""The office inbox's tabs: a title and the states it lists."""

STATUS: tuple[tuple[type[JianyiFlowError], int], ...] = (
    (NotFound, 404), (PermissionDenied, 403), (ValidationError, 422), (ConcurrencyConflict, 409),
    (InvalidTransition, 409), (PhaseClosed, 409), (WindowClosed, 409), (IdempotencyKeyReused, 409),
)
"""The HTTP status a page answers with after a library error (the page itself shows the Chinese message)."""


def status_of(exc: JianyiFlowError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def open_store(url: str, *, migrate: bool = False) -> Store:
    """``memory`` → a MemoryStore (one process only); a database URL → a SqlStore."""
    if url == "memory":
        return MemoryStore()
    from jianyi_flow.sql import SqlStore

    if migrate:
        return SqlStore.open(url, migrate=True)
    return SqlStore(url)


class Portal:
    """What one worker process shares between its request threads."""

    def __init__(self, settings: Settings, *, store: Store | None = None, clock: Clock | None = None) -> None:
        self.settings = settings
        self.campaign: Campaign = yongchuan_2024()
        self.store = store if store is not None else open_store(settings.store)
        self.demo_clock = DemoClock(settings.state_dir / "demo-clock.json") if settings.demo_clock else None
        self.clock: Clock = clock or self.demo_clock or SystemClock()
        self.flow: Flow = make_flow(self.campaign, self.store, self.clock)
        self.units = {u.code: u.name for u in self.campaign.units}
        self.worker: Any = None
        if settings.relay:
            self.start_relay()

    def start_relay(self) -> None:
        """Deliver notices to a spool file (an SMS gateway stand-in) and tick deadlines, in a thread."""
        from jianyi_flow.worker import SpoolSender, Worker

        sender = SpoolSender(self.settings.state_dir / "notices.jsonl")
        self.worker = Worker(self.flow, sender, interval=2.0, tick_every=dt.timedelta(minutes=10))
        threading.Thread(target=self.worker.run, name="portal-relay", daemon=True).start()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


# --- timing ------------------------------------------------------------------------------------


class ServerTiming:
    """ASGI middleware: ``Server-Timing: app;dur=<ms>, flow;dur=<ms>`` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})["flow_seconds"] = 0.0

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                total = (time.perf_counter() - started) * 1000
                spent = scope["state"]["flow_seconds"] * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={total:.2f}, flow;dur={spent:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)


@contextmanager
def in_library(request: Request) -> Iterator[None]:
    """Count the time spent inside the block as the library's (for ``Server-Timing``)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        request.state.flow_seconds += time.perf_counter() - started


# --- helpers for templates ---------------------------------------------------------------------


def local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(SHANGHAI).strftime(fmt)


def due_text(value: dt.datetime | None) -> str:
    """A deadline is the end of its Asia/Shanghai day: show the day."""
    return local(value, "%Y-%m-%d") if value is not None else ""


def new_key() -> str:
    return uuid.uuid4().hex


def create_app(settings: Settings | None = None, *, store: Store | None = None, clock: Clock | None = None) -> FastAPI:
    """The portal as an ASGI app (``uvicorn --factory examples.portal.app:create_app``)."""
    settings = settings or Settings.from_env()
    portal = Portal(settings, store=store, clock=clock)
    campaign = portal.campaign
    flow = portal.flow

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        portal.close()

    app = FastAPI(title="人民建议征集办理平台（示例）", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.portal = portal
    app.add_middleware(SessionMiddleware, secret_key=settings.secret, session_cookie="jianyi_portal",
                       same_site="lax", https_only=False, max_age=8 * 3600)
    app.add_middleware(ServerTiming)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.globals.update(labels=labels, units=portal.units, campaign=campaign, local=local, due_text=due_text,
                       command_label=command_label, state_label=lambda s: labels.code_label(labels.STATE, s))

    def actor_of(request: Request) -> Actor | None:
        account = request.session.get("account")
        return ACCOUNTS.get(account) if isinstance(account, str) else None

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        actor = actor_of(request)
        flash = request.session.pop("flash", None)
        return templates.TemplateResponse(request, name, {
            "actor": actor, "now": portal.clock.now(), "demo": portal.demo_clock is not None, "flash": flash,
            **context,
        }, status_code=status)

    def error_page(request: Request, exc: JianyiFlowError, **context: Any) -> HTMLResponse:
        code, message = describe(exc)
        if isinstance(exc, NotFound):
            return page(request, "not_found.html", 404, message=message)
        return page(request, "error.html", status_of(exc), code=code, message=message, **context)

    def lib(request: Request, call: Callable[[], T]) -> T:
        with in_library(request):
            return call()

    async def lib_async(request: Request, call: Callable[[], T]) -> T:
        """``lib`` from an async view: library calls block, so they run in the thread pool."""
        return await run_in_threadpool(lib, request, call)

    def login_required(request: Request, roles: Sequence[Role] | None = None) -> Actor | Response:
        actor = actor_of(request)
        if actor is None:
            return RedirectResponse("/login", status_code=303)
        if roles is not None and actor.role not in roles:
            return page(request, "forbidden.html", 403)
        return actor

    def home_of(actor: Actor) -> str:
        if actor.role is Role.PROPOSER:
            return "/mine"
        if actor.role is Role.COLLECTION_OFFICE:
            return "/office"
        if actor.role in UNIT_ROLES:
            return "/unit"
        return "/leadership"

    # --- login -----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        actor = actor_of(request)
        return RedirectResponse(home_of(actor) if actor else "/login", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        return page(request, "login.html", accounts=list(ACCOUNTS.values()))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        account = form.get("account")
        if not isinstance(account, str) or account not in ACCOUNTS:
            return page(request, "login.html", 400, accounts=list(ACCOUNTS.values()), message="请选择一个演示账号。")
        request.session.clear()
        request.session["account"] = account
        return RedirectResponse(home_of(ACCOUNTS[account]), status_code=303)

    @app.post("/logout")
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- citizen ---------------------------------------------------------------------------

    @app.get("/submit", response_class=HTMLResponse)
    def submit_form(request: Request) -> Response:
        actor = login_required(request, (Role.PROPOSER,))
        if not isinstance(actor, Actor):
            return actor
        return page(request, "submit.html", key=new_key(), values={"name": actor.name or ""},
                    open=campaign.is_open("receive", portal.clock.now()))

    @app.post("/submit", response_class=HTMLResponse)
    async def submit(request: Request) -> Response:
        actor = login_required(request, (Role.PROPOSER,))
        if not isinstance(actor, Actor):
            return actor
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}

        def text(name: str) -> str | None:
            return values.get(name, "").strip() or None

        key = text("idempotency_key") or new_key()

        def again(status: int, message: str, problems: Mapping[str, str] | None = None) -> HTMLResponse:
            return page(request, "submit.html", status, key=key, values=values, message=message,
                        problems=problems or {}, open=campaign.is_open("receive", portal.clock.now()))

        if not values.get("consent"):
            return again(422, "请阅读并勾选同意《个人信息使用说明》：您的联系方式仅用于办理和答复本建议。")
        draft = SuggestionDraft(
            title=text("title") or "", subject=text("subject") or "", problem=text("problem") or "",
            measures=text("measures") or "", area=text("area") or "", topic=text("topic"),
            proposer=Proposer(name=text("name") or "", kind=text("kind") or ProposerKind.CITIZEN,
                              phone=text("phone"), address=text("address"),
                              confidential=bool(values.get("confidential")), account=actor.id),
        )
        try:
            s = await lib_async(request, lambda: flow.receive(draft, actor, idempotency_key=key))
        except JianyiFlowError as exc:
            _code, message = describe(exc)
            problems = problems_of(exc)
            if len(problems) > 1:
                message = f"有{len(problems)}处需要修改，请看各栏下方的提示。"
            return again(status_of(exc), message, problems)
        request.session["flash"] = f"建议已提交（编号 {s.id[:8]}），区征集办将在15日内登记转办。"
        return RedirectResponse(f"/s/{s.id}", status_code=303)

    @app.get("/mine", response_class=HTMLResponse)
    def mine(request: Request, cursor: str | None = None) -> Response:
        actor = login_required(request, (Role.PROPOSER,))
        if not isinstance(actor, Actor):
            return actor
        try:
            rows = lib(request, lambda: flow.list_suggestions(actor, order=Order.RECEIVED, descending=True,
                                                              cursor=cursor, limit=20))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        return page(request, "mine.html", page_=rows)

    # --- office ----------------------------------------------------------------------------

    @app.get("/office", response_class=HTMLResponse)
    def office(request: Request, tab: str = "received", cursor: str | None = None) -> Response:
        actor = login_required(request, (Role.COLLECTION_OFFICE,))
        if not isinstance(actor, Actor):
            return actor
        title, states = INBOX_TABS.get(tab, INBOX_TABS["received"])
        try:
            rows = lib(request, lambda: flow.list_suggestions(actor, states=states, order=Order.RECEIVED,
                                                              descending=tab in ("replied", "all"),
                                                              cursor=cursor, limit=25))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        return page(request, "office.html", tabs=INBOX_TABS, tab=tab, title=title, page_=rows)

    # --- handling units --------------------------------------------------------------------

    @app.get("/unit", response_class=HTMLResponse)
    def unit(request: Request, closed: bool = False) -> Response:
        actor = login_required(request, tuple(UNIT_ROLES))
        if not isinstance(actor, Actor):
            return actor
        states = None if closed else (*HANDLING_STATES, State.OBJECTED, State.REPLIED)
        try:
            lead = lib(request, lambda: flow.list_suggestions(actor, relation="lead", states=states,
                                                              order=Order.RECEIVED, limit=100))
            co = lib(request, lambda: flow.list_suggestions(actor, relation="co_handling", states=states,
                                                            order=Order.RECEIVED, limit=100))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        pending = [s for s in lead.items if s.extension_request is not None]
        return page(request, "unit.html", lead=lead, co=co, pending=pending, closed=closed)

    # --- leadership ------------------------------------------------------------------------

    @app.get("/leadership", response_class=HTMLResponse)
    def leadership(request: Request) -> Response:
        actor = login_required(request)
        if not isinstance(actor, Actor):
            return actor
        try:
            rows = lib(request, lambda: flow.list_suggestions(actor, order=Order.RECEIVED, descending=True,
                                                              limit=50))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        return page(request, "leadership.html", page_=rows)

    # --- supervision and report ------------------------------------------------------------

    @app.get("/supervision", response_class=HTMLResponse)
    def supervision(request: Request, days: int = 3) -> Response:
        actor = login_required(request, (Role.COLLECTION_OFFICE, *UNIT_ROLES))
        if not isinstance(actor, Actor):
            return actor
        days = min(max(days, 1), 30)
        try:
            overdue = lib(request, lambda: flow.overdue(actor, limit=500))
            soon = lib(request, lambda: flow.due_soon(actor, dt.timedelta(days=days), limit=500))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        per_unit: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for i, rows in enumerate((overdue, soon)):
            for s in rows:
                per_unit[responsible(s)][i] += 1
        table = sorted(per_unit.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        return page(request, "supervision.html", overdue=overdue, soon=soon, per_unit=table, days=days,
                    responsible=responsible)

    def responsible(s: Suggestion) -> str:
        """Who must act now: the lead unit while it holds the suggestion, else the office."""
        if s.lead_unit and s.state in HANDLING_STATES:
            return portal.units.get(s.lead_unit, s.lead_unit)
        return "区征集办"

    @app.get("/report", response_class=HTMLResponse)
    def report(request: Request) -> Response:
        actor = login_required(request, (Role.COLLECTION_OFFICE, Role.LEADERSHIP))
        if not isinstance(actor, Actor):
            return actor
        from jianyi_flow.render import render_html
        from jianyi_flow.report import build_report

        try:
            built = lib(request, lambda: build_report(campaign, portal.store, portal.clock.now()))
            html = lib(request, lambda: render_html(built))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        return HTMLResponse(html)

    # --- one suggestion ----------------------------------------------------------------------

    def detail(request: Request, actor: Actor, sid: str, status: int = 200, *, message: str | None = None,
               failed: str | None = None, values: Mapping[str, Any] | None = None,
               problems: Mapping[str, str] | None = None) -> Response:
        try:
            s = lib(request, lambda: flow.get(sid, actor))
            offered = lib(request, lambda: flow.available_commands(actor, sid))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        commands = [(c.command, forms.fields(c.command, c.arguments, campaign), new_key())
                    for c in offered.available]
        reasons = [(u.command, describe(u.error)[1]) for u in offered.unavailable]
        return page(request, "suggestion.html", status, s=s, commands=commands, reasons=reasons,
                    message=message, failed=failed, values=values or {}, problems=problems or {})

    @app.get("/s/{sid}", response_class=HTMLResponse)
    def suggestion(request: Request, sid: str) -> Response:
        actor = login_required(request)
        if not isinstance(actor, Actor):
            return actor
        return detail(request, actor, sid)

    @app.post("/s/{sid}/do/{command}", response_class=HTMLResponse)
    async def run_command(request: Request, sid: str, command: str) -> Response:
        actor = login_required(request)
        if not isinstance(actor, Actor):
            return actor
        arguments = ARGUMENTS.get(command)
        if arguments is None:
            return page(request, "not_found.html", 404, message="没有这项操作。")
        form = await request.form()
        version = form.get("expected_version")
        key = form.get("idempotency_key")
        kwargs = forms.parse(arguments, form)
        method = getattr(flow, command)
        expected = int(version) if isinstance(version, str) and version.isdigit() else version
        try:
            await lib_async(request, lambda: method(sid, actor, expected_version=expected,
                                                    idempotency_key=key if isinstance(key, str) else None, **kwargs))
        except JianyiFlowError as exc:
            _code, message = describe(exc)
            if isinstance(exc, NotFound):
                return page(request, "not_found.html", 404, message=message)
            values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            return await run_in_threadpool(detail, request, actor, sid, status_of(exc),
                                           message=message, failed=command, values=values,
                                           problems=problems_of(exc))
        request.session["flash"] = f"已完成：{command_label(command)}"
        return RedirectResponse(f"/s/{sid}", status_code=303)

    @app.get("/s/{sid}/history", response_class=HTMLResponse)
    def history(request: Request, sid: str) -> Response:
        actor = login_required(request)
        if not isinstance(actor, Actor):
            return actor
        try:
            s = lib(request, lambda: flow.get(sid, actor))
            events = lib(request, lambda: flow.history(sid, actor))
        except JianyiFlowError as exc:
            return error_page(request, exc)
        return page(request, "history.html", s=s, events=events, changes=change_rows)

    def change_rows(changes: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The fields an event set, labelled, with codes turned into names (for the history page)."""
        out: list[tuple[str, str]] = []
        for name, value in changes.items():
            label = labels.field_label(name)
            if not label or value in (None, "", [], ()):
                continue
            if name in ("lead_unit", "recommending_unit"):
                value = portal.units.get(value, value)
            elif name == "co_units":
                value = "、".join(portal.units.get(u, u) for u in value)
            elif name == "area":
                value = campaign.area(value).name if value in campaign.area_codes else value
            elif name == "proposer" and isinstance(value, Mapping):
                value = "　".join(str(x) for x in (value.get("name"), value.get("phone"), value.get("address")) if x)
            elif name in ("outcome", "rating", "method", "form"):
                value = labels.code_label(next((t for t in labels.BY_ENUM.values() if value in t), {}), value)
            out.append((label, str(value)))
        return out

    # --- demo clock and notices ------------------------------------------------------------

    @app.get("/admin/clock", response_class=HTMLResponse)
    def clock_form(request: Request) -> Response:
        return page(request, "clock.html", phases=campaign.phases)

    @app.post("/admin/clock", response_class=HTMLResponse)
    async def clock_set(request: Request) -> Response:
        if portal.demo_clock is None:
            return page(request, "clock.html", 409, phases=campaign.phases,
                        message="本实例使用系统时间；启动时加 --demo-clock 才能调整演示时间。")
        form = await request.form()
        raw = form.get("at")
        try:
            at = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            at = None
        if at is None:
            return page(request, "clock.html", 422, phases=campaign.phases,
                        message="请输入日期时间，如 2024-09-02T09:30。")
        if at.tzinfo is None:
            at = at.replace(tzinfo=SHANGHAI)
        portal.demo_clock.set(at)
        request.session["flash"] = f"演示时间已设为 {local(at)}"
        return RedirectResponse("/admin/clock", status_code=303)

    @app.get("/notices", response_class=HTMLResponse)
    def notices(request: Request) -> Response:
        actor = login_required(request, (Role.COLLECTION_OFFICE,))
        if not isinstance(actor, Actor):
            return actor
        from jianyi_flow.worker import SpoolSender

        spool = portal.settings.state_dir / "notices.jsonl"
        rows = SpoolSender(spool).delivered()[-50:] if spool.exists() else []
        return page(request, "notices.html", rows=list(reversed(rows)), relay=portal.worker is not None)

    return app



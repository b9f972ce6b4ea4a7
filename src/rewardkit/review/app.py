"""The labeling page: ``create_review_app(factory, config)``, a FastAPI app with server-rendered Jinja2
templates (autoescape on) and one small plain-JS file for the keyboard shortcuts and the timer.

Run it with ``rewardkit review serve``. Routes: ``/login`` (a personal token), ``/label`` (one item at a time,
POST a choice), ``/undo``, ``/guidelines``, ``/admin`` (queue, throughput, annotators, gold accuracy,
agreement, plots; admins only), ``/logout``, ``/health``. Every POST carries a CSRF token (see ``auth.py``); a
client's mistake is a 4xx page naming it and changes nothing; the store is touched off the event loop.
"""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker

from rewardkit.review import auth
from rewardkit.review.agreement import summary
from rewardkit.review.plots import admin_plots
from rewardkit.review.render import render_markdown, render_prompt
from rewardkit.store.engine import session_scope
from rewardkit.store.queries import aware
from rewardkit.store.review import (
    ReviewError,
    annotator_by_token_hash,
    annotator_progress,
    item_labels,
    next_assignment,
    queue_stats,
    save_label,
    undo_last,
)
from rewardkit.store.tables import ReviewAnnotatorRow

HERE = Path(__file__).parent
SESSION_COOKIE = "rk_review_session"
PRE_COOKIE = "rk_review_pre"
MAX_FORM_BYTES = 64 * 1024
LABELS = {"a": "A (left)", "b": "B (right)", "tie": "Tie", "both_bad": "Both bad", "skip": "Skip"}


@dataclass(frozen=True)
class ReviewConfig:
    guidelines: Path | None = None
    """A markdown file shown beside every item and at /guidelines."""
    gold_rate: float = 0.1
    """Share of new assignments that are gold items (known answers), while gold items are left."""
    assignment_minutes: float = 30.0
    """How long an annotator holds an item before it returns to the queue."""
    session_hours: float = 12.0
    attributes: tuple[str, ...] = ()
    """Attributes an annotator may say a label is about (helpfulness, harmlessness...); empty: overall only."""
    secret: bytes = b""
    """Signs cookies; empty: a random one per process (sessions end when the server restarts)."""
    secure_cookies: bool = False
    """Mark cookies Secure (behind https)."""


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def create_review_app(factory: sessionmaker[Session], config: ReviewConfig = ReviewConfig()) -> FastAPI:
    secret = config.secret or secrets.token_bytes(32)
    ttl = timedelta(minutes=config.assignment_minutes)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    guidelines_html = render_markdown(config.guidelines.read_text(encoding="utf-8")) if config.guidelines else None
    app = FastAPI(title="rewardkit review", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        nonce, pre = _nonce(request), None
        if nonce is None:  # before login: a signed pre-session cookie anchors the login form's CSRF token
            pre = auth.make_pre_cookie(secret)
            nonce = pre.rsplit(".", 1)[0]
        headers = {
            # no inline script anywhere: a script that slipped through escaping still could not run
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
        html = env.get_template(template).render(csrf=auth.csrf_token(secret, nonce), labels=LABELS, **context)
        response = HTMLResponse(html, status_code=status, headers=headers)
        if pre is not None:
            _set_cookie(response, PRE_COOKIE, pre, None)
        return response

    def _set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict", secure=config.secure_cookies, path="/"
        )

    def _session(request: Request) -> auth.Session | None:
        return auth.read_session_cookie(secret, request.cookies.get(SESSION_COOKIE), datetime.now(UTC))

    def _nonce(request: Request) -> str | None:
        session = _session(request)
        if session is not None:
            return session.nonce
        return auth.read_pre_cookie(secret, request.cookies.get(PRE_COOKIE))

    async def form(request: Request) -> dict[str, str]:
        """The urlencoded form, CSRF-checked: 403 without a matching token, 413 when too large."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, f"form too large ({len(body)} bytes; at most {MAX_FORM_BYTES})")
        fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if not auth.csrf_ok(secret, _nonce(request), fields.get("csrf")):
            raise _Refused(403, "the form's CSRF token is missing or wrong: reload the page and try again")
        return fields

    def annotator(request: Request) -> ReviewAnnotatorRow:
        session = _session(request)
        if session is None:
            raise _Refused(401, "not logged in")

        def lookup() -> ReviewAnnotatorRow | None:
            with factory() as s:
                return s.get(ReviewAnnotatorRow, session.name)

        row = lookup()  # a primary-key read: cheap enough on the loop's thread pool below
        if row is None or aware(row.expires_at) <= datetime.now(UTC):
            raise _Refused(401, "your token has expired or was revoked: ask for a new one")
        return row

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> Response:
        if exc.status == 401 and request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return page(request, "error.html", status=exc.status, message=exc.message)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse("/label", status_code=303)

    @app.get("/login")
    async def login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", user=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        fields = await form(request)
        token = fields.get("token", "").strip()
        now = datetime.now(UTC)

        def check() -> ReviewAnnotatorRow | None:
            with factory() as s:
                return annotator_by_token_hash(s, auth.hash_token(token)) if token else None

        row = await run_in_threadpool(check)
        if row is None:
            return page(request, "login.html", status=401, user=None, error="unknown token")
        if aware(row.expires_at) <= now:
            return page(request, "login.html", status=401, user=None, error="this token has expired: ask for a new one")
        expires = min(aware(row.expires_at), now + timedelta(hours=config.session_hours))
        response = RedirectResponse("/admin" if fields.get("next") == "admin" else "/label", status_code=303)
        _set_cookie(response, SESSION_COOKIE, auth.make_session_cookie(secret, row.name, expires), None)
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await form(request)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/label")
    async def label_page(request: Request) -> HTMLResponse:
        user = await run_in_threadpool(annotator, request)
        now = datetime.now(UTC)
        gold, swap = random.random() < config.gold_rate, random.random() < 0.5

        def fetch() -> tuple[Any, dict[str, Any]]:
            with session_scope(factory) as s:
                assignment = next_assignment(s, annotator=user.name, now=now, ttl=ttl, gold=gold, swap=swap)
                return assignment, annotator_progress(s, user.name)

        assignment, progress = await run_in_threadpool(fetch)
        if assignment is None:
            return page(request, "label.html", user=user, item=None, progress=progress, guidelines=guidelines_html)
        item = assignment.item
        sides = [item.responses[1], item.responses[0]] if assignment.swap else list(item.responses[:2])
        return page(
            request,
            "label.html",
            user=user,
            item=item,
            prompt=render_prompt(item.prompt),
            left=render_markdown(sides[0]["text"]),
            right=render_markdown(sides[1]["text"]),
            elapsed=max(0, int((now - assignment.assigned_at).total_seconds())),
            attributes=config.attributes,
            progress=progress,
            guidelines=guidelines_html,
        )

    @app.post("/label")
    async def label(request: Request) -> Response:
        user = await run_in_threadpool(annotator, request)
        fields = await form(request)
        try:
            item_id = int(fields.get("item_id", ""))
        except ValueError:
            raise _Refused(
                400, f"field 'item_id': expected an item number, got {fields.get('item_id', '')!r}"
            ) from None
        attribute = fields.get("attribute") or None
        if attribute is not None and attribute not in config.attributes:
            raise _Refused(400, f"field 'attribute': expected one of {', '.join(config.attributes) or '(none)'}")
        now = datetime.now(UTC)

        def write() -> None:
            with session_scope(factory) as s:
                save_label(
                    s,
                    annotator=user.name,
                    item_id=item_id,
                    shown_choice=fields.get("choice", ""),
                    now=now,
                    rationale=fields.get("rationale"),
                    attribute=attribute,
                )

        try:
            await run_in_threadpool(write)
        except ReviewError as exc:
            raise _Refused(409, str(exc)) from None
        return RedirectResponse("/label", status_code=303)

    @app.post("/undo")
    async def undo(request: Request) -> Response:
        user = await run_in_threadpool(annotator, request)
        await form(request)
        now = datetime.now(UTC)

        def write() -> int | None:
            with session_scope(factory) as s:
                return undo_last(s, annotator=user.name, now=now, ttl=ttl)

        if await run_in_threadpool(write) is None:
            raise _Refused(409, "nothing to undo")
        return RedirectResponse("/label", status_code=303)

    @app.get("/guidelines")
    async def guidelines(request: Request) -> HTMLResponse:
        user = await run_in_threadpool(annotator, request)
        return page(request, "guidelines.html", user=user, guidelines=guidelines_html)

    @app.get("/admin")
    async def admin(request: Request) -> HTMLResponse:
        user = await run_in_threadpool(annotator, request)
        if not user.admin:
            raise _Refused(403, "the admin view is for admins (rewardkit review annotator add NAME --admin)")
        now = datetime.now(UTC)

        def read() -> tuple[Any, dict[str, Any]]:
            with factory() as s:
                return queue_stats(s, now=now), summary(item_labels(s))

        stats, agreement = await run_in_threadpool(read)
        plots = await run_in_threadpool(admin_plots, stats, agreement)
        return page(request, "admin.html", user=user, stats=stats, agreement=agreement, plots=plots, fmt=_fmt)

    return app


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

"""The labeling page in a real browser: Playwright driving the system Chromium (headless) against a live
``rewardkit review serve`` subprocess on a fresh SQLite store. Skips with the reason when Playwright or
/usr/bin/chromium is missing. Screenshots go to the test's tmp folder (and to $RK_REVIEW_SCREENSHOTS when set).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from rewardkit.store import open_store, session_scope
from rewardkit.store.queries import ComparisonFilter, iter_comparisons
from rewardkit.store.review import NewItem, enqueue
from rewardkit.store.tables import ReviewLabelRow

CHROMIUM = Path("/usr/bin/chromium")
SRC = Path(__file__).resolve().parents[2] / "src"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install playwright)"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"),
]


@dataclass
class Live:
    url: str
    db: str
    home: Path
    factory: object

    def cli(self, *args: str) -> str:
        env = dict(os.environ, RK_HOME=str(self.home), RK_DATABASE_URL=self.db, PYTHONPATH=str(SRC))
        done = subprocess.run(
            [sys.executable, "-m", "rewardkit.cli.main", "review", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def token(self, name: str, *extra: str) -> str:
        return json.loads(self.cli("annotator", "add", name, "--json", *extra))["token"]

    def enqueue(self, items: list[NewItem]) -> None:
        with session_scope(self.factory) as s:
            enqueue(s, items, now=datetime.now(UTC))

    def comparisons(self) -> list:
        with self.factory() as s:
            return [c.comparison for c in iter_comparisons(s, ComparisonFilter(sources=("review",)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    db = f"sqlite:///{tmp_path / 'review.db'}"
    factory = open_store(db)
    guidelines = tmp_path / "guidelines.md"
    guidelines.write_text("# Guidelines\n\nPrefer the **correct** answer; then the clearer one.\n")
    port = _free_port()
    env = dict(os.environ, RK_HOME=str(tmp_path), RK_DATABASE_URL=db, PYTHONPATH=str(SRC))
    cmd = [sys.executable, "-m", "rewardkit.cli.main", "review", "serve", "--port", str(port), "--gold-rate", "0"]
    server = subprocess.Popen([*cmd, "--guidelines", str(guidelines)], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"review server did not start: {server.stderr.read() if server.stderr else ''}")
        time.sleep(0.2)
    try:
        yield Live(url, db, tmp_path, factory)
    finally:
        server.terminate()
        server.wait(10)
        factory.kw["bind"].dispose()


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        yield b
        b.close()


def _shot(page: object, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / name
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("RK_REVIEW_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def _login(browser: object, live: Live, token: str) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_url(f"{live.url}/label")
    return page


def _press(page: object, key: str) -> None:
    """Press a shortcut and wait for the page the form post leads to."""
    with page.expect_navigation():
        page.keyboard.press(key)


def _item(page: object) -> tuple[int, str, str]:
    return (
        int(page.get_attribute("#item", "data-item")),
        page.inner_text("#left .md").strip(),
        page.inner_text("#right .md").strip(),
    )


def _pair(i: int, needed: int = 1, prompt: str | None = None) -> NewItem:
    texts = ({"text": f"answer one to question {i}"}, {"text": f"answer two to question {i}"})
    return NewItem(prompt or f"question {i}", texts, {"kind": "file"}, "uncertainty", float(i), needed)


def test_label_five_with_the_keyboard_undo_one(live: Live, browser: object, tmp_path: Path) -> None:
    live.enqueue([_pair(i) for i in range(6)])
    page = _login(browser, live, live.token("ann"))
    assert "Prefer the" in page.text_content(".guidelines")  # the guidelines file, rendered
    picked: dict[int, str] = {}  # item -> the text shown on the side chosen
    for n in range(5):
        item_id, left, right = _item(page)
        key = "a" if n % 2 == 0 else "b"
        picked[item_id] = left if key == "a" else right
        if n == 0:
            _shot(page, tmp_path, "review-label.png")
        _press(page, key)
    assert page.inner_text("#labelled") == "5"
    _press(page, "u")  # undo the fifth label: its item comes back
    assert _item(page)[0] == item_id
    assert page.inner_text("#labelled") == "4"
    del picked[item_id]

    stored = live.comparisons()
    assert len(stored) == 4
    with live.factory() as s:
        swaps = {r.item_id: r.swap for r in s.query(ReviewLabelRow)}
    for c in stored:
        chosen = c.responses[0].text if c.judgement.choice == "a" else c.responses[1].text
        assert chosen == picked[c.metadata["review_item_id"]]  # the swap was undone
        assert c.metadata["swap"] == swaps[c.metadata["review_item_id"]]
        assert c.annotator.kind == "human" and c.metadata["seconds"] >= 0


def test_model_output_is_shown_as_text(live: Live, browser: object, tmp_path: Path) -> None:
    payload = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    live.enqueue([NewItem(f"say {payload}", ({"text": payload}, {"text": "`code` and **bold**"}), {}, "random", 1.0)])
    page = _login(browser, live, live.token("ann"))
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    shown = page.inner_text("#item")
    assert "<script>window.__xss = 1</script>" in shown and 'onerror="window.__xss = 2"' in shown
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#item img").count() == 0 and page.locator("#item script").count() == 0
    assert page.locator("#item code").count() >= 1  # markdown still rendered
    assert dialogs == []


def test_a_form_without_its_csrf_token_is_refused(live: Live, browser: object) -> None:
    live.enqueue([_pair(1)])
    page = _login(browser, live, live.token("ann"))
    page.evaluate("document.querySelector('#label-form input[name=csrf]').remove()")
    with page.expect_navigation():
        page.keyboard.press("a")
    assert "CSRF" in page.inner_text("#error")
    assert live.comparisons() == []
    # the session cookie is HttpOnly and SameSite=Strict: page scripts cannot read it
    assert page.evaluate("document.cookie") == ""
    [cookie] = [c for c in page.context.cookies() if c["name"] == "rk_review_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_two_annotators_kappa_and_the_admin_page(live: Live, browser: object, tmp_path: Path) -> None:
    # 4 items labelled by both, in stored order: x = a a a b, y = a b b b
    # p_o = 2/4; p_e = 3/4 * 1/4 + 1/4 * 3/4 = 3/8; kappa = (1/2 - 3/8) / (5/8) = 0.2
    # alpha: o_aa = o_ab = o_ba = o_bb = 2, n_a = n_b = 4, n = 8: 1 - (4/8) / (2*16/56) = 0.125
    want = {"x": "aaab", "y": "abbb"}
    live.enqueue([_pair(i, needed=2) for i in range(4)])
    admin_token = live.token("boss", "--admin")
    for who in ("x", "y"):
        page = _login(browser, live, live.token(who))
        for _ in range(4):
            item_id, left, _right = _item(page)
            question = int(page.inner_text(".prompt").split()[-1])
            stored_choice = want[who][question]
            wanted_text = f"answer {'one' if stored_choice == 'a' else 'two'} to question {question}"
            _press(page, "a" if left == wanted_text else "b")
        assert page.locator("#empty").count() == 1
        page.context.close()
    admin = _login(browser, live, admin_token)
    admin.goto(f"{live.url}/admin")
    assert admin.inner_text("#kappa .kappa") == "0.200"
    assert admin.inner_text("#percent") == "0.500"
    assert admin.inner_text("#alpha") == "0.125"
    assert admin.inner_text("#overlap") == "4"
    assert admin.inner_text("tr[data-annotator=x] .labels") == "4"
    assert admin.inner_text("tr[data-annotator=y] .labels") == "4"
    assert "uncertainty" in admin.inner_text("#queue")
    assert admin.locator("img[alt='pairwise kappa']").count() == 1
    _shot(admin, tmp_path, "review-admin.png")


def _client_login(live: Live, token: str) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=live.url)
    page = client.get("/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client, client.post("/login", data={"token": token, "csrf": csrf})


def _csrf(response: httpx.Response) -> str:
    return response.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_bad_requests_get_clear_errors_and_change_nothing(live: Live) -> None:
    live.enqueue([_pair(1), _pair(2)])
    # an expired token
    expired = live.token("old", "--days", "0.000001")
    time.sleep(0.2)
    client, response = _client_login(live, expired)
    assert response.status_code == 401 and "expired" in response.text
    # a label for an item not assigned to you, and a label twice
    client, response = _client_login(live, live.token("ann"))
    page = client.get("/label")
    held = int(page.text.split('data-item="', 1)[1].split('"', 1)[0])
    other = 3 - held
    r = client.post("/label", data={"item_id": str(other), "choice": "a", "csrf": _csrf(page)})
    assert r.status_code == 409 and "not assigned to you" in r.text
    assert live.comparisons() == []
    r = client.post("/label", data={"item_id": str(held), "choice": "a", "csrf": _csrf(page)})
    assert r.status_code == 303 and len(live.comparisons()) == 1  # saved; redirected to the next item
    r = client.post("/label", data={"item_id": str(held), "choice": "b", "csrf": _csrf(page)})
    assert r.status_code == 409 and "labelled by you already" in r.text
    r = client.post("/label", data={"item_id": "x1", "choice": "b", "csrf": _csrf(page)})
    assert r.status_code == 400 and "item_id" in r.text
    [c] = live.comparisons()
    assert c.judgement.choice in ("a", "b")
    # a non-admin on the admin view
    assert client.get("/admin").status_code == 403

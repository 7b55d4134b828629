"""Hostile HTML mail (tests/data/hostile/), through the pipeline and shown by the inbox page in
headless Chromium: no script runs, and nothing is fetched from anywhere but Buzón itself until the
reader clicks "Show images" (issue 7, "Hostile input, proven").

Every URL in the corpus points at ``evil.example``; the browser test points that name at a local HTTP
server that records what it is asked for, so a fetch that got past the sanitiser would be seen there
as well as in Playwright's request log.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from buzon.inbound import pipeline
from buzon.messages.models import Message, MessageStatus
from tests.inbound.helpers import free_agent_in_group, store_raw, support_account
from tests.support.browser import screenshot, sign_in

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"
FILES = sorted(HOSTILE.glob("*.eml"))

# What must never survive sanitising, in the stored HTML (lower-cased).
FORBIDDEN = [
    r"<script", r"<style", r"<link", r"<meta", r"<base", r"<iframe", r"<frame", r"<object", r"<embed",
    r"<applet", r"<form", r"<input", r"<button", r"<textarea", r"<svg", r"<math", r"<portal", r"<video",
    r"<audio", r"<source", r"\son[a-z]+\s*=", r"javascript:", r"vbscript:", r"data:", r"expression\(",
    r"url\(", r"srcset", r"background=", r"\sstyle=", r"formaction", r"poster=", r"lowsrc", r"dynsrc",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_hostile_html_is_stored_sanitised(path):
    raw = store_raw(path.read_bytes(), support_account())
    assert pipeline.run_pipeline(raw.pk) == "processed"
    message = Message.objects.get(raw=raw)
    assert message.status == MessageStatus.PROCESSED
    html = message.html.lower()
    for pattern in FORBIDDEN:
        assert not re.search(pattern, html), (pattern, message.html)


class _Recorder(BaseHTTPRequestHandler):
    """The attacker's server: answers everything with a tiny image and remembers each path."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.hits.append(self.path)
        body = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00" \
               b"\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def evil_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_hostile_html_in_a_real_browser_runs_no_script_and_fetches_nothing(browser_page, live_server, evil_server):
    evil_host, hits = evil_server
    _user, _agent, group = free_agent_in_group()
    account = support_account(agent_group=group)
    ids = []
    for path in FILES:
        raw = store_raw(path.read_bytes().replace(b"evil.example", evil_host.encode()), account)
        assert pipeline.run_pipeline(raw.pk) == "processed", path.name
        ids.append(Message.objects.get(raw=raw).pk)

    page = browser_page
    requests: list[str] = []
    dialogs: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: console.append(message.text))
    # The trap: a script that ran anywhere it could reach would set or read these.
    page.add_init_script("window.__pwned = undefined; window.alert = () => { window.__pwned = 'alert'; };")
    sign_in(page, "lucia", "pw-lucia-123")
    page.goto("/inbox/")
    assert page.locator("#inbox-list a").count() == len(FILES)
    for pk in ids:
        page.goto(f"/inbox/{pk}/")
        page.wait_for_load_state("load")  # not "networkidle": a busy shared machine makes it time out
        page.wait_for_timeout(300)  # room for anything the message would fetch or run once loaded
        assert page.evaluate("window.__pwned") is None, pk
        frame = page.frame_locator("#message-html")
        assert frame.locator("body").count() == 1  # the message itself is shown
    screenshot(page, "hostile-html-last-message")

    assert not dialogs and not [c for c in console if "pwned" in c.lower()], (dialogs, console)
    assert hits == [], hits  # the attacker's server saw nothing
    outside = [url for url in requests if not (url.startswith(live_server.url) or url.startswith(("about:", "data:")))]
    assert outside == [], outside

    # The trap is armed: when the reader asks for the images, the remote pixel is fetched.
    pixel = Message.objects.get(subject="Remote images and fonts").pk
    page.goto(f"/inbox/{pixel}/")
    page.click("#show-images")
    page.wait_for_load_state("load")
    for _ in range(100):  # the frame's images load after the page's own load event
        if "/pixel.gif" in hits:
            break
        page.wait_for_timeout(100)
    assert "/pixel.gif" in hits, hits
    assert not [h for h in hits if not h.endswith((".gif", ".gif?second=1", ".png"))], hits  # images only

"""Inline images: ``cid:`` references in the HTML body shown from the message's own parts, through
the authenticated attachment URL, never fetched from anywhere else (and never as SVG)."""

from __future__ import annotations

import base64
import html as html_lib
import re
import struct
import zlib

import pytest
from django.contrib.auth.models import User

from buzon.inbound import pipeline
from buzon.inbound.mail.inline import link_inline_images
from buzon.messages.models import Attachment, Message
from buzon.web import views_inbox
from tests.inbound.helpers import free_agent_in_group, store_raw, support_account
from tests.support.browser import screenshot, sign_in


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


LOGO = _png(120, 40, (200, 30, 30))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _related_mail() -> bytes:
    def b64(data: bytes) -> str:
        return base64.encodebytes(data).decode().replace("\n", "\r\n")

    return (
        "From: Ana <ana@customer.test>\r\nTo: support@shop.test\r\nSubject: Con logo\r\n"
        "Date: Tue, 3 Nov 2026 10:00:00 +0000\r\nMessage-ID: <inline-1@customer.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/related; boundary="rel"; type="text/html"\r\n\r\n'
        "--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Hola</p><img id="logo" alt="logo" src="cid:logo%20one@customer.test">'
        '<img id="upper" alt="upper" src="cid:LOGO%20ONE@CUSTOMER.TEST">'
        '<img id="vector" alt="vector" src="cid:vector@customer.test">'
        '<img id="missing" alt="missing" src="cid:nowhere@customer.test">'
        '<img id="remote" alt="remote" src="https://tracker.test/p.gif">\r\n'
        "--rel\r\nContent-Type: image/png; name=logo.png\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-ID: <logo one@customer.test>\r\n\r\n{b64(LOGO)}"
        "--rel\r\nContent-Type: image/svg+xml; name=vector.svg\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-ID: <vector@customer.test>\r\n\r\n{b64(SVG)}"
        "--rel--\r\n"
    ).encode()


def test_cid_sources_point_at_the_parts_they_name():
    parts = [("logo one@customer.test", "7"), ("<Other@x>", "8")]
    html = ('<img src="cid:logo%20one@customer.test"><img alt="x" src="cid:other@X">'
            '<img src="cid:unknown@x"><a href="cid:logo%20one@customer.test">x</a><img src="https://a.test/cid:logo">')
    linked = link_inline_images(html, parts, lambda key: f"/inbox/attachments/{key}/?inline=1&x=<")
    assert linked == ('<img src="/inbox/attachments/7/?inline=1&amp;x=&lt;"><img alt="x" '
                      'src="/inbox/attachments/8/?inline=1&amp;x=&lt;"><img data-missing-src="cid:unknown@x">'
                      '<a href="cid:logo%20one@customer.test">x</a><img src="https://a.test/cid:logo">')
    assert link_inline_images(html, [], str) == html.replace('src="cid:', 'data-missing-src="cid:')
    assert link_inline_images("<p>no images</p>", [], str) == "<p>no images</p>"


@pytest.fixture
def agent_and_message(db):
    user, _agent, group = free_agent_in_group()
    raw = store_raw(_related_mail(), support_account(agent_group=group))
    assert pipeline.run_pipeline(raw.pk) == "processed"
    return user, Message.objects.get(raw=raw)


def _inline_urls(page: str) -> list[str]:
    """The inline image URLs in the frame's srcdoc (escaped twice: as HTML, then as the attribute)."""
    return [html_lib.unescape(html_lib.unescape(url)) for url in
            re.findall(r'src=&quot;(/inbox/attachments/[^"]*?)&quot;', page)]


@pytest.mark.django_db
def test_the_message_view_shows_inline_images_from_its_own_parts(client, agent_and_message):
    user, message = agent_and_message
    logo = Attachment.objects.get(message=message, content_type="image/png")
    vector = Attachment.objects.get(message=message, content_type="image/svg+xml")
    assert logo.inline and logo.content_id == "logo one@customer.test"
    client.force_login(user)
    page = client.get(f"/inbox/{message.pk}/").content.decode()
    urls = _inline_urls(page)  # in the frame's srcdoc
    assert len(urls) == 3, urls  # the logo twice (exact and differently-cased Content-ID), the SVG once
    assert urls[0] == urls[1] and urls[0].startswith(f"/inbox/attachments/{logo.pk}/inline/?t=")
    assert "data-missing-src=&quot;cid:nowhere@customer.test" in page  # a cid: naming no part: not a source
    assert " src=&quot;cid:" not in page and "data-blocked-src" in page  # remote stays blocked
    client.logout()  # the frame's requests carry no session cookie: the URL itself is the proof
    shown = client.get(urls[0])
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png" and shown.content == LOGO
    assert shown["X-Content-Type-Options"] == "nosniff" and "sandbox" in shown["Content-Security-Policy"]
    assert client.get(urls[2]).status_code == 404  # SVG can carry script: never shown as an image
    assert client.get(f"/inbox/attachments/{vector.pk}/")["Content-Type"] != "image/svg+xml"
    for forged in (urls[0][:-3] + "abc", f"/inbox/attachments/{logo.pk}/inline/", urls[2].replace(
            f"/{vector.pk}/", f"/{logo.pk}/")):
        assert client.get(forged).status_code == 404, forged  # tampered, missing, or for another part
    # Issued to someone who may not see the message (or no longer may): nothing.
    outsider = User.objects.create_user("outsider", password="pw-outsider-123")
    client.force_login(outsider)
    assert _inline_urls(client.get(f"/inbox/{message.pk}/").content.decode()) == []  # 404 page
    assert client.get(views_inbox._inline_image_url(outsider, logo.pk)).status_code == 404
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get(urls[0]).status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_inline_images_show_in_chromium_without_anything_remote(browser_page, live_server, agent_and_message,
                                                                monkeypatch):
    _, message = agent_and_message
    served: list[int] = []  # what the inline-image view answered with an image (the server's side)
    real_part_bytes = views_inbox.part_bytes

    def part_bytes(data: bytes, index: int) -> tuple[bytes, str] | None:
        found = real_part_bytes(data, index)
        if found is not None and found[1] == "image/png":
            served.append(index)
        return found

    monkeypatch.setattr(views_inbox, "part_bytes", part_bytes)
    logo = Attachment.objects.get(message=message, content_type="image/png")
    page = browser_page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    sign_in(page, "lucia", "pw-lucia-123")
    page.goto(f"/inbox/{message.pk}/")
    page.wait_for_load_state("load")
    image = page.frame_locator("#message-html").locator("img[alt=logo]")
    image.wait_for()
    for _ in range(100):  # the frame's images load after the page's own load event
        if served:
            break
        page.wait_for_timeout(100)
    assert served == [logo.part], (served, console)  # the logo (once: the second is the same URL)
    box = image.bounding_box()
    assert box is not None and round(box["width"]) == 120 and round(box["height"]) == 40  # drawn at its size
    screenshot(page, "inbox-inline-image")
    outside = [url for url in requests if not url.startswith((live_server.url, "about:", "data:"))]
    assert outside == [], outside

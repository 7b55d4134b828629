"""Cutting an oversized message from a file: the same plan as the in-memory cut, read in one pass."""

from __future__ import annotations

import email
import io
from email.policy import default

from buzon.sync import mimescan
from buzon.sync.truncate import truncate_bytes
from tests.sync.helpers import make_mail

NESTED = (
    b"From: a@example.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b"This is the preamble.\r\n--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain text\r\n--outer-not-a-delimiter\r\n\r\n"
    b"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n--inner--\r\nepilogue\r\n"
    b"--outer\r\nContent-Type: application/pdf; name=big.pdf\r\nContent-Disposition: attachment; filename=big.pdf"
    b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b"QUJD" * 5000 + b"\r\n"
    b"--outer\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=logo.png\r\n\r\n"
    + b"x" * 300 + b"\r\n--outer--\r\n"
)


def test_parts_found_in_one_pass_with_nested_multiparts_preamble_and_lookalike_lines():
    headers, spans, multipart = mimescan.scan(io.BytesIO(NESTED))
    assert multipart and headers.startswith(b"From:") and b"boundary" in headers
    assert [(s.leaf.content_type, s.leaf.name, s.leaf.is_text) for s in spans] == [
        ("text/plain", "", True), ("text/html", "", True), ("application/pdf", "big.pdf", False),
        ("image/png", "logo.png", False)]
    bodies = [NESTED[s.start:s.end] for s in spans]
    assert bodies[0] == b"plain text\r\n--outer-not-a-delimiter\r\n" and bodies[1] == b"<p>html</p>"
    assert bodies[3] == b"x" * 300 and spans[2].leaf.size == 20_000


def test_cut_keeps_headers_text_and_what_fits_and_names_what_was_left_out():
    data, note = mimescan.cut(io.BytesIO(NESTED), 10_000)
    message = email.message_from_bytes(data, policy=default)
    assert message["Subject"] == "nested" and "big.pdf" in note and "logo.png" not in note
    assert message.get_body(("plain",)).get_content().startswith("plain text")
    assert [part.get_filename() for part in message.iter_attachments() if part.get_filename()] == ["logo.png"]
    assert mimescan.cut(io.BytesIO(NESTED), 100_000) is None  # everything fits


def test_same_plan_as_the_in_memory_cut():
    mail = make_mail(1, html=True, attachment_kb=300)
    streamed, streamed_note = mimescan.cut(io.BytesIO(mail), 100 * 1024)
    in_memory, memory_note = truncate_bytes(mail, 100 * 1024)
    assert streamed_note == memory_note
    for data in (streamed, in_memory):
        message = email.message_from_bytes(data, policy=default)
        assert message["Subject"] == "Message 1" and "Hello number 1." in message.get_body(("plain",)).get_content()
        assert "<b>number 1</b>" in message.get_body(("html",)).get_content()


def test_single_part_message_over_the_limit_keeps_only_its_headers():
    mail = b"Subject: big\r\nContent-Type: application/zip\r\n\r\n" + b"Z" * 5000 + b"\r\n"
    data, note = mimescan.cut(io.BytesIO(mail), 1000)
    assert b"Subject: big" in data and b"ZZZ" not in data and "application/zip" in note

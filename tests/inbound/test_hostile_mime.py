"""Hostile headers and MIME (issue 7): huge headers, deep nesting, zip-bomb-like attachments, NUL
bytes, path-traversal filenames. Each is processed in bounded memory and time, the message is kept
(processed, or unparseable with the reason), and nothing is written anywhere: attachments are read
from the stored raw bytes on download, and their names are never used as paths."""

from __future__ import annotations

import base64
import gzip
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from buzon.inbound import pipeline
from buzon.messages.models import Attachment, Message, MessageStatus
from buzon.sync.models import RawMessage
from tests.inbound.helpers import store_raw, support_account

pytestmark = pytest.mark.django_db

CPU_LIMIT_S = 5.0
HEAD = "From: Mallory <mallory@attacker.test>\r\nTo: support@shop.test\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"


def huge_subject() -> bytes:
    return (HEAD + "Subject: " + "A" * 4_000_000 + "\r\n\r\nbody\r\n").encode()


def many_headers() -> bytes:
    lines = "".join(f"X-Filler-{i}: {'y' * 80}\r\n" for i in range(60_000))
    return (HEAD + "Subject: many headers\r\n" + lines + "\r\nbody\r\n").encode()


def folded_forever() -> bytes:
    return (HEAD + "Subject: folded" + "\r\n x" * 300_000 + "\r\n\r\nbody\r\n").encode()


def deep_nesting() -> bytes:
    depth = 3000
    opening = "".join(f"Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n" for i in range(depth))
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    return (HEAD + "Subject: deep\r\nMIME-Version: 1.0\r\n" + opening + "Content-Type: text/plain\r\n\r\nbottom"
            + closing).encode()


def nested_messages() -> bytes:
    inner = "Subject: innermost\r\n\r\nhello\r\n"
    for i in range(500):
        inner = f"Subject: level {i}\r\nContent-Type: message/rfc822\r\n\r\n{inner}"
    return (HEAD + "MIME-Version: 1.0\r\n" + inner).encode()


def zip_bomb() -> bytes:
    bomb = base64.encodebytes(gzip.compress(b"\0" * 200_000_000, compresslevel=9)).decode()
    return (HEAD + "Subject: bomb\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n"
            "--z\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
            "--z\r\nContent-Type: application/gzip\r\nContent-Disposition: attachment; filename=\"bomb.gz\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{bomb}\r\n--z--\r\n").encode()


def many_parts() -> bytes:
    parts = "".join(f"--p\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
                    f"filename=\"f{i}.bin\"\r\n\r\nx\r\n" for i in range(20_000))
    return (HEAD + "Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n"
            + parts + "--p--\r\n").encode()


def nul_bytes() -> bytes:
    return (b"From: Mal\0lory <mallory@attacker.test>\r\nTo: support@shop.test\r\nSubject: nul\0 in\0 subject\r\n"
            b"Message-ID: <nul\0@attacker.test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"n\"\r\n\r\n--n\r\nContent-Type: text/html\r\n\r\n"
            b"<p>te\0xt</p><scr\0ipt>x</scr\0ipt>\r\n--n\r\nContent-Type: text/plain\r\n"
            b"Content-Disposition: attachment; filename=\"a\0b.txt\"\r\n\r\n\0\0\0\r\n--n--\r\n")


TRAVERSAL = ["../../../../tmp/buzon-pwned-1.txt", "..\\..\\..\\windows\\buzon-pwned-2.txt",
             "/tmp/buzon-pwned-3.txt", "~/.ssh/authorized_keys", "CON", ".htaccess"]


def traversal() -> bytes:
    parts = "".join(
        f"--t\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\npwned\r\n"
        for name in TRAVERSAL)
    parts += ("--t\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
              "filename*=utf-8''%2E%2E%2F%2E%2E%2Ftmp%2Fbuzon-pwned-4.txt\r\n\r\npwned\r\n")
    return (HEAD + "Subject: traversal\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"t\"\r\n\r\n"
            + parts + "--t--\r\n").encode()


CASES: dict[str, Callable[[], bytes]] = {
    f.__name__: f for f in (huge_subject, many_headers, folded_forever, deep_nesting, nested_messages, zip_bomb,
                            many_parts, nul_bytes, traversal)
}


def _process(data: bytes) -> tuple[Message, float, int]:
    """Run the pipeline twice (it is idempotent): timed, then under tracemalloc, which slows it."""
    raw = store_raw(data, support_account())
    began = time.process_time()
    outcome = pipeline.run_pipeline(raw.pk)
    spent = time.process_time() - began
    assert outcome in ("processed", "unparseable"), outcome
    tracemalloc.start()
    assert pipeline.run_pipeline(raw.pk) == outcome
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    raw.refresh_from_db()
    assert raw.status == RawMessage.Status.PROCESSED
    return Message.objects.get(raw=raw), spent, peak


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_mime_is_kept_in_bounded_time_and_memory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative path written by mistake would land here
    data = CASES[name]()
    message, spent, peak = _process(data)
    assert message.status in (MessageStatus.PROCESSED, MessageStatus.UNPARSEABLE)
    assert spent < CPU_LIMIT_S, (name, spent)
    assert peak < 20 * len(data) + 60_000_000, (name, peak)
    assert len(message.subject) <= 16_384 and "\0" not in message.subject + message.html + message.text
    assert list(tmp_path.iterdir()) == []


def test_zip_bomb_is_never_expanded():
    message, _, peak = _process(zip_bomb())
    attachment = Attachment.objects.get(message=message)
    assert attachment.filename == "bomb.gz" and attachment.size < 1_000_000  # the compressed size
    assert peak < 100_000_000


def test_path_traversal_names_download_as_plain_names_and_write_nothing(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message, _, _ = _process(traversal())
    client.force_login(User.objects.create_superuser("admin", "admin@shop.test", "pw-admin-123"))
    names = []
    for attachment in Attachment.objects.filter(message=message).order_by("part"):
        response = client.get(f"/inbox/attachments/{attachment.pk}/")
        assert response.status_code == 200 and response.content.strip() == b"pwned"
        assert response["Content-Type"] == "application/octet-stream"
        disposition = response["Content-Disposition"]
        name = disposition.split('filename="', 1)[1].rstrip('"')
        names.append(name)
        assert "/" not in name and "\\" not in name and not name.startswith("."), disposition
    assert names == ["buzon-pwned-1.txt", "buzon-pwned-2.txt", "buzon-pwned-3.txt", "authorized_keys", "CON",
                     "htaccess", "buzon-pwned-4.txt"]
    assert list(tmp_path.iterdir()) == []
    for leftover in ("/tmp/buzon-pwned-1.txt", "/tmp/buzon-pwned-3.txt", "/tmp/buzon-pwned-4.txt"):
        assert not Path(leftover).exists()


@pytest.mark.postgres
def test_nul_bytes_are_stored_on_postgresql():
    """PostgreSQL refuses NUL in text columns: the message must still be stored, not fail."""
    message, _, _ = _process(nul_bytes())
    assert message.status == MessageStatus.PROCESSED and message.subject == "nul in subject"
    assert Attachment.objects.get(message=message).filename == "ab.txt"

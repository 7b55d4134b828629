"""attachment_limit_mb: oversized mail keeps headers and text, big attachments become a note."""

from __future__ import annotations

import email
from email.policy import default

import pytest

from buzon.sync.models import RawMessage
from buzon.sync.truncate import truncate_bytes
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db


def _check_truncated(row, name):
    assert row.truncated and name in row.truncation_note
    message = email.message_from_bytes(bytes(row.data), policy=default)
    assert message["Subject"] == "Message 1"
    text = message.get_body(("plain",)).get_content()
    assert "Hello number 1." in text
    assert name in bytes(row.data).decode()
    assert not any(part.get_filename() == name for part in message.iter_attachments())


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_oversized_message_is_kept_without_its_big_attachment(dovecot, protocol):
    account = make_account(dovecot, protocol=protocol, attachment_limit_mb=1)
    big = make_mail(1, html=True, attachment_kb=1600)
    small = make_mail(2, attachment_kb=20)
    dovecot.deliver(account.email_address, big)
    dovecot.deliver(account.email_address, small)
    sync(account)
    rows = {row.subject: row for row in RawMessage.objects.filter(account=account)}
    _check_truncated(rows["Message 1"], "report-1.pdf")
    assert rows["Message 1"].size == len(big) and len(rows["Message 1"].data) < 100_000
    assert bytes(rows["Message 2"].data) == small and not rows["Message 2"].truncated


def test_truncate_bytes_keeps_small_messages_whole():
    assert truncate_bytes(make_mail(1, attachment_kb=10), 1024 * 1024) is None


def test_pop3_message_far_over_the_limit_is_never_held_whole_in_memory(dovecot):
    import gc
    import tracemalloc

    account = make_account(dovecot, protocol="pop3", attachment_limit_mb=1)
    dovecot.deliver(account.email_address, make_mail(1, attachment_kb=24 * 1024))  # ~33 MB once encoded
    gc.collect()
    tracemalloc.start()
    try:
        sync(account)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    row = RawMessage.objects.get(account=account)
    _check_truncated(row, "report-1.pdf")
    assert row.size > 30 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MB while reading a {row.size / 2**20:.0f} MB message"

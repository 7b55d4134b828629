"""append_to_sent against a real Dovecot: the copy lands in the \\Sent folder, byte for byte, once."""

from __future__ import annotations

from typing import Any

import pytest

from buzon.messages.outbox import queue_outgoing
from buzon.outbound.models import OutgoingEmail
from buzon.outbound.sender import deliver_due
from buzon.outbound.sent_folder import append_sent_copy, parse_list_line, pick_sent_folder

pytestmark = pytest.mark.django_db


def _account(make_account: Any, smtp: Any, dovecot: Any, **extra: Any) -> tuple[Any, str]:
    address = dovecot.add_user(password="smtp-secret")
    smtp.users[address] = "smtp-secret"  # one login for both servers, as a real mailbox has
    account = make_account(smtp, address=address, incoming_enabled=True,
                           incoming_protocol="imap", incoming_host="localhost", incoming_port=dovecot.imap_port,
                           incoming_security="starttls", append_to_sent=True, **extra)
    return account, address


def test_sent_copy_lands_in_the_special_use_sent_folder(smtp_starttls: Any, dovecot: Any, make_account: Any,
                                                       pool: Any, settings: Any,
                                                       django_capture_on_commit_callbacks: Any) -> None:
    account, address = _account(make_account, smtp_starttls, dovecot)
    message = queue_outgoing(to="c@example.org", subject="copia", text="x", account=account)
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due(pool=pool)
    assert dovecot.message_count(address, "Sent") == 1
    stored = next((dovecot.maildir(address, "Sent") / "cur").iterdir()).read_bytes()
    assert stored.replace(b"\r\n", b"\n") == bytes(OutgoingEmail.objects.get(pk=message.pk).mime).replace(
        b"\r\n", b"\n")
    assert append_sent_copy(message.pk)  # again: already done, not appended twice
    assert dovecot.message_count(address, "Sent") == 1


def test_list_parsing_and_folder_choice() -> None:
    lines = [b'(\\HasNoChildren) "/" INBOX', b'(\\HasNoChildren \\Sent) "/" "Elementos enviados"',
             b'(\\HasNoChildren) "/" Sent']
    folders = [f for f in map(parse_list_line, lines) if f]
    assert pick_sent_folder(folders) == "Elementos enviados"
    assert pick_sent_folder([({"\\hasnochildren"}, "INBOX"), (set(), "Sent Items")]) == "Sent Items"
    assert pick_sent_folder([({"\\hasnochildren"}, "INBOX")]) is None

"""IMAP sync against the real Dovecot: cursors, options, folders, UIDVALIDITY, never marking read."""

from __future__ import annotations

import pytest

from buzon.mailboxes.models import AccountState, SyncOption
from buzon.sync.models import KEY_ONLY, FolderCursor, RawMessage
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db


def stored(account, folder="INBOX"):
    return RawMessage.objects.filter(account=account, folder=folder).exclude(status__in=KEY_ONLY)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_first_sync_stores_exact_bytes_once_and_lists_headers(dovecot, security):
    account = make_account(dovecot, security=security)
    mails = [make_mail(i, html=i % 2 == 0) for i in range(5)]
    for mail in mails:
        dovecot.deliver(account.email_address, mail)
    sync(account)
    rows = list(stored(account).order_by("uid"))
    assert [bytes(row.data) for row in rows] == mails
    assert rows[0].subject == "Message 0" and rows[0].from_header == "Sender 0 <sender0@example.test>"
    assert rows[0].message_id.startswith("<") and rows[0].date is not None
    assert all(row.uidvalidity for row in rows)
    sync(account)  # a second pass finds nothing new
    assert stored(account).count() == 5
    account.refresh_from_db()
    assert account.state == AccountState.IDLE and account.last_error == ""
    assert account.last_synced_at is not None and account.last_contact_at is not None


def test_sync_never_marks_mail_read_and_cursor_ignores_seen(dovecot):
    account = make_account(dovecot)
    dovecot.deliver(account.email_address, make_mail(1))
    dovecot.deliver(account.email_address, make_mail(2), seen=True)  # read by another client
    sync(account)
    assert stored(account).count() == 2
    flags = dovecot.doveadm("fetch", "-u", account.email_address, "flags", "mailbox", "INBOX")
    assert flags.count("\\Seen") == 1


def test_unseen_option_takes_only_unread_and_moves_past_the_rest(dovecot):
    account = make_account(dovecot, sync_option=SyncOption.UNSEEN)
    dovecot.deliver(account.email_address, make_mail(1), seen=True)
    dovecot.deliver(account.email_address, make_mail(2))
    sync(account)
    assert list(stored(account).values_list("subject", flat=True)) == ["Message 2"]
    dovecot.deliver(account.email_address, make_mail(3))
    sync(account)
    assert sorted(stored(account).values_list("subject", flat=True)) == ["Message 2", "Message 3"]


def test_initial_count_takes_newest_then_continues(dovecot):
    account = make_account(dovecot, initial_sync_count=3)
    for i in range(8):
        dovecot.deliver(account.email_address, make_mail(i))
    sync(account)
    assert sorted(stored(account).values_list("subject", flat=True)) == ["Message 5", "Message 6", "Message 7"]
    dovecot.deliver(account.email_address, make_mail(8))
    sync(account)
    assert stored(account).count() == 4
    assert stored(account).filter(subject="Message 8").exists()


def test_configured_folders_are_each_synced(dovecot):
    account = make_account(dovecot, folders=["INBOX", "Support", "Ventas/2026"])
    dovecot.deliver(account.email_address, make_mail(1))
    dovecot.deliver(account.email_address, make_mail(2), folder="Support")
    dovecot.deliver(account.email_address, make_mail(3), folder="Ventas/2026")
    sync(account)
    folders = dict(RawMessage.objects.filter(account=account).values_list("folder", "subject"))
    assert folders == {"INBOX": "Message 1", "Support": "Message 2", "Ventas/2026": "Message 3"}
    assert FolderCursor.objects.filter(account=account).count() == 3


def test_uidvalidity_change_resyncs_without_a_single_duplicate(dovecot):
    account = make_account(dovecot, folders=["Archive"])
    mails = [make_mail(i) for i in range(4)]
    for mail in mails[:3]:
        dovecot.deliver(account.email_address, mail, folder="Archive")
    sync(account)
    first_validity = FolderCursor.objects.get(account=account).uidvalidity
    dovecot.delete_folder(account.email_address, "Archive")
    dovecot.create_folder(account.email_address, "Archive")
    for mail in mails:  # the same three again, plus one genuinely new
        dovecot.deliver(account.email_address, mail, folder="Archive")
    sync(account)
    assert FolderCursor.objects.get(account=account).uidvalidity != first_validity
    kept = stored(account, "Archive")
    assert kept.count() == 4
    assert sorted(bytes(row.data) for row in kept) == sorted(mails)
    assert RawMessage.objects.filter(account=account, status=RawMessage.Status.DUPLICATE).count() == 3


def test_same_message_id_with_different_content_is_kept(dovecot):
    account = make_account(dovecot)
    dovecot.deliver(account.email_address, make_mail(1, message_id="<reused@example.test>", body="first"))
    dovecot.deliver(account.email_address, make_mail(2, message_id="<reused@example.test>", body="second"))
    sync(account)
    assert stored(account).count() == 2


def test_message_deleted_in_buzon_never_comes_back(dovecot):
    from django.utils import timezone

    account = make_account(dovecot, folders=["Keep"])
    mail = make_mail(1)
    dovecot.deliver(account.email_address, mail, folder="Keep")
    sync(account)
    RawMessage.objects.filter(account=account).update(deleted_at=timezone.now())
    dovecot.delete_folder(account.email_address, "Keep")
    dovecot.deliver(account.email_address, mail, folder="Keep")
    sync(account)
    assert stored(account, "Keep").count() == 1
    assert stored(account, "Keep").get().deleted_at is not None


def test_a_first_download_hands_its_oldest_messages_to_the_pipeline_first_in_small_chunks(dovecot, settings,
                                                                                           monkeypatch):
    """The pipeline starts on a big mailbox's first messages while the rest are on the wire: the
    pass's chunks (each stored, committed and enqueued on its own) grow 4, 8, then the full 10."""
    from django_tasks_db.models import DBTaskResult

    from buzon.sync import imap

    monkeypatch.setattr(imap, "FIRST_CHUNK", 4)
    settings.SYNC_FETCH_CHUNK, settings.INBOUND_TASK_BATCH = 10, 200
    account = make_account(dovecot)
    for i in range(30):
        dovecot.deliver(account.email_address, make_mail(i))
    sync(account)
    uid_of = dict(stored(account).values_list("id", "uid"))
    tasks = DBTaskResult.objects.filter(task_path="buzon.inbound.tasks.process_raw_messages").order_by("enqueued_at")
    batches = [[uid_of[pk] for pk in task.args_kwargs["args"][0]] for task in tasks]
    assert batches == [list(range(1, 5)), list(range(5, 13)), list(range(13, 23)), list(range(23, 31))]


def test_stored_messages_reach_the_pipeline_in_batches_each_exactly_once(dovecot, settings):
    from django_tasks_db.models import DBTaskResult

    settings.INBOUND_TASK_BATCH = 2
    account = make_account(dovecot)
    for i in range(5):
        dovecot.deliver(account.email_address, make_mail(i))
    sync(account)
    ids = sorted(stored(account).values_list("id", flat=True))
    tasks = DBTaskResult.objects.filter(task_path="buzon.inbound.tasks.process_raw_messages")
    batches = [task.args_kwargs["args"][0] for task in tasks]
    assert sorted(i for batch in batches for i in batch) == ids  # every message once, none twice
    assert max(len(batch) for batch in batches) <= 2 and len(batches) >= 3
    # bulk-enqueued rows are what the backend's own enqueue() writes, and the worker runs them
    from buzon.inbound.tasks import process_raw_messages

    reference = DBTaskResult.objects.get(id=process_raw_messages.enqueue([min(ids)]).id)
    for task in tasks:
        assert (task.run_after, task.priority, task.queue_name, task.backend_name, task.status) == (
            reference.run_after, reference.priority, reference.queue_name, reference.backend_name, reference.status)
    assert set(DBTaskResult.objects.ready().values_list("id", flat=True)) >= set(tasks.values_list("id", flat=True))

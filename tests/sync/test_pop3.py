"""POP3 against the real Dovecot: UIDL bookkeeping, delete only after commit, both TLS modes."""

from __future__ import annotations

import pytest

from buzon.sync.models import KEY_ONLY, RawMessage
from tests.sync.helpers import make_account, make_mail, run_pipeline_tasks, sync

pytestmark = pytest.mark.django_db


def stored(account):
    return RawMessage.objects.filter(account=account).exclude(status__in=KEY_ONLY)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_pop3_leaves_mail_on_server_and_never_downloads_twice(dovecot, security):
    account = make_account(dovecot, protocol="pop3", security=security)
    mails = [make_mail(i) for i in range(3)]
    for mail in mails:
        dovecot.deliver(account.email_address, mail)
    sync(account)
    assert sorted(bytes(row.data) for row in stored(account)) == sorted(mails)
    assert all(row.uidl and row.folder == "" for row in stored(account))
    dovecot.deliver(account.email_address, make_mail(9))
    sync(account)
    assert stored(account).count() == 4
    assert dovecot.message_count(account.email_address) == 4


def test_pop3_deletes_only_what_is_imported(dovecot, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    account = make_account(dovecot, protocol="pop3", delete_after_download=True)
    for i in range(3):
        dovecot.deliver(account.email_address, make_mail(i))
    sync(account)
    assert stored(account).count() == 3
    assert dovecot.message_count(account.email_address) == 3  # committed, not imported yet
    run_pipeline_tasks()
    sync(account)
    assert stored(account).count() == 3
    assert dovecot.message_count(account.email_address) == 0


def test_pop3_delete_after_a_crash_before_quit(dovecot, settings):
    """Imported, but the DELE was lost with the connection: the next pass deletes, never re-stores."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    account = make_account(dovecot, protocol="pop3")
    dovecot.deliver(account.email_address, make_mail(1))
    sync(account)
    run_pipeline_tasks()
    sync(account)  # imported, left on the server (as if QUIT never came after DELE)
    assert dovecot.message_count(account.email_address) == 1
    account.delete_after_download = True
    account.save()
    sync(account)
    assert stored(account).count() == 1
    assert dovecot.message_count(account.email_address) == 0


def test_pop3_initial_count_passes_over_older_mail_for_good(dovecot, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    account = make_account(dovecot, protocol="pop3", initial_sync_count=2, delete_after_download=True)
    for i in range(5):
        dovecot.deliver(account.email_address, make_mail(i))
    sync(account)
    assert sorted(stored(account).values_list("subject", flat=True)) == ["Message 3", "Message 4"]
    # the three older ones were not downloaded, so they are not deleted either
    run_pipeline_tasks()
    sync(account)
    assert dovecot.message_count(account.email_address) == 3
    sync(account)
    assert stored(account).count() == 2

"""The first pass's choice, against the real Dovecot: "only mail received from now on" leaves what
the mailbox holds at the first sync and brings every later message; the first pass is done once,
even for a mailbox that was empty then (IMAP keeps it in the folder cursor, POP3 in SyncState)."""

from __future__ import annotations

import pytest

from buzon.mailboxes.models import SyncOption
from buzon.sync.models import KEY_ONLY, RawMessage
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db
PROTOCOLS = ["imap", "pop3"]


def subjects(account) -> list[str]:
    return sorted(row.subject for row in RawMessage.objects.filter(account=account).exclude(status__in=KEY_ONLY))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_only_new_mail_leaves_what_is_there_and_brings_what_arrives(dovecot, protocol):
    account = make_account(dovecot, protocol=protocol, sync_option=SyncOption.NEW)
    for index in range(3):
        dovecot.deliver(account.email_address, make_mail(index, subject=f"Before {index}"))
    sync(account)
    assert subjects(account) == []
    assert dovecot.message_count(account.email_address) == 3  # left there, untouched
    dovecot.deliver(account.email_address, make_mail(7, subject="After"))
    sync(account)
    sync(account)  # the ones left out stay out on every later pass
    assert subjects(account) == ["After"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_only_new_mail_with_an_empty_mailbox_at_first_brings_the_first_arrival(dovecot, protocol):
    """The first pass found nothing: the first customer mail after it is new mail, not mail to leave out."""
    account = make_account(dovecot, protocol=protocol, sync_option=SyncOption.NEW)
    sync(account)
    dovecot.deliver(account.email_address, make_mail(1, subject="First customer"))
    sync(account)
    assert subjects(account) == ["First customer"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_all_mail_brings_what_is_there(dovecot, protocol):
    account = make_account(dovecot, protocol=protocol, sync_option=SyncOption.ALL, initial_sync_count=0)
    for index in range(3):
        dovecot.deliver(account.email_address, make_mail(index, subject=f"Before {index}"))
    sync(account)
    assert subjects(account) == ["Before 0", "Before 1", "Before 2"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_initial_count_applies_to_the_first_pass_only_even_when_it_found_nothing(dovecot, protocol):
    """An empty mailbox at the first sync, then more mail than the initial count: all of it is new."""
    account = make_account(dovecot, protocol=protocol, initial_sync_count=2)
    sync(account)
    for index in range(4):
        dovecot.deliver(account.email_address, make_mail(index, subject=f"New {index}"))
    sync(account)
    assert subjects(account) == ["New 0", "New 1", "New 2", "New 3"]

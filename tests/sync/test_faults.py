"""Each kind of failure shows on the account in plain words, and a pass recovers from it."""

from __future__ import annotations

import pytest

from buzon.mailboxes.errors import MailServerError
from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.sync.models import RawMessage
from buzon.sync.status import backoff_seconds
from tests.support.ports import free_port
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db


def failed_sync(account) -> EmailAccount:
    with pytest.raises(MailServerError):
        sync(account)
    account.refresh_from_db()
    assert account.state == AccountState.ERROR
    return account


@pytest.mark.parametrize(("change", "code", "words"), [
    ({"incoming_host": "no-such-host.invalid"}, "dns", "could not be found"),
    ({"incoming_host": "127.0.0.1"}, "certificate", ""),  # the certificate names localhost only
    ({"incoming_port": "imap_port"}, "tls", ""),  # implicit TLS spoken to a plain-text port
    ({"incoming_port": free_port()}, "refused", "refused the connection"),
])
def test_connection_failures_are_named(dovecot, change, code, words):
    account = make_account(dovecot)
    for key, value in change.items():
        setattr(account, key, getattr(dovecot, value) if value == "imap_port" else value)
    account.save()
    account = failed_sync(account)
    assert account.last_error_code == code, account.last_error
    assert words in account.last_error and "secret" not in account.last_error


def test_missing_folder_is_named_and_others_still_sync(dovecot):
    account = make_account(dovecot, folders=["INBOX", "Nope"])
    dovecot.deliver(account.email_address, make_mail(1))
    account = failed_sync(account)
    assert account.last_error_code == "folder" and "Nope" in account.last_error
    assert RawMessage.objects.filter(account=account).count() == 1


def test_recovery_clears_the_error(dovecot):
    account = make_account(dovecot, password="wrong")
    failed_sync(account)
    account.set_password("secret")
    account.save()
    dovecot.deliver(account.email_address, make_mail(1))
    sync(account)
    account.refresh_from_db()
    assert account.state == AccountState.IDLE and account.last_error == "" and account.sync_state.failures == 0


def test_backoff_grows_with_jitter_and_is_harder_for_logins(settings):
    settings.SYNC_BACKOFF_BASE_S, settings.SYNC_BACKOFF_MAX_S = 5, 600
    settings.SYNC_AUTH_BACKOFF_S, settings.SYNC_AUTH_BACKOFF_MAX_S = 300, 21600
    first = [backoff_seconds(1, auth=False) for _ in range(50)]
    assert all(2.5 <= d <= 5 for d in first) and len(set(first)) > 1
    assert all(40 <= backoff_seconds(5, auth=False) <= 80 for _ in range(20))
    assert all(d <= 600 for d in (backoff_seconds(30, auth=False) for _ in range(20)))
    assert backoff_seconds(1, auth=True) >= 150

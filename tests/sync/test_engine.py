"""The engine as `buzon sync` runs it: IDLE push, sync now, accounts coming and going, faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.sync.control import request_sync
from buzon.sync.models import KEY_ONLY, RawMessage, SyncLease
from tests.support.proxy import Proxy
from tests.sync.helpers import EngineThread, make_account, make_mail, on_db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def _fetched_held() -> int:
    from buzon.sync.budget import fetched

    return fetched().held


def count(account, **filters) -> int:
    return on_db(lambda: RawMessage.objects.filter(account=account, **filters)
                 .exclude(status__in=KEY_ONLY).count())


def state(account) -> str:
    return on_db(lambda: EmailAccount.objects.values_list("state", flat=True).get(pk=account.pk))


def synced(account):
    return on_db(lambda: EmailAccount.objects.values_list("last_synced_at", flat=True).get(pk=account.pk))


def test_idle_brings_new_mail_within_seconds(dovecot, settings):
    settings.SYNC_POLL_INTERVAL_S = 3600  # only IDLE can bring it in time
    settings.SYNC_IDLE_REARM_S = 0.7  # re-armed several times during the test (servers drop at 29 min)
    account = make_account(dovecot, folders=["INBOX", "Support"])
    dovecot.create_folder(account.email_address, "Support")
    with EngineThread(only={account.pk}):
        wait_for(lambda: synced(account), 10)
        time.sleep(0.5)
        latencies = []
        for i, folder in enumerate(["INBOX", "Support", "INBOX", "Support", "INBOX"]):
            start = time.monotonic()
            dovecot.deliver(account.email_address, make_mail(i), folder=folder)
            wait_for(lambda n=i + 1: count(account) >= n, 5, 0.01)
            latencies.append(time.monotonic() - start)
        assert max(latencies) < 3.0, latencies
        assert on_db(lambda: SyncLease.objects.get(account=account).owner)
    assert SyncLease.objects.get(account=account).owner == ""  # released on a clean stop


def test_mail_announced_during_a_pass_is_fetched_without_waiting_for_the_next(dovecot, settings, monkeypatch):
    """The server announces a new message once (EXISTS), in the answer to whatever command is
    running then; it does not announce it again when IDLE starts. Mail landing while a pass is
    fetching must not wait for the next arrival or for IDLE's re-arm (tens of minutes)."""
    from buzon.sync.imap_conn import ImapConnection

    settings.SYNC_POLL_INTERVAL_S = 3600
    account = make_account(dovecot)
    for i in range(2):
        dovecot.deliver(account.email_address, make_mail(i))
    fetch = ImapConnection.uid_fetch
    delivered = []

    async def deliver_then_fetch(self, uids, items, modifier=""):
        if "BODY.PEEK[]" in items and not delivered:  # lands mid-pass, after the new UIDs were read
            delivered.append(dovecot.deliver(account.email_address, make_mail(9)))
            await self.noop()  # Dovecot looks at the Maildir (and says "* 3 EXISTS") in this answer
        return await fetch(self, uids, items, modifier)

    monkeypatch.setattr(ImapConnection, "uid_fetch", deliver_then_fetch)
    with EngineThread(only={account.pk}):
        wait_for(lambda: count(account) == 3, 5)
    assert delivered


def test_poll_without_idle_and_sync_now(dovecot, settings):
    settings.SYNC_POLL_INTERVAL_S = 3600
    account = make_account(dovecot, protocol="pop3")
    with EngineThread(only={account.pk}):
        wait_for(lambda: synced(account), 10)
        dovecot.deliver(account.email_address, make_mail(1))
        time.sleep(1.5)
        assert count(account) == 0  # POP3 has no push; the next poll is an hour away
        on_db(request_sync, account)
        wait_for(lambda: count(account) == 1, 5)


def test_accounts_added_changed_and_removed_while_running(dovecot):
    first = make_account(dovecot)
    with EngineThread() as running:
        wait_for(lambda: synced(first), 10)
        second = on_db(make_account, dovecot)
        dovecot.deliver(second.email_address, make_mail(1))
        wait_for(lambda: count(second) == 1, 10)
        second.incoming_enabled = False
        on_db(second.save)
        wait_for(lambda: second.pk not in running.engine.running, 5)
        dovecot.deliver(second.email_address, make_mail(2))
        time.sleep(1.5)
        assert count(second) == 1
        # a changed setting restarts the account's sync with it
        first.folders = ["INBOX", "Later"]
        on_db(first.save)
        dovecot.deliver(first.email_address, make_mail(3), folder="Later")
        wait_for(lambda: count(first, folder="Later") == 1, 10)


def test_wrong_password_shows_plain_words_and_backs_off_hard(dovecot, settings):
    settings.SYNC_AUTH_BACKOFF_S = 3600
    account = make_account(dovecot, password="wrong")
    with EngineThread(only={account.pk}):
        wait_for(lambda: state(account) == AccountState.ERROR, 10)
        time.sleep(2)
    account.refresh_from_db()
    assert account.last_error_code == "auth"
    assert "rejected the login name or password" in account.last_error
    assert "wrong" not in account.last_error
    assert dovecot.log().count(account.email_address) <= 3  # one login attempt (per folder), no hammering
    assert account.sync_state.failures == 1
    assert (account.sync_state.next_attempt_at - account.sync_state.updated_at).total_seconds() > 1000


def test_drop_mid_fetch_and_server_restart_recover_by_themselves(dovecot, settings):
    settings.SYNC_BACKOFF_BASE_S = 0.2
    settings.SYNC_FETCH_CHUNK = 4
    settings.SYNC_POLL_INTERVAL_S = 3600
    proxy = Proxy(dovecot.imaps_port).start()
    try:
        account = make_account(dovecot, port=proxy.port)
        mails = [make_mail(i, size_kb=20) for i in range(20)]
        for mail in mails:
            dovecot.deliver(account.email_address, mail)
        proxy.cut_after(150_000)  # mid-literal, a few chunks in
        with EngineThread(only={account.pk}) as engine:
            wait_for(lambda: count(account) == 20, 20)
            assert proxy.connections >= 2
            proxy.drop_all()  # as a server restart looks from here
            time.sleep(0.5)
            late = make_mail(99)
            dovecot.deliver(account.email_address, late)
            wait_for(lambda: count(account) == 21, 15)
            wait_for(lambda: state(account) == AccountState.IDLE, 5)
            # the chunks cut off mid-FETCH gave their bytes back to the process's budget (buzon.sync.budget)
            assert asyncio.run_coroutine_threadsafe(_fetched_held(), engine.loop).result(5) == 0
        stored = sorted(raw.data for raw in RawMessage.objects.filter(account=account))
        assert stored == sorted([*mails, late])
        assert RawMessage.objects.filter(account=account).values("uid").distinct().count() == 21
    finally:
        proxy.stop()


def test_stalled_server_is_dropped_and_other_accounts_flow(dovecot, settings):
    settings.SYNC_TIMEOUT_S = 1.5
    settings.SYNC_BACKOFF_BASE_S = 0.2
    settings.SYNC_POLL_INTERVAL_S = 3600
    proxy = Proxy(dovecot.imaps_port).start()
    try:
        stuck = make_account(dovecot, port=proxy.port, folders=["INBOX"])
        healthy = make_account(dovecot)
        for i in range(3):
            dovecot.deliver(stuck.email_address, make_mail(i, size_kb=5))
        proxy.stall()
        with EngineThread(only={stuck.pk, healthy.pk}):
            wait_for(lambda: synced(healthy), 10)
            start = time.monotonic()
            dovecot.deliver(healthy.email_address, make_mail(7))
            wait_for(lambda: count(healthy) == 1, 3)
            assert time.monotonic() - start < 3
            wait_for(lambda: state(stuck) == AccountState.ERROR, 10)
            assert "did not answer" in on_db(lambda: EmailAccount.objects.get(pk=stuck.pk).last_error)
            proxy.resume()
            wait_for(lambda: count(stuck) == 3, 15)
    finally:
        proxy.stop()

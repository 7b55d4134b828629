"""An incoming account saved and not yet synced says so on the account list, and its state cell keeps
asking (htmx) until its first download starts, so the administrator sees that download's progress
without reloading; once synced, the cell stops asking."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.sync.models import SyncState

pytestmark = pytest.mark.django_db
LIST = "/settings/email/accounts/"


def _cell(client: Client, account: EmailAccount) -> str:
    page = client.get(LIST, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    found = re.search(rf'<div id="status-{account.pk}".*?</div>\s*</td>', page, re.S)
    assert found, page[-3000:]
    return found.group(0)


def test_a_new_account_waits_for_its_first_sync_and_the_cell_keeps_asking(staff_client: Client) -> None:
    account = EmailAccount.objects.create(email_address="nueva@example.test", incoming_enabled=True,
                                          state=AccountState.IDLE)
    cell = _cell(staff_client, account)
    assert "Esperando su primera sincronización" in cell and 'hx-trigger="every 3s"' in cell
    # The engine starts the download: the same cell, asked again, shows the progress.
    SyncState.objects.create(account=account, progress_done=50, progress_total=300,
                             progress_started_at=timezone.now())
    EmailAccount.objects.filter(pk=account.pk).update(state=AccountState.SYNCING)
    again = staff_client.get(f"{LIST}{account.pk}/status/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "50 de 300 mensajes" in again and 'hx-trigger="every 3s"' in again


def test_a_synced_or_sending_only_account_does_not_keep_asking(staff_client: Client) -> None:
    synced = EmailAccount.objects.create(email_address="vieja@example.test", incoming_enabled=True,
                                         state=AccountState.IDLE, last_synced_at=timezone.now())
    sending = EmailAccount.objects.create(email_address="salida@example.test", outgoing_enabled=True,
                                          smtp_host="localhost", state=AccountState.IDLE)
    for account in (synced, sending):
        cell = _cell(staff_client, account)
        assert "hx-trigger" not in cell and "primera sincronización" not in cell

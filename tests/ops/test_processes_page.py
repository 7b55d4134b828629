"""The staff-only Processes page: live and dead processes, the accounts each sync process holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from buzon.core.models import ProcessHeartbeat
from buzon.mailboxes.models import EmailAccount
from buzon.sync.models import SyncLease

pytestmark = pytest.mark.django_db


def _account(address: str) -> EmailAccount:
    account = EmailAccount(email_address=address, incoming_enabled=True, incoming_host="localhost")
    account.set_password("x")
    account.save()
    return account


def test_lists_processes_marks_the_dead_and_counts_leases(staff_client, settings):
    now = timezone.now()
    live = ProcessHeartbeat.objects.create(id="mx1:100:aa", kind="sync", host="mx1", pid=100)
    dead = ProcessHeartbeat.objects.create(id="mx2:200:bb", kind="sync", host="mx2", pid=200,
                                           beat_at=now - timedelta(seconds=settings.HEARTBEAT_S * 4))
    ProcessHeartbeat.objects.create(id="mx1:101:cc", kind="worker", host="mx1", pid=101, tasks_per_minute=42)
    ProcessHeartbeat.objects.create(id="mx1:102:dd", kind="web", host="mx1", pid=102, stopped_at=now)
    for i in range(3):  # lease owners are host:pid:random (buzon.sync.lease.new_owner)
        SyncLease.objects.create(account=_account(f"a{i}@example.test"), owner="mx1:100:1234abcd",
                                 expires_at=now + timedelta(seconds=30))
    SyncLease.objects.create(account=_account("b@example.test"), owner="mx2:200:99",
                             expires_at=now - timedelta(seconds=1))  # expired: held by no one

    response = staff_client.get("/settings/processes/")
    assert response.status_code == 200
    html = response.content.decode()
    items = {item["row"].id: item for item in response.context["items"]}
    assert items[live.id]["alive"] and items[live.id]["accounts"] == 3
    assert not items[dead.id]["alive"] and items[dead.id]["accounts"] == 0
    assert 'data-process="mx2:200:bb" data-alive="0"' in html and "Dead" in html
    assert "Stopped" in html and "42" in html
    assert 'href="/settings/processes/"' in html  # in the settings menu


def test_staff_only(user_client, client):
    assert user_client.get("/settings/processes/").status_code == 403
    assert client.get("/settings/processes/").status_code == 302


def test_spanish(staff_client):
    ProcessHeartbeat.objects.create(id="h:1:a", kind="worker", host="h", pid=1)
    html = staff_client.get("/settings/processes/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Procesos" in html and "Última señal de vida" in html

"""/healthz, /readyz and /metrics against the real database (and a Redis port with nothing on it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from buzon.core.models import ProcessHeartbeat
from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.sync.models import RawMessage, SyncLease
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok\n"


def test_readyz_names_each_part(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": {"database": "ok", "tasks": "ok"}}


def test_readyz_is_503_naming_redis_when_it_is_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["checks"]["database"] == "ok" and body["checks"]["tasks"] == "ok"
    assert "ConnectionError" in body["checks"]["redis"]


def test_readyz_probes_redis_through_one_connection(client, settings, redis_url):
    """A probe every few seconds (a load balancer, Kubernetes) reuses the web process's connection to
    the real Redis, seen through a proxy that counts connections: ten probes open one."""
    from urllib.parse import urlsplit

    from tests.support.proxy import Proxy

    target = urlsplit(redis_url)
    proxy = Proxy(target.port or 6379, target_host=target.hostname or "127.0.0.1").start()
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}"
        for _ in range(10):
            response = client.get("/readyz")
            assert response.status_code == 200 and response.json()["checks"]["redis"] == "ok"
        assert proxy.connections == 1
    finally:
        proxy.stop()


def test_readyz_names_the_task_backend_on_rq(client, settings):
    settings.TASK_BACKEND_NAME, settings.REDIS_URL = "rq", f"redis://127.0.0.1:{free_port()}/0"
    body = client.get("/readyz").json()
    assert body["checks"]["tasks"] != "ok" and body["checks"]["redis"] != "ok"


def _account(address: str, **fields) -> EmailAccount:
    account = EmailAccount(email_address=address, incoming_enabled=True, incoming_host="localhost", **fields)
    account.set_password("x")
    account.save()
    return account


def test_metrics_reads_the_database_at_scrape_time(client, settings):
    settings.METRICS_TOKEN = ""
    now = timezone.now()
    idle = _account("a@example.test", state=AccountState.IDLE, last_contact_at=now - timedelta(seconds=30))
    broken = _account("b@example.test", state=AccountState.ERROR, last_error_code="auth")
    SyncLease.objects.create(account=idle, owner="h:1:x", expires_at=now + timedelta(seconds=60))
    for status in ("stored", "processed", "processed", "failed"):
        RawMessage.objects.create(account=idle, account_address=idle.email_address, data=b"x", size=1, sha256="0",
                                  status=status, status_reason="thread: KeyError: 'x'" if status == "failed" else "")
    ProcessHeartbeat.objects.create(id="h:1:x", kind="worker", host="h", pid=1, tasks_total=7, tasks_per_minute=3,
                                    stats={"pipeline_step_seconds": {"parse": 1.5, "thread": 0.25}})
    ProcessHeartbeat.objects.create(id="h:2:y", kind="worker", host="h", pid=2, tasks_total=5,
                                    beat_at=now - timedelta(hours=1), stats={"pipeline_step_seconds": {"parse": 0.5}})

    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    got = samples(response.content.decode())
    assert got[("buzon_account_state", (("account", str(idle.pk)), ("state", "idle")))] == 1
    assert got[("buzon_account_state", (("account", str(broken.pk)), ("state", "error")))] == 1
    assert 29 <= got[("buzon_account_sync_lag_seconds", (("account", str(idle.pk)),))] < 60
    assert got[("buzon_account_lease_held", (("account", str(idle.pk)),))] == 1
    assert got[("buzon_account_lease_held", (("account", str(broken.pk)),))] == 0
    assert got[("buzon_messages_fetched_total", ())] == 4
    assert got[("buzon_messages_processed_total", (("outcome", "processed"),))] == 2
    assert got[("buzon_queue_depth", (("queue", "inbound"),))] == 1
    assert got[("buzon_sync_failures", (("reason", "auth"),))] == 1
    assert got[("buzon_pipeline_failures_total", (("step", "thread"),))] == 1
    assert got[("buzon_tasks_total", (("kind", "worker"),))] == 12  # dead processes' work still counts
    assert got[("buzon_tasks_per_minute", (("kind", "worker"),))] == 3  # live ones only
    assert got[("buzon_processes", (("alive", "1"), ("kind", "worker")))] == 1
    assert got[("buzon_processes", (("alive", "0"), ("kind", "worker")))] == 1
    assert got[("buzon_pipeline_step_seconds_total", (("step", "parse"),))] == 2.0
    assert "a@example.test" not in response.content.decode()  # accounts by id: no addresses leak


def test_metrics_token(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200

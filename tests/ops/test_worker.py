"""`buzon worker` as a real process on PostgreSQL runs what the others enqueue: the inbound task
(settings.INBOUND_TASK), the outbound task (settings.OUTBOUND_TASK, to a real SMTP sink), the
periodic jobs, and tasks a killed worker left RUNNING; its heartbeat counts them."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from buzon.core.models import PeriodicJob, ProcessHeartbeat
from buzon.mailboxes.models import EmailAccount
from buzon.messages.outbox import queue_outgoing
from buzon.outbound import confirm
from buzon.sync.models import RawMessage
from tests.sync.helpers import make_mail, wait_for
from tests.sync.procs import buzon, buzon_env, stop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _raw(account: EmailAccount, n: int) -> RawMessage:
    data = make_mail(n, subject=f"worker test {n}")
    return RawMessage.objects.create(account=account, account_address=account.email_address, folder="INBOX",
                                     uidvalidity=1, uid=n, data=data, size=len(data), subject=f"worker test {n}",
                                     sha256=hashlib.sha256(data).hexdigest(), message_id=f"<w{n}@example.test>")


def test_worker_runs_inbound_outbound_periodic_and_orphaned_tasks(smtp_plain, postgres_url, tmp_path, settings):
    settings.HEARTBEAT_S = 1
    assert settings.TASK_BACKEND_NAME == "db"
    account = EmailAccount(email_address="sender@example.test", incoming_enabled=True, incoming_host="localhost",
                           outgoing_enabled=True, smtp_host="127.0.0.1", smtp_port=smtp_plain.port,
                           smtp_security="none", smtp_auth=True, create_customer_if_not_found=True)
    account.set_password("smtp-secret")
    account.save()
    confirm.mark_confirmed(account)
    inbound = import_string(settings.INBOUND_TASK)
    first = _raw(account, 1)
    inbound.enqueue([first.pk])
    orphan_raw = _raw(account, 2)
    orphan = inbound.enqueue([orphan_raw.pk])
    DBTaskResult.objects.filter(pk=orphan.id).update(  # as a worker killed mid-task leaves it
        status=TaskResultStatus.RUNNING, worker_ids=["gone:1:dead"], started_at=timezone.now() - timedelta(hours=1))
    sent = queue_outgoing(to=["customer@example.test"], subject="Re: your order", text="On its way.",
                          account=account)
    PeriodicJob.objects.create(name="notify-unreplied", next_run_at=timezone.now() - timedelta(seconds=1))

    env = buzon_env(_database_url(), tmp_path, BUZON_HEARTBEAT="1")
    worker = buzon(env, "worker", log=tmp_path / "worker.log")
    try:
        wait_for(lambda: RawMessage.objects.get(pk=first.pk).status == "processed", 60)
        wait_for(lambda: any(m.message["Message-ID"] == sent.message_id for m in smtp_plain.messages), 30)
        row = wait_for(lambda: ProcessHeartbeat.objects.filter(pid=worker.pid, kind="worker").first(), 30)
        job = wait_for(lambda: PeriodicJob.objects.filter(name="notify-unreplied", last_owner=row.id).first(), 30)
        assert job.next_run_at > timezone.now() + timedelta(seconds=30)  # moved on by its interval
        assert set(PeriodicJob.objects.values_list("name", flat=True)) == set(settings.PERIODIC_TASKS)
        wait_for(lambda: RawMessage.objects.get(pk=orphan_raw.pk).status == "processed", 30)
        wait_for(lambda: DBTaskResult.objects.get(pk=orphan.id).status == TaskResultStatus.SUCCESSFUL, 10)
        wait_for(lambda: ProcessHeartbeat.objects.get(pk=row.id).tasks_total >= 4, 10)
        stats = ProcessHeartbeat.objects.get(pk=row.id).stats
        # the pipeline's timings reach /metrics: these single messages went through the bulk path
        assert stats.get("pipeline_batch_stage_seconds", {}).get("parse", 0) > 0
    finally:
        code = stop(worker)
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert ProcessHeartbeat.objects.get(pid=worker.pid, kind="worker").stopped_at is not None


def test_periodic_jobs_run_once_per_interval_whoever_asks(db, settings):
    from buzon.core.periodic import run_due_jobs

    settings.PERIODIC_TASKS = {"tick": ("buzon.inbound.tasks.notify_unreplied_task", 60)}
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    assert run_due_jobs("a") == ["tick"]
    assert run_due_jobs("b") == []  # not due again for 60 s, whichever worker asks
    PeriodicJob.objects.filter(name="tick").update(next_run_at=timezone.now())
    assert run_due_jobs("b") == ["tick"]
    assert PeriodicJob.objects.get(name="tick").last_owner == "b"

"""Mail queued while a delivery task waits to start joins that task instead of adding one: on Redis
(a mark that expires), and on the database queue (asked after the commit)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from buzon.core import redis_client
from buzon.messages import outbox
from buzon.messages.outbox import queue_outgoing
from buzon.outbound import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(settings: Any, redis_url: str, monkeypatch: Any) -> list[int]:
    settings.TASK_BACKEND_NAME, settings.REDIS_URL, settings.OUTBOUND_COALESCE_S = "rq", redis_url, 10
    monkeypatch.setattr(outbox, "DELIVERY_WAITING_KEY", f"buzon-test:{uuid.uuid4().hex}:delivery-waiting")
    calls: list[int] = []

    class Task:
        def get_backend(self) -> Any:
            return type("Backend", (), {"supports_defer": True})()

        def using(self, **_: Any) -> Task:
            return self

        def enqueue(self, message_id: int) -> None:
            calls.append(message_id)

    real = outbox.import_string
    monkeypatch.setattr(outbox, "import_string",
                        lambda path: Task() if path == settings.OUTBOUND_TASK else real(path))
    monkeypatch.setattr(tasks, "deliver_due", lambda: type("Stats", (), {"sent": 0})())
    yield calls
    redis_client.client(redis_url).delete(outbox.DELIVERY_WAITING_KEY)


def test_mail_queued_before_the_waiting_task_starts_joins_it(enqueued: list[int], make_account: Any,
                                                             smtp_plain: Any, django_capture_on_commit_callbacks: Any):
    account = make_account(smtp_plain, smtp_security="none")
    with django_capture_on_commit_callbacks(execute=True):
        first = queue_outgoing(to=["a@example.org"], subject="1", text="x", account=account)
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            queue_outgoing(to=[f"b{n}@example.org"], subject="2", text="x", account=account)
    assert enqueued == [first.pk]  # the others wait for the same task: it claims whatever is due
    ttl = redis_client.client().ttl(outbox.DELIVERY_WAITING_KEY)
    # a task lost with Redis holds the others back no longer than this; one that waits behind a
    # lingering task (30 s at most) keeps its mark meanwhile, so sends do not pile tasks up behind it
    assert 30 < ttl <= 10 + 30 == outbox.delivery_mark_s()
    tasks.deliver_outgoing.call(first.pk)  # the task starts: what is committed now needs a new one
    with django_capture_on_commit_callbacks(execute=True):
        later = queue_outgoing(to=["c@example.org"], subject="3", text="x", account=account)
    assert enqueued == [first.pk, later.pk]


def test_scheduled_mail_and_other_backends_always_get_their_own_task(enqueued: list[int], settings: Any):
    import datetime

    from django.utils import timezone

    outbox.enqueue_delivery(1)
    outbox.enqueue_delivery(2, timezone.now() + datetime.timedelta(hours=1))  # a retry or send_at: its own
    assert enqueued == [1, 2]
    settings.TASK_BACKEND_NAME = "db"  # the database queue: no mark
    outbox.enqueue_delivery(3)
    outbox.enqueue_delivery(4)
    assert enqueued == [1, 2, 3, 4]


def test_an_unreachable_redis_never_holds_mail_back(enqueued: list[int], settings: Any):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    outbox.enqueue_delivery(5)
    outbox.enqueue_delivery(6)
    assert enqueued == [5, 6]


def test_on_the_database_queue_mail_joins_the_delivery_task_waiting(settings: Any, make_account: Any, smtp_plain: Any,
                                                                    django_capture_on_commit_callbacks: Any):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    account = make_account(smtp_plain, smtp_security="none")
    waiting = DBTaskResult.objects.filter(task_path=settings.OUTBOUND_TASK, status=TaskResultStatus.READY)
    sent = []
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            sent.append(queue_outgoing(to=[f"b{n}@example.org"], subject=str(n), text="x", account=account))
    assert waiting.count() == 1 and waiting.get().queue_name == "outbound"
    waiting.update(status=TaskResultStatus.RUNNING)  # a worker took it: mail committed now needs a task of its own
    with django_capture_on_commit_callbacks(execute=True):
        sent.append(queue_outgoing(to=["c@example.org"], subject="3", text="x", account=account))
    assert waiting.count() == 1
    tasks.deliver_outgoing.call(sent[0].pk)  # the one task delivers everything queued before it started
    assert sorted(m.message["Subject"] for m in smtp_plain.messages) == ["0", "1", "2", "3"]

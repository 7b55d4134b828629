"""Where an operator sees the task queues: each queue's waiting tasks on the Processes page and in
/metrics, and each worker's slots per queue on its row (from its heartbeat)."""

from __future__ import annotations

import pytest
from django.utils.module_loading import import_string

from buzon.core.models import ProcessHeartbeat
from tests.ops.test_health_metrics import samples

pytestmark = pytest.mark.django_db


def _queue_tasks(settings) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    for raw_ids in ([1], [2]):
        import_string(settings.INBOUND_TASK).enqueue(raw_ids)
    import_string(settings.OUTBOUND_TASK).enqueue(7)


def test_processes_page_shows_each_queue_and_each_workers_slots(staff_client, settings):
    _queue_tasks(settings)
    ProcessHeartbeat.objects.create(id="mx1:101:cc", kind="worker", host="mx1", pid=101,
                                    stats={"worker_slots": {"inbound": 1, "outbound": 2, "housekeeping": 1}})
    response = staff_client.get("/settings/processes/")
    html = response.content.decode()
    waiting = {row["name"]: row["waiting"] for row in response.context["queues"]}
    assert waiting == {"inbound": 2, "outbound": 1, "housekeeping": 0}  # tasks of before the split: none, not shown
    assert 'data-queue="inbound"' in html and "Incoming mail" in html and "Sending: 2" in html
    spanish = staff_client.get("/settings/processes/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Colas de tareas" in spanish and "Correo entrante: 1" in spanish and "Envío: 2" in spanish


def test_metrics_count_tasks_per_queue(client, settings):
    settings.METRICS_TOKEN = ""
    _queue_tasks(settings)
    got = samples(client.get("/metrics").content.decode())
    assert got[("buzon_tasks_waiting", (("queue", "inbound"),))] == 2
    assert got[("buzon_tasks_waiting", (("queue", "outbound"),))] == 1
    assert got[("buzon_tasks_waiting", (("queue", "housekeeping"),))] == 0
    assert got[("buzon_queue_depth", (("queue", "tasks"),))] == 3

"""The task the sync engine enqueues for every stored message (by dotted path: settings.INBOUND_TASK)."""

from __future__ import annotations

from django_tasks import task

from buzon.inbound.pipeline import run_pipeline


@task()
def process_raw_message(raw_id: int) -> str:
    return run_pipeline(raw_id)


@task()
def notify_unreplied_task() -> int:
    from buzon.inbound.unreplied import notify_unreplied

    return notify_unreplied()

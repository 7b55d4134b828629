"""The pipeline's tasks. The sync engine enqueues process_raw_messages (settings.INBOUND_TASK) with
the ids of the messages it stored together; process_raw_message runs one message."""

from __future__ import annotations

from django_tasks import task

from buzon.core.queues import HOUSEKEEPING, INBOUND
from buzon.inbound.pipeline import run_pipeline


@task(queue_name=INBOUND)
def process_raw_message(raw_id: int) -> str:
    return run_pipeline(raw_id)


@task(queue_name=HOUSEKEEPING)
def notify_unreplied_task() -> int:
    from buzon.inbound.unreplied import notify_unreplied

    return notify_unreplied()


@task(queue_name=HOUSEKEEPING)
def requeue_stored_task() -> int:
    """Periodic (settings.PERIODIC_TASKS): re-enqueue stored messages whose task was lost (a worker
    killed, Redis restarted). Safe because run_pipeline locks the raw row and is idempotent."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from buzon.core.queues import ready_tasks
    from buzon.sync.enqueue import enqueue_processing
    from buzon.sync.models import RawMessage

    # While a backlog waits in the queue, old stored messages are most likely in it: enqueueing
    # them again would only grow the backlog. Once it has drained, what is still stored lost its task.
    if ready_tasks() > settings.INBOUND_REQUEUE_MAX_WAITING:
        return 0
    cutoff = timezone.now() - timedelta(seconds=settings.INBOUND_REQUEUE_AFTER_S)
    stalled = list(RawMessage.objects.filter(status=RawMessage.Status.STORED, received_at__lt=cutoff)
                   .order_by("id").values_list("id", flat=True)[:5000])
    enqueue_processing(stalled)
    return len(stalled)


@task(queue_name=INBOUND)
def process_raw_messages(raw_ids: list[int]) -> dict[str, int]:
    """A sync chunk at once, topped up with other stored messages waiting: plain mail in bulk, the
    rest one by one (buzon.inbound.batch.run_queued)."""
    from buzon.inbound.batch import run_queued

    return dict(run_queued(raw_ids))

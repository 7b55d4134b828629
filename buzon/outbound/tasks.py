"""Tasks of the outgoing side (settings.OUTBOUND_TASK, settings.OUTBOUND_APPEND_TASK)."""

from __future__ import annotations

from django_tasks import task

from buzon.core.queues import OUTBOUND
from buzon.messages.outbox import delivery_started
from buzon.outbound.sender import deliver_due


@task(queue_name=OUTBOUND)
def deliver_outgoing(message_id: int) -> int:
    """Deliver whatever is due, this message included; returns how many were sent.

    The id only says why the task was started: any worker may send any due message, so a task for
    a message another worker already sent simply drains the rest of the queue.
    """
    delivery_started()
    return deliver_due().sent


@task(queue_name=OUTBOUND)
def append_to_sent(message_id: int) -> bool:
    from buzon.outbound.sent_folder import append_sent_copy

    return append_sent_copy(message_id)

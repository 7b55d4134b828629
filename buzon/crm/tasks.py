"""crm's periodic task: the presence sweep (settings.PERIODIC_TASKS, every minute)."""

from __future__ import annotations

from django_tasks import task

from buzon.core.queues import HOUSEKEEPING


@task(queue_name=HOUSEKEEPING)
def presence_sweep_task() -> int:
    """Agents whose last session expired or went idle are offline (buzon.crm.presence)."""
    from buzon.crm.presence import sweep

    return sweep()

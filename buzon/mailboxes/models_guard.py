"""ProbeCount: connection tests per user per minute (mailboxes.guard.take_probe_slot).

Counted in the database, not in a process's memory, so every web process shares one limit.
"""

from __future__ import annotations

from django.db import models


class ProbeCount(models.Model):
    user_id = models.IntegerField()
    window = models.BigIntegerField(db_index=True)  # whole minutes since the epoch
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user_id", "window"], name="probe_count_per_minute")]

    def __str__(self) -> str:
        return f"user {self.user_id}: {self.count} probe(s) in minute {self.window}"

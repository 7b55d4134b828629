"""Leases: one account is synced by one worker at a time, across processes and machines.

A lease row holds the owner and an expiry. Claiming locks candidate rows with
SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL; on SQLite the IMMEDIATE transaction already
serialises writers), so two workers never take the same account. The holder renews it on a
heartbeat; after a crash the lease simply expires and another worker takes the account over.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from buzon.sync.models import SyncLease


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _free_or_mine(owner: str) -> Q:
    return Q(owner=owner) | Q(expires_at__isnull=True) | Q(expires_at__lt=timezone.now())


def claim(owner: str, account_ids: Iterable[int], *, limit: int) -> list[int]:
    """Take up to `limit` of `account_ids` whose lease is free, expired or already ours."""
    wanted = list(account_ids)
    if not wanted or limit <= 0:
        return []
    existing = set(SyncLease.objects.filter(account_id__in=wanted).values_list("account_id", flat=True))
    SyncLease.objects.bulk_create(
        [SyncLease(account_id=pk) for pk in wanted if pk not in existing], ignore_conflicts=True
    )
    now = timezone.now()
    expires = now + timedelta(seconds=settings.SYNC_LEASE_S)
    with transaction.atomic():
        free = list(
            SyncLease.objects.select_for_update(skip_locked=True)
            .filter(account_id__in=wanted).filter(_free_or_mine(owner))
            .order_by("account_id").values_list("account_id", flat=True)[:limit]
        )
        SyncLease.objects.filter(account_id__in=free).filter(_free_or_mine(owner)).update(
            owner=owner, expires_at=expires, taken_at=now)
        return list(SyncLease.objects.filter(account_id__in=free, owner=owner, expires_at=expires)
                    .values_list("account_id", flat=True))


def renew(owner: str, account_ids: Iterable[int]) -> set[int]:
    """Extend our leases; returns the ones still ours (a lost one must stop syncing at once)."""
    held = list(account_ids)
    if not held:
        return set()
    expires = timezone.now() + timedelta(seconds=settings.SYNC_LEASE_S)
    with transaction.atomic():
        SyncLease.objects.filter(account_id__in=held, owner=owner).update(expires_at=expires)
        return set(SyncLease.objects.filter(account_id__in=held, owner=owner).values_list("account_id", flat=True))


def release(owner: str, account_ids: Iterable[int]) -> None:
    held = list(account_ids)
    if held:
        SyncLease.objects.filter(account_id__in=held, owner=owner).update(owner="", expires_at=None)


def holder(account_id: int) -> str | None:
    lease = SyncLease.objects.filter(account_id=account_id, expires_at__gt=timezone.now()).first()
    return lease.owner if lease and lease.owner else None

"""Leases: one account is synced by one worker at a time, across processes and machines.

A lease row holds the owner, an expiry and an epoch. Claiming locks candidate rows with
SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL; on SQLite the IMMEDIATE transaction already
serialises writers), so two workers never take the same account. The holder renews it on a
heartbeat; after a crash the lease simply expires and another worker takes the account over.

Fencing: expiry alone cannot stop a holder that stalled (CPU-starved, swapped out, SIGSTOP)
past its lease and then wakes up mid-pass, still believing it holds the account. Every claim
increases the lease's epoch, and the claimer gets a `Fence` (owner, account, epoch) that its
runner carries in a context variable (copied into the database thread by asgiref). Each commit of
mail calls `check()` in its own transaction: it locks the lease row (FOR KEY SHARE) and refuses
the whole transaction unless the row still has our owner and epoch. A takeover must lock that row
FOR UPDATE to change the epoch, so once the check passed nobody can take the account until we commit;
and after a takeover every late write of the old holder is rolled back, and it drops the account.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import F, Q
from django.utils import timezone

from buzon.sync.models import SyncLease

log = logging.getLogger("buzon.sync")

@dataclass(frozen=True)
class Fence:
    """Proof of one claim: valid while the lease row still has this owner and epoch."""

    owner: str
    account_id: int
    epoch: int


class LeaseLost(Exception):
    """A write was refused: another process took the account over (or it was released)."""

    def __init__(self, fence: Fence, now_owner: str, now_epoch: int | None) -> None:
        self.fence, self.now_owner, self.now_epoch = fence, now_owner, now_epoch
        super().__init__(f"lease on account {fence.account_id} lost: held as epoch {fence.epoch} by "
                         f"{fence.owner}, now epoch {now_epoch} by {now_owner or 'nobody'}")


_current: contextvars.ContextVar[Fence | None] = contextvars.ContextVar("buzon_sync_fence", default=None)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _free_or_mine(owner: str) -> Q:
    return Q(owner=owner) | Q(expires_at__isnull=True) | Q(expires_at__lt=timezone.now())


def claim(owner: str, account_ids: Iterable[int], *, limit: int) -> dict[int, Fence]:
    """Take up to `limit` of `account_ids` whose lease is free, expired or already ours.

    Every claim, even of a lease we held, starts a new epoch: a runner of ours from before
    (still finishing a write after we lost and took the account back) is fenced off too."""
    wanted = list(account_ids)
    if not wanted or limit <= 0:
        return {}
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
            owner=owner, expires_at=expires, taken_at=now, epoch=F("epoch") + 1)
        rows = SyncLease.objects.filter(account_id__in=free, owner=owner, expires_at=expires)
        return {pk: Fence(owner, pk, epoch) for pk, epoch in rows.values_list("account_id", "epoch")}


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


# ---------------------------------------------------------------------------------------- fencing
def _locked_leases(account_ids: list[int]) -> dict[int, tuple[str, int]]:
    """The lease rows' (owner, epoch) by account, locked FOR KEY SHARE until our transaction ends
    (in account order, the order claims lock them in too).

    That lock is the weakest that still works: only FOR UPDATE conflicts with it, and the epoch and
    owner change only under FOR UPDATE (claim), so no takeover can happen before we commit (the
    claimer skips the row); while renew and release (plain UPDATEs) never wait for a store, nor a
    store for them. A stronger lock deadlocked under load: a transaction storing several accounts'
    batches locks several lease rows one by one, and a renew locks many at once, in another order.
    SQLite has no row locks: its one writer at a time is the same guarantee."""
    table = connection.ops.quote_name(SyncLease._meta.db_table)
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    marks = ", ".join(["%s"] * len(account_ids))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT account_id, owner, epoch FROM {table} WHERE account_id IN ({marks}) "  # noqa: S608  # nosec B608
                       f"ORDER BY account_id{lock}", list(account_ids))
        return {int(account_id): (str(owner), int(epoch)) for account_id, owner, epoch in cursor.fetchall()}


def end_frozen_transactions() -> None:
    """In a sync process: let PostgreSQL end our sessions left idle inside a transaction for twice
    the lease. The fence keeps a process frozen mid-transaction (SIGSTOP, a paused VM) from
    committing after a takeover, but until it wakes its uncommitted rows would hold up the new
    holder, which waits to insert the same messages; this bounds that wait. Our transactions never
    wait on the network, so only a frozen or starved process stays idle in one that long."""
    limit_ms = max(10, 2 * settings.SYNC_LEASE_S) * 1000

    def on_connect(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)", [str(limit_ms)])

    connection_created.connect(on_connect, weak=False, dispatch_uid="buzon.sync.lease.end_frozen_transactions")


def fenced_context(fence: Fence) -> contextvars.Context:
    """A context for the task that syncs `fence.account_id` (asyncio.create_task(..., context=))."""
    context = contextvars.copy_context()
    context.run(_current.set, fence)
    return context


def hold(fence: Fence | None) -> None:
    """Make `fence` the current task's (or thread's) proof of holding its account."""
    _current.set(fence)


def current() -> Fence | None:
    return _current.get()


def check(account_id: int) -> None:
    """Call inside the transaction that commits `account_id`'s mail, as its last statement: raises
    LeaseLost (so the transaction rolls back) unless the fence this code runs under is still valid.

    Code that runs under no fence (a test, a tool syncing without the engine) is not checked;
    a fence for another account is a programming error, never a pass."""
    check_many({account_id: _current.get()})


def check_many(fences: dict[int, Fence | None]) -> None:
    """check() for several accounts' writes in one transaction, with one query: raises LeaseLost
    for the first account whose fence no longer holds (the whole transaction rolls back)."""
    for account_id, fence in fences.items():
        if fence is not None and fence.account_id != account_id:
            raise RuntimeError(f"a write for account {account_id} under the lease of account {fence.account_id}")
    held = {account_id: fence for account_id, fence in sorted(fences.items()) if fence is not None}
    if not held:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a lease check outside the transaction it guards checks nothing")
    rows = _locked_leases(list(held))
    for fence in held.values():
        row = rows.get(fence.account_id)
        if row is None or row != (fence.owner, fence.epoch):
            lost = LeaseLost(fence, row[0] if row else "", row[1] if row else None)
            log.warning("write refused, rolled back: %s", lost)
            raise lost

"""The sync engine: one asyncio process watching every account it holds a lease on.

Every `SYNC_REFRESH_S` it re-reads which accounts should be synced (picking up accounts added,
changed or removed while it runs), claims free leases, starts a runner per new account,
restarts runners whose settings changed, wakes runners asked to sync now, renews its leases
(stopping any account whose lease it lost), and drops connections that stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django import db
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from buzon.mailboxes.errors import MailServerError
from buzon.sync import dbs, deletion, lease, status
from buzon.sync.account import AccountConfig, eligible_accounts, load_config
from buzon.sync.runner import AccountRunner

log = logging.getLogger("buzon.sync")
SWITCH_INTERVAL_S = 0.0005


class Heartbeat(threading.Thread):
    def __init__(self, owner: str, held: Callable[[], list[int]], lost: Callable[[set[int]], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="sync-heartbeat", daemon=True)
        self.owner, self.held, self.lost, self.loop = owner, held, lost, loop
        self.halted = threading.Event()

    def run(self) -> None:
        renewed = time.monotonic()
        try:
            while not self.halted.wait(settings.SYNC_LEASE_S / 3):
                ids = self.held()
                try:
                    gone = set(ids) - lease.renew(self.owner, ids)
                    renewed = time.monotonic()
                except DatabaseError:
                    log.exception("could not renew sync leases")
                    db.close_old_connections()
                    # Fencing: leases we could not renew expire soon and another process may take
                    # them; stop syncing them before then, never two holders at once.
                    if ids and time.monotonic() - renewed > settings.SYNC_LEASE_S * 0.6:
                        self.loop.call_soon_threadsafe(self.lost, set(ids))
                    continue
                if gone:
                    self.loop.call_soon_threadsafe(self.lost, gone)
        finally:
            db.connections.close_all()

    def halt(self) -> None:
        self.halted.set()
        if self.is_alive():
            self.join(10)


@dataclass
class Running:
    runner: AccountRunner
    task: asyncio.Task[None]
    fingerprint: str


@dataclass
class Engine:
    owner: str = field(default_factory=lease.new_owner)
    only: set[int] | None = None  # restrict to these accounts (tests, `buzon sync ACCOUNT`)
    max_accounts: int = 10_000
    # claim a batch at a time, so processes starting together share the work
    claim_batch: int = field(default_factory=lambda: settings.SYNC_CLAIM_BATCH)
    # Renew leases from a thread of its own, with its own database connection, so a busy event
    # loop or a long queue of inserts can never delay the heartbeat past the lease's expiry.
    heartbeat_thread: bool = True
    running: dict[int, Running] = field(default_factory=dict)
    starting: set[int] = field(default_factory=set)  # claimed, runner not started yet: renewed too
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # (account, folder) -> the newest raw id waiting to be deleted from the server that woke it
    deletes_seen: dict[tuple[int, str], int] = field(default_factory=dict)

    async def run(self) -> None:
        dbs.STOPPING.clear()
        # The event loop and the database thread hand the GIL to each other on every socket or
        # SQLite call; at the default 5 ms switch interval each hand-back could wait 5 ms, so one
        # arrival's few statements cost ~50 ms and 1,000 accounts' arrivals queued for seconds.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        lease.end_frozen_transactions()
        log.info("sync engine %s started", self.owner)
        last_renew = time.monotonic()
        requests_since = timezone.now()
        heartbeat = Heartbeat(self.owner, lambda: [*self.running, *self.starting], self._lost,
                              asyncio.get_running_loop())
        if self.heartbeat_thread:
            heartbeat.start()
        try:
            while not self.stopping.is_set():
                desired = await dbs.run(eligible_accounts)
                if self.only is not None:
                    desired = {pk: fp for pk, fp in desired.items() if pk in self.only}
                await self._drop_unwanted(desired)
                if not self.heartbeat_thread and time.monotonic() - last_renew > settings.SYNC_LEASE_S / 3:
                    self._lost(set(self.running) - await dbs.run(lease.renew, self.owner, list(self.running)))
                    last_renew = time.monotonic()
                await self._claim_and_start(desired)
                now = timezone.now()
                for account_id in await dbs.run(status.requested_since, list(self.running), requests_since):
                    self.running[account_id].runner.wake()
                requests_since = now
                await self._wake_for_deletions()
                self._watchdog()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), settings.SYNC_REFRESH_S)
        finally:
            dbs.STOPPING.set()  # database jobs still queued for cancelled runners are skipped
            heartbeat.halt()
            await self._stop_all()
            log.info("sync engine %s stopped", self.owner)

    def stop(self) -> None:
        self.stopping.set()

    async def _drop_unwanted(self, desired: dict[int, str]) -> None:
        for account_id, item in list(self.running.items()):
            if item.task.done():
                self._reap(account_id, item)
            elif desired.get(account_id) != item.fingerprint:
                log.info("account %s removed or changed: restarting its sync", account_id)
                await self._stop(account_id)
                if account_id not in desired:
                    await dbs.run(lease.release, self.owner, [account_id])

    def _reap(self, account_id: int, item: Running) -> None:
        exc = item.task.exception() if not item.task.cancelled() else None
        if isinstance(exc, lease.LeaseLost):
            log.warning("%s: a late write was refused; account dropped", exc)
        elif exc is not None:
            log.error("sync of account %s crashed", account_id, exc_info=exc)
        del self.running[account_id]  # restarted on the next round, after its backoff

    def _lost(self, account_ids: set[int]) -> None:
        for account_id in account_ids:
            if account_id in self.running:
                log.warning("lease on account %s lost: stopping its sync", account_id)
                asyncio.ensure_future(self._stop(account_id))

    async def _claim_and_start(self, desired: dict[int, str]) -> None:
        waiting = [pk for pk in desired if pk not in self.running]
        room = min(self.claim_batch, self.max_accounts - len(self.running))
        if not waiting or room <= 0:
            return
        claimed = await dbs.run(lease.claim, self.owner, waiting, limit=room)
        self.starting.update(claimed)
        try:
            # One database job for the whole batch: awaited one by one, each load queued behind
            # the work of every runner already started, and 1,000 accounts took a minute to start.
            configs = await dbs.run(_load_configs, self.owner, list(claimed))
            for account_id in claimed:
                self.starting.discard(account_id)
                config = configs.get(account_id)
                if config is None:
                    continue
                runner = AccountRunner(config)
                # every commit of this runner checks its fence (lease.check), in its own transaction
                task = asyncio.create_task(runner.run(), name=f"sync-{account_id}",
                                           context=lease.fenced_context(claimed[account_id]))
                self.running[account_id] = Running(runner, task, desired[account_id])
        finally:
            self.starting.difference_update(claimed)

    async def _wake_for_deletions(self) -> None:
        """Mail the pipeline has just imported for an account that deletes it from the server: wake
        its folder (cutting its IDLE short), so it is deleted now, not when new mail next comes."""
        ids = [pk for pk, item in self.running.items() if item.runner.config.delete_after_download]
        if not ids:
            return
        for (account_id, folder), top in (await dbs.run(deletion.waiting, ids)).items():
            item = self.running.get(account_id)
            if item is not None and top > self.deletes_seen.get((account_id, folder), 0):
                self.deletes_seen[(account_id, folder)] = top
                item.runner.wake_folder(folder)

    def _watchdog(self) -> None:
        """A command silent for longer than its timeout should have failed already; if the
        library missed it, drop the connections so the runner retries."""
        limit = settings.SYNC_TIMEOUT_S * 2 + 5
        now = time.monotonic()
        for account_id, item in self.running.items():
            for conn in item.runner.connections:
                if conn.in_command and now - conn.last_data_at > limit:
                    log.warning("account %s: connection stalled; dropping it", account_id)
                    conn.close()

    async def _stop(self, account_id: int) -> None:
        item = self.running.pop(account_id, None)
        if item is None:
            return
        item.task.cancel()
        for conn in list(item.runner.connections):
            conn.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await item.task

    async def _stop_all(self) -> None:
        ids = list(self.running)
        await asyncio.gather(*(self._stop(pk) for pk in ids), return_exceptions=True)
        with contextlib.suppress(Exception):
            await dbs.run_fresh(lease.release, self.owner, ids)


def _load_configs(owner: str, account_ids: list[int]) -> dict[int, AccountConfig]:
    """Settings of each claimed account; one that cannot be synced as set up shows why and is let go."""
    configs: dict[int, AccountConfig] = {}
    for account_id in account_ids:
        log.info("lease taken account=%s owner=%s", account_id, owner)
        try:
            configs[account_id] = load_config(account_id)
        except MailServerError as error:
            log.warning("account %s cannot be synced as set up: %s", account_id, error.summary())
            status.record_failure(account_id, error)
            lease.release(owner, [account_id])
    return configs

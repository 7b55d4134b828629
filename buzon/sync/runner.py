"""Watching one account: a task per IMAP folder (sync, then IDLE or poll), or a POP3 poll loop.

A failure shows on the account in plain words and is retried after a backoff; a request to
sync now (control.request_sync) cuts both an IDLE and a backoff short. One account's trouble
stays in its own tasks: nothing here blocks the event loop or another account.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import aioimaplib
from django.conf import settings
from django.utils import timezone

from buzon.mailboxes.connections import open_imap, open_pop3
from buzon.mailboxes.errors import FolderMissing, MailServerError, classify
from buzon.mailboxes.models import AccountState
from buzon.sync import dbs, progress, status
from buzon.sync.account import AccountConfig
from buzon.sync.imap import sync_folder
from buzon.sync.imap_conn import CommandFailed, ImapConnection
from buzon.sync.models import FolderCursor
from buzon.sync.pop3 import sync_pop3

log = logging.getLogger("buzon.sync")
PROGRESS_MIN = 50  # messages in one pass before the account shows a progress bar
STATE_REFRESH_S = 30.0  # last_synced_at is rewritten at most this often while nothing changes
FAULTS = (MailServerError, OSError, EOFError, aioimaplib.AioImapException, CommandFailed, asyncio.TimeoutError)


class AccountRunner:
    def __init__(self, config: AccountConfig, *, once: bool = False) -> None:
        self.config = config
        self.once = once
        self._wakes: dict[str, asyncio.Event] = {}  # folder ("" for POP3) -> its task's wake-up
        self.busy_since: float | None = None  # set while a pass runs
        self.connections: list[ImapConnection] = []
        self.folder_errors: dict[str, MailServerError] = {}  # the account is in error while any is
        self.stored = 0
        self._progress_shown = False
        self._state_written: tuple[str, float] = ("", 0.0)  # what the account row last got, and when

    def wake(self) -> None:
        for event in self._wakes.values():
            event.set()

    def wake_folder(self, folder: str) -> None:
        """Start a pass over this folder now (an IDLE is cut short), e.g. to delete imported mail."""
        event = self._wakes.get(folder)
        if event is not None:
            event.set()

    def _new_wake(self, folder: str = "") -> asyncio.Event:
        event = self._wakes[folder] = asyncio.Event()
        return event

    async def run(self) -> None:
        if self.config.is_imap:
            # One folder's failure must not stop the others (in a one-off pass, it is raised after).
            results = await asyncio.gather(*(self._watch_folder(folder) for folder in self.config.folders),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        else:
            await self._watch_pop3()

    # ------------------------------------------------------------------ failures and backoff
    def _error(self, exc: BaseException, stage: str, folder: str = "") -> MailServerError:
        if isinstance(exc, CommandFailed) and exc.command == "EXAMINE":
            return FolderMissing(self.config.server.host, self.config.server.port, "folder", exc.text[:200],
                                 protocol="imap", folder=folder)
        error = classify(exc, self.config.server, stage)
        if error.code == "timeout" and not error.timeout:
            error.timeout = settings.SYNC_TIMEOUT_S
        return error

    async def _failed(self, exc: BaseException, stage: str, folder: str = "") -> None:
        self._state_written = (AccountState.ERROR, time.monotonic())
        error = self._error(exc, stage, folder)
        self.folder_errors[folder] = error
        log.warning("account %s %s: %s", self.config.address, folder, error.summary())
        await dbs.run(status.record_failure, self.config.account_id, error)
        if self.once:
            raise error

    async def _wait_backoff(self, wake: asyncio.Event) -> None:
        retry_at: datetime | None = await dbs.run(status.retry_at, self.config.account_id)
        if retry_at is None:
            return
        delay = (retry_at - timezone.now()).total_seconds()
        if delay > 0 and not self.once:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), delay)
            except TimeoutError:
                pass

    def _work_found(self, count: int) -> bool:
        """Whether this pass shows a progress bar: a download worth one does; a message or two
        arriving by IDLE does not (every write here would be paid on each arrival, for every account)."""
        if count < PROGRESS_MIN and not self.once:
            return False
        self._progress_shown = True
        asyncio.ensure_future(dbs.run(progress.add_work, self.config.account_id, count))
        if not self.folder_errors:
            asyncio.ensure_future(dbs.run(status.record_syncing, self.config.account_id))
            self._state_written = (AccountState.SYNCING, time.monotonic())
        return True

    async def _pass_done(self, stored: int, folder: str = "") -> None:
        self.stored += stored
        self.folder_errors.pop(folder, None)
        if self._progress_shown:
            self._progress_shown = False
            await dbs.run(progress.finish, self.config.account_id)
        if self.folder_errors:  # another folder still fails: keep showing its error
            await dbs.run(status.record_synced, self.config.account_id)
            return
        state, when = self._state_written
        if state != AccountState.IDLE or time.monotonic() - when > STATE_REFRESH_S:
            await dbs.run(status.record_state, self.config.account_id, AccountState.IDLE, synced=True)
            self._state_written = (AccountState.IDLE, time.monotonic())

    # ------------------------------------------------------------------ IMAP
    async def _watch_folder(self, folder: str) -> None:
        wake = self._new_wake(folder)
        opts = self.config.folder_options(folder, settings.SYNC_FETCH_CHUNK, settings.SYNC_FETCH_CHUNK_BYTES,
                                          settings.SYNC_FETCH_DEPTH)
        cursor: FolderCursor | None = None  # as committed by the last pass; re-read after a failure
        while True:
            await self._wait_backoff(wake)
            conn: ImapConnection | None = None
            stage = "connect"
            try:
                self.busy_since = time.monotonic()
                client = await open_imap(self.config.server, timeout=settings.SYNC_TIMEOUT_S)
                conn = ImapConnection(client, timeout=settings.SYNC_TIMEOUT_S)
                self.connections.append(conn)
                while True:
                    stage = ""
                    self.busy_since = time.monotonic()
                    wake.clear()
                    known, cursor = cursor, None  # trusted again once this pass has finished
                    stored, cursor = await sync_folder(conn, opts, self._work_found, known)
                    self.busy_since = None
                    if stored:
                        log.info("stored account=%s folder=%s count=%s", self.config.account_id, folder, stored)
                    await self._pass_done(stored, folder)
                    if self.once:
                        return
                    if conn.mail_signalled:
                        continue  # announced during the pass: IDLE would not announce it again
                    await self._wait_for_change(conn, wake)
            except FAULTS as exc:
                await self._failed(exc, stage, folder)
            finally:
                self.busy_since = None
                if conn is not None:
                    self.connections.remove(conn)
                    await conn.logout()

    async def _wait_for_change(self, conn: ImapConnection, wake: asyncio.Event) -> None:
        """IDLE (re-armed well before servers' 29-minute limit), or poll where there is no IDLE."""
        if conn.can_idle:
            reason = await conn.idle(wake, settings.SYNC_IDLE_REARM_S)
            if reason != "mail" and reason != "wake":
                await dbs.run(status.record_contact, self.config.account_id)
            return
        try:
            await asyncio.wait_for(wake.wait(), settings.SYNC_POLL_INTERVAL_S)
        except TimeoutError:
            pass
        self.busy_since = time.monotonic()
        await conn.noop()

    # ------------------------------------------------------------------ POP3
    async def _watch_pop3(self) -> None:
        wake = self._new_wake()
        while True:
            await self._wait_backoff(wake)
            wake.clear()  # a wake-up from now on (mail just imported, to delete) means one more pass
            stage = "connect"
            client = None
            try:
                self.busy_since = time.monotonic()
                client = await asyncio.to_thread(open_pop3, self.config.server, timeout=settings.SYNC_TIMEOUT_S)
                stage = ""
                stored = await sync_pop3(client, self.config.pop3_options(), self._work_found)  # ends with QUIT
                client = None
                if stored:
                    log.info("stored account=%s folder= count=%s", self.config.account_id, stored)
                self.busy_since = None
                await self._pass_done(stored)
            except FAULTS as exc:
                await self._failed(exc, stage)
            finally:
                self.busy_since = None
                if client is not None:
                    await asyncio.to_thread(_drop, client)
            if self.once:
                return
            try:
                await asyncio.wait_for(wake.wait(), settings.SYNC_POLL_INTERVAL_S)
            except TimeoutError:
                pass


def _drop(client: object) -> None:
    """Close a POP3 session without QUIT, so the server undoes any DELE of this session."""
    sock = getattr(client, "sock", None)
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass

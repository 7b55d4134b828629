"""Django's SQLite backend, with writers that take turns instead of sleeping on the write lock.

SQLite has one writer at a time. A connection that finds the write lock taken waits in SQLite's
busy handler, which sleeps and looks again: 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, then
100 ms at a time. A writer that has waited a few rounds sleeps through the moments the lock is
free, and the others, who came later and sleep less, take it first: with eight API clients sending
at once, a web thread waited a median 4 ms for BEGIN, a tenth of them over 60 ms and some over a
second, for transactions that hold the lock for about one millisecond.

So before BEGIN (IMMEDIATE, settings.py: every transaction takes the lock at its start) a writer
takes its turn. Inside a process, a lock handed straight to the next thread waiting; between
processes (web, workers, sync), an flock(2) on a file beside the database, looked at every
millisecond or two by the one thread of each process whose turn it is. The turn is given back when
the transaction ends (commit, rollback or the connection closing).

The turn only orders writers: SQLite's own lock still guards the data, and each wait is bounded by
the connection's timeout, after which the writer goes on to BEGIN and SQLite's busy handler as
before. A write outside a transaction (autocommit) does not take a turn. An in-memory database has
no file to lock and nobody else to share it with: it takes none.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

from django.db.backends.sqlite3 import base

_turns: dict[str, _Turns] = {}
_turns_lock = threading.Lock()
_POLL_S = (0.0005, 0.001, 0.002)  # the first looks at the file lock, then every 2 ms


class _Turns:
    """The writers' turns on one database file, in this process."""

    def __init__(self, path: str) -> None:
        self.path = path + "-writer.lock"
        self.threads = threading.Lock()
        self.fd: int | None = None
        self.pid = 0

    def _file(self) -> int:
        if self.fd is None or self.pid != os.getpid():  # a forked child opens its own (flock is per open file)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self.pid = os.getpid()
        return self.fd

    def take(self, timeout: float) -> tuple[bool, bool]:
        """Wait for this process's turn, then the database's; (held in process, held between processes)."""
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            return False, False
        try:
            fd = self._file()
        except OSError:  # a read-only data directory: SQLite's lock alone orders writers
            return True, False
        for attempt in range(1 << 30):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True, True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return True, False
                time.sleep(_POLL_S[min(attempt, len(_POLL_S) - 1)])
        return True, False  # pragma: no cover

    def give_back(self, threads: bool, file: bool) -> None:
        if file and self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        if threads:
            self.threads.release()


def _turns_for(path: str) -> _Turns:
    with _turns_lock:
        turns = _turns.get(path)
        if turns is None:
            turns = _turns[path] = _Turns(path)
        return turns


class DatabaseWrapper(base.DatabaseWrapper):
    _turn: tuple[_Turns, bool, bool] | None = None

    def _writer_turns(self) -> _Turns | None:
        name = str(self.settings_dict["NAME"])
        if self.is_in_memory_db() or not name:
            return None
        return _turns_for(os.path.abspath(name))

    def _start_transaction_under_autocommit(self) -> None:
        turns = self._writer_turns() if self._turn is None else None
        if turns is not None:
            timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
            self._turn = (turns, *turns.take(timeout))
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in django-stubs
        except BaseException:
            self._give_back()
            raise

    def _give_back(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn[0].give_back(turn[1], turn[2])

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._give_back_unless_open()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._give_back_unless_open()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # not in django-stubs
        finally:
            self._give_back()

    def _give_back_unless_open(self) -> None:
        """The transaction is over unless SQLite says one is still open (a commit that failed)."""
        connection: Any = self.connection
        if connection is None or not connection.in_transaction:
            self._give_back()

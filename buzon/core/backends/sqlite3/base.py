"""Django's SQLite backend, with writers that take turns instead of sleeping on the write lock.

SQLite has one writer at a time. A connection that finds the write lock taken waits in SQLite's
busy handler, which sleeps and looks again: 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, then
100 ms at a time. A writer that has waited a few rounds sleeps through the moments the lock is
free, and the others, who came later and sleep less, take it first: with eight API clients sending
at once, a web thread waited a median 4 ms for BEGIN, a tenth of them over 60 ms and some over a
second, for transactions that hold the lock for about one millisecond.

So before BEGIN (IMMEDIATE, settings.py: every transaction takes the lock at its start) a writer
takes its turn. Inside a process, a lock handed straight to the next thread waiting; between
processes (web, workers, sync), an flock(2) on a file beside the database (``-writer.lock``), looked
at every millisecond or two by the one thread of each process whose turn it is. A process whose
thread is looking holds a shared lock on a second file (``-writer.wait``) meanwhile, and a process
that finds it held lets that one go first (its next writer waits a little longer than the others
look) instead of handing the turn from thread to thread while another process waits. The turn is
given back when the transaction ends (commit, rollback or the connection closing).

The turn only orders writers: SQLite's own lock still guards the data. Waiting for a turn is
bounded by the connection's timeout, as SQLite's busy handler was: after it, the transaction fails
as it did then ("database is locked"), without waiting that long again in BEGIN. A write outside a
transaction (autocommit) takes no turn, and waits in SQLite's handler as before. An in-memory
database has no file to lock and nobody else to share it with: it takes none.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
import time
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base, creation

_POLL_S = (0.0005, 0.001, 0.002)  # how often a waiting process looks at the file lock (then every 2 ms)
_YIELD_S = 0.003  # a writer that lets another process go first: longer than that process looks
_SUFFIXES = ("-writer.lock", "-writer.wait")


class _Turns:
    """The writers' turns on one database file, in this process."""

    def __init__(self, path: str) -> None:
        self.paths = tuple(path + suffix for suffix in _SUFFIXES)
        self.threads = threading.Lock()
        self.files: tuple[int, int] | None = None
        self.pid = 0

    def _files(self) -> tuple[int, int]:
        if self.files is None or self.pid != os.getpid():  # a forked child opens its own (flock is per open file)
            turn, wait = (os.open(p, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600) for p in self.paths)
            self.files, self.pid = (turn, wait), os.getpid()
        return self.files

    @staticmethod
    def _others_wait(wait: int) -> bool:
        try:
            fcntl.flock(wait, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(wait, fcntl.LOCK_UN)
        return False

    def take(self, timeout: float) -> bool:
        """Wait for this process's turn, then the database's: False when `timeout` ran out first.
        True with the process's turn alone when the files cannot be locked (a read-only data
        directory, a file system without locks): SQLite's lock then orders the processes."""
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            return False
        try:
            return self._take_file(deadline)
        except OSError:
            return True
        except BaseException:  # interrupted: the process's turn goes to the next thread
            self.threads.release()
            raise

    def _take_file(self, deadline: float) -> bool:
        turn, wait = self._files()
        if self._others_wait(wait):  # until one of them has the turn (it lets go of -writer.wait), or briefly
            yielded = time.monotonic() + _YIELD_S
            while time.monotonic() < yielded and self._others_wait(wait):
                time.sleep(_POLL_S[0] / 2)
        waiting = False
        try:
            for attempt in itertools.count():
                try:
                    fcntl.flock(turn, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        self.threads.release()
                        return False
                if not waiting:
                    fcntl.flock(wait, fcntl.LOCK_SH)
                    waiting = True
                time.sleep(_POLL_S[min(attempt, len(_POLL_S) - 1)])
            raise AssertionError("unreachable")  # itertools.count() never ends
        finally:
            if waiting:
                fcntl.flock(wait, fcntl.LOCK_UN)

    def give_back(self) -> None:
        try:
            if self.files is not None and self.pid == os.getpid():
                with contextlib.suppress(OSError):
                    fcntl.flock(self.files[0], fcntl.LOCK_UN)
        finally:
            self.threads.release()


_turns: dict[str, _Turns] = {}
_turns_lock = threading.Lock()


def _turns_for(path: str) -> _Turns:
    with _turns_lock:
        turns = _turns.get(path)
        if turns is None:
            turns = _turns[path] = _Turns(path)
        return turns


class DatabaseCreation(creation.DatabaseCreation):
    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        super()._destroy_test_db(test_database_name, verbosity)  # type: ignore[misc]  # not in django-stubs
        if test_database_name and not self.is_in_memory_db(test_database_name):
            for suffix in _SUFFIXES:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(test_database_name + suffix)


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    _turn: _Turns | None = None

    def _writer_turns(self) -> _Turns | None:
        name = str(self.settings_dict["NAME"] or "")
        if not name or self.is_in_memory_db():
            return None
        return _turns_for(os.path.abspath(name))

    def _start_transaction_under_autocommit(self) -> None:
        turns = self._writer_turns() if self._turn is None else None
        if turns is not None:
            if not turns.take(float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))):
                raise OperationalError("database is locked (no turn to write within the timeout)")
            self._turn = turns
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in django-stubs
        except BaseException:
            self._give_back()
            raise

    def _give_back(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.give_back()

    def _give_back_unless_open(self) -> None:
        """The transaction is over unless SQLite says one is still open (a commit that failed)."""
        connection: Any = self.connection
        if connection is None or not connection.in_transaction:
            self._give_back()

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._give_back_unless_open()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._give_back_unless_open()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._give_back()

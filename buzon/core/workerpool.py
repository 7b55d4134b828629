"""The slots of `buzon worker`: threads each running one task at a time from their queues.

Each slot is the backend's own worker loop in a thread: django_tasks_db's Worker (the database
queue; each thread has its own database connection, kept for BUZON_DB_CONN_MAX_AGE seconds) or an
RQ worker (buzon.core.rqworker.ThreadWorker; one of them runs RQ's scheduler for every queue the
process serves). The main thread only takes signals and watches: SIGTERM or SIGINT lets each slot
finish the task it runs and stop. The same signal again ends the process at once (the database
backend's tasks left running are put back in the queue by the other workers, buzon.core.periodic);
the other one does not: Ctrl-C reaches every process of `buzon run` from the terminal, and then its
supervisor's SIGTERM, one request by two roads. Once the slots have stopped, signals are ignored, so
that none cuts short the heartbeat's goodbye at exit. A slot
that dies ends the process with an error, so that `buzon run` or systemd starts it again rather
than leaving a queue unserved.

Nothing here is shared between slots but what is safe to share: the heartbeat's counters (a lock),
the SMTP pool (a lock and a semaphore per account, buzon.outbound.smtp), redis-py's clients.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, cast

from django import db
from django.utils import timezone

log = logging.getLogger("buzon.worker")

# Set while this process's slots run tasks, and once they are asked to stop: a task that would wait
# for more work to arrive (outbound delivery lingering, buzon.outbound.sender) asks these.
_serving = threading.Event()
_stopping = threading.Event()


def may_linger(queue: str) -> bool:
    """Whether a task of `queue` may wait here for more of its work: it runs in a `buzon worker` slot
    that serves that queue alone (not in a web request, a command or a test calling it, nor in a
    slot other queues' tasks wait for: `--concurrency 1`), and the worker has not been asked to stop."""
    slot = threading.current_thread()
    return (_serving.is_set() and not _stopping.is_set() and isinstance(slot, Slot)
            and set(slot.queues) == {queue})


class Slot(threading.Thread):
    def __init__(self, index: int, queues: tuple[str, ...]) -> None:
        # daemon: a second SIGTERM ends the process without waiting for a task that hangs
        super().__init__(name=f"slot-{index}-{'+'.join(queues)}", daemon=True)
        self.queues = queues
        self.stopping = threading.Event()

    def request_stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        try:
            self.work()
        except Exception:
            if not self.stopping.is_set():
                log.exception("worker slot %s stopped on an error", self.name)
            raise
        finally:
            db.connections.close_all()

    def work(self) -> None:
        raise NotImplementedError


class ReadyQueues:
    """The one look at the database queue for all of a process's idle slots: every ``interval``
    seconds while at least one slot waits, one read (a query, whatever the number of slots and
    queues) says which of their queues have a task ready, and wakes the slots that serve them.

    Each idle slot used to poll for itself: two queries (Django's connection health check, then
    whether a task is ready) every 0.05 s per slot, 0.13-0.14 of a core for the five slots of
    `buzon run` on a 2-core machine with nothing to do (0.02-0.03 since). A slot that has just run
    a task looks again at once itself, so a busy queue is not held to this pace."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._slots: list[DatabaseSlot] = []
        self._thread: threading.Thread | None = None
        self._sql: dict[tuple[str, ...], str] = {}

    def join(self, slot: DatabaseSlot) -> None:
        with self._lock:
            self._slots.append(slot)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ready-queues", daemon=True)
                self._thread.start()

    def leave(self, slot: DatabaseSlot) -> None:
        with self._lock:
            self._slots.remove(slot)

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._slots:
                        self._thread = None
                        return
                    waiting = [slot for slot in self._slots if slot.idle.is_set()]
                if waiting:
                    ready = self._ready(sorted({queue for slot in waiting for queue in slot.queues}))
                    for slot in _to_wake(waiting, ready):
                        slot.wake.set()
                time.sleep(self.interval)
        finally:
            db.connections.close_all()

    def _ready(self, queues: Sequence[str]) -> set[str]:
        """Which of ``queues`` have a task ready. A database error (a restart) closes the connection,
        to open a new one next time, and wakes every slot: each then meets the error itself, as it
        did when it polled alone, and its own connection is dropped before its next claim."""
        from django_tasks_db.models import get_date_max

        try:
            with db.connection.cursor() as cursor:
                now = db.connection.ops.adapt_datetimefield_value(timezone.now())
                never = db.connection.ops.adapt_datetimefield_value(get_date_max())
                cursor.execute(self._query(tuple(queues)),
                               [value for queue in queues for value in (queue, queue, never, now)])
                return {row[0] for row in cursor.fetchall()}
        except db.DatabaseError:
            log.warning("could not look for ready tasks; trying again", exc_info=True)
            db.connection.close()
            return set(queues)

    def _query(self, queues: tuple[str, ...]) -> str:
        """A row per queue with a task ready: DBTaskResult.objects.ready() of the default backend, as
        one EXISTS per queue (each stops at its first task, however long the queue)."""
        if queues not in self._sql:
            from django_tasks.base import TaskResultStatus
            from django_tasks_db.models import DBTaskResult

            table = db.connection.ops.quote_name(DBTaskResult._meta.db_table)
            # names and a constant only; the queues and times are parameters
            one = (f"SELECT %s WHERE EXISTS (SELECT 1 FROM {table} WHERE status = '{TaskResultStatus.READY}' "  # noqa: S608  # nosec B608
                   "AND backend_name = 'default' AND queue_name = %s AND (run_after = %s OR run_after <= %s))")
            self._sql[queues] = " UNION ALL ".join([one] * len(queues))
        return self._sql[queues]


def _to_wake(waiting: Sequence[DatabaseSlot], ready: set[str]) -> set[DatabaseSlot]:
    """For each queue with a task ready, the idle slots that serve the fewest queues among those
    serving it: a queue's own slot before a spare one that serves every queue. A delivery task in
    the outbound slot waits there for the next message sent (buzon.outbound.sender lingers only in
    a slot that serves outbound alone), so on a machine with spare slots one message sent at a time
    still shares a task; a spare slot takes the queue's tasks while its own slots are busy."""
    chosen: set[DatabaseSlot] = set()
    for queue in ready:
        serving = [slot for slot in waiting if queue in slot.queues]
        if serving:
            fewest = min(len(slot.queues) for slot in serving)
            chosen.update(slot for slot in serving if len(slot.queues) == fewest)
    return chosen


class DatabaseSlot(Slot):
    """django_tasks_db's Worker runs each task; the loop that finds them is this one. The library's
    takes an exclusive transaction (SQLite's write lock) on every poll, so an idle slot locked out
    every writer five times a second, and a task queued just after a poll waited the whole interval.
    Here an idle slot waits to be woken by its process's ReadyQueues (a read every ``interval``
    seconds, 0.05 by default, for all the process's idle slots at once), and takes the lock to claim
    a task, as the library does, only when one is there. After a task it looks again at once."""

    def __init__(self, index: int, queues: tuple[str, ...], worker_id: str, interval: float,
                 watch: ReadyQueues | None = None) -> None:
        from django_tasks_db.management.commands.db_worker import Worker

        super().__init__(index, queues)
        self.watch = watch or ReadyQueues(interval)
        self.idle = threading.Event()  # waiting to be woken (ReadyQueues looks for its queues)
        self.wake = threading.Event()
        self.worker = Worker(queue_names=list(queues), interval=interval, batch=False, backend_name="default",
                             startup_delay=False, max_tasks=None, worker_id=worker_id, excluded_queue_names=[])

    def request_stop(self) -> None:
        super().request_stop()
        self.worker.running = False  # seen after the task it runs, or at once when idle
        self.wake.set()

    def _claim(self) -> Any:
        from django.db.utils import OperationalError
        from django_tasks_db.models import DBTaskResult
        from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

        ready = DBTaskResult.objects.ready().filter(backend_name="default", queue_name__in=self.queues)
        if not ready.exists():  # a read: no lock while there is nothing to do
            return None
        with exclusive_transaction(ready.db):
            try:
                found = ready.get_locked()
                if found is not None:
                    found.claim(self.worker.worker_id)  # another process will not take it now
                return found
            except OperationalError as exc:
                if is_locked_database_exception(exc):  # busy: look again next time
                    return None
                raise

    def work(self) -> None:
        # the library loop's own first line: operators (and the load bench) look for it
        logging.getLogger("django_tasks_db").info("Starting worker worker_id=%s queues=%s", self.worker.worker_id,
                                                  ",".join(self.queues))
        self.watch.join(self)
        try:
            while self.worker.running:
                self.wake.clear()
                db.close_old_connections()  # a connection the database dropped is not used again
                found = self._claim()
                if found is not None:
                    self.worker.run_task(found)
                    continue
                self.idle.set()
                self.wake.wait()
                self.idle.clear()
        finally:
            self.watch.leave(self)


class RedisSlot(Slot):
    def __init__(self, index: int, queues: tuple[str, ...], name: str,
                 scheduler_queues: Sequence[str] | None = None) -> None:
        import django_rq

        from buzon.core.rqworker import ThreadWorker

        super().__init__(index, queues)
        self.worker = cast(ThreadWorker, django_rq.get_worker(
            *queues, worker_class=cast(Any, ThreadWorker), job_class="django_tasks_rq.backend.Job", name=name,
            stopping=self.stopping))
        self.worker.scheduler_queues = list(scheduler_queues) if scheduler_queues else None
        self.with_scheduler = scheduler_queues is not None

    def work(self) -> None:
        self.worker.work(with_scheduler=self.with_scheduler, logging_level="INFO")


class Pool:
    def __init__(self, slots: list[Slot]) -> None:
        self.slots = slots
        self.stopping = threading.Event()
        self.first_signal: int | None = None
        self.leaving = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.leaving:
            return
        if self.stopping.is_set():
            if signum != self.first_signal:
                log.info("%s: already stopping", signal.strsignal(signum))
                return
            log.warning("second %s: stopping now, tasks running are abandoned", signal.strsignal(signum))
            self.leaving = True
            sys.exit(1)
        log.info("%s: finishing the tasks running, then stopping", signal.strsignal(signum))
        self.first_signal = signum
        self._stop()

    def _stop(self) -> None:
        self.stopping.set()
        _stopping.set()
        for slot in self.slots:
            slot.request_stop()

    def run(self) -> int:
        """Start the slots and wait; 0 once stopped by a signal, 1 if a slot died."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        _stopping.clear()
        _serving.set()
        for slot in self.slots:
            slot.start()
        log.info("worker running %s slot(s): %s", len(self.slots), "; ".join(",".join(s.queues) for s in self.slots))
        code = 0
        while not self.stopping.wait(0.5):
            dead = [slot.name for slot in self.slots if not slot.is_alive()]
            if dead:
                log.error("worker slot(s) %s stopped; stopping the worker so that it is started again",
                          ", ".join(dead))
                code = 1
                self._stop()
        for slot in self.slots:
            slot.join()
        _serving.clear()
        self.leaving = True
        return code

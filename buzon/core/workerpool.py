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
from collections.abc import Sequence
from types import FrameType
from typing import Any, cast

from django import db

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


class DatabaseSlot(Slot):
    """django_tasks_db's Worker runs each task; the loop that finds them is this one. The library's
    takes an exclusive transaction (SQLite's write lock) on every poll, so an idle slot locked out
    every writer five times a second, and a task queued just after a poll waited the whole interval.
    Here an idle slot only reads (is a task ready in my queues? an index on status answers), every
    ``interval`` seconds (0.05 by default: a few hundredths of a millisecond of CPU each), and takes
    the lock to claim a task, as the library does, only when one is there."""

    def __init__(self, index: int, queues: tuple[str, ...], worker_id: str, interval: float) -> None:
        from django_tasks_db.management.commands.db_worker import Worker

        super().__init__(index, queues)
        self.interval = interval
        self.worker = Worker(queue_names=list(queues), interval=interval, batch=False, backend_name="default",
                             startup_delay=False, max_tasks=None, worker_id=worker_id, excluded_queue_names=[])

    def request_stop(self) -> None:
        super().request_stop()
        self.worker.running = False  # seen after the task it runs, or at once when idle

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
        while self.worker.running:
            db.close_old_connections()  # a connection the database dropped is not used again
            found = self._claim()
            if found is not None:
                self.worker.run_task(found)
                continue
            self.stopping.wait(self.interval)


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

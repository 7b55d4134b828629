"""The RQ worker of `buzon worker` (BUZON_TASKS=rq): nothing in it forks.

Jobs run in the worker process itself (RQ's SimpleWorker: a fork per job costs more than the job),
and so does RQ's scheduler, which moves jobs whose time has come (deferred deliveries, retries) into
their queue. RQ runs that scheduler in a process it forks from the worker, at start and again from
its maintenance whenever it wins the scheduler lock later; by then the worker runs threads
(heartbeat, periodic jobs, RQ's own pub/sub listener, SMTP connections) whose locks, connections and
half-imported modules the fork would copy into the scheduler (see buzon.core.forking). Here the
scheduler is a thread of the worker instead, doing what RQ's scheduler process does each interval.

`buzon worker` runs several RQ workers at once, one per slot (buzon.core.slots), each a ThreadWorker
in a thread of its own; one of them runs the scheduler for every queue the process serves.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from redis.exceptions import RedisError
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty
from rq.worker import SimpleWorker

log = logging.getLogger("buzon.worker")
STOP_POLL_S = 1  # an idle slot's longest wait for a job before it checks whether to stop


class ThreadScheduler(RQScheduler):
    """RQ's scheduler run in a thread of the worker; `_process` (RQ's name) is that thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake = threading.Event()

    def start(self) -> threading.Thread:  # type: ignore[override]
        self._status = self.Status.STARTED
        self._stop_requested = False
        self._wake.clear()
        thread = threading.Thread(target=self._run, name="rq-scheduler", daemon=True)
        self._process = thread  # type: ignore[assignment]  # the worker only calls is_alive() on it
        thread.start()
        return thread

    def request_stop(self, signum: Any = None, frame: Any = None) -> None:
        self._stop_requested = True
        self._wake.set()

    def _run(self) -> None:
        log.info("RQ scheduler for %s running in the worker process", ", ".join(sorted(self._queue_names)))
        self.register_birth()
        while not self._stop_requested:
            try:
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except RedisError:  # Redis restarting: try again next interval, as the worker itself does
                log.warning("RQ scheduler could not reach Redis; retrying", exc_info=True)
            self._wake.wait(self.interval)
        try:
            self.stop()  # releases its locks, so another worker's scheduler takes over at once
        except RedisError:
            log.warning("RQ scheduler could not release its locks (they expire by themselves)")


class Worker(SimpleWorker):
    #: the queues whose deferred jobs this worker's scheduler moves (all its process serves; RQ: its own)
    scheduler_queues: list[str] | None = None

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        # RQ's own, with ThreadScheduler for RQScheduler.
        self.scheduler = ThreadScheduler(
            self.scheduler_queues or self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return  # another worker's scheduler runs; RQ's maintenance tries again later
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()

    def stop_scheduler(self) -> None:
        scheduler = self.scheduler
        if scheduler is None or scheduler._process is None:
            return
        scheduler.request_stop()
        scheduler._process.join(10)


class ThreadWorker(Worker):
    """One slot of `buzon worker` (buzon.core.slots): an RQ worker in a thread of its own.

    RQ's workers take signals and time jobs out with SIGALRM, which only the main thread may do: here
    the main thread takes the signals and sets `stopping`, and a timer thread raises the timeout in
    the job's thread (RQ's TimerDeathPenalty). While idle the worker waits for a job in short rounds,
    so a stop is seen within STOP_POLL_S; a job running then is finished first.
    """

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, stopping: threading.Event | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = stopping or threading.Event()

    def _install_signal_handlers(self) -> None:
        pass  # the process's main thread takes SIGINT and SIGTERM (buzon.core.workerpool)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        while not self.stopping.is_set():
            found = super().dequeue_job_and_maintain_ttl(STOP_POLL_S, max_idle_time=STOP_POLL_S)
            if found is not None:
                return found
        raise StopRequested()

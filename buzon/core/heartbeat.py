"""Process heartbeats: each long-running process says who it is and that it is alive.

A daemon thread writes the process's row every HEARTBEAT_S seconds with its own short-lived
database connection. It also carries the process's counters: tasks finished (from django_tasks'
`task_finished` signal) and any in-process stats named by settings.PROCESS_STATS (dotted paths to
dicts of floats, e.g. the pipeline's seconds per step), so /metrics can sum them across processes.

Start it only in a process that will not fork afterwards (for gunicorn: in each worker, never in the
master, see buzon.core.management.commands.web): a fork copies whatever lock this thread holds at that
instant (SQLite's mutex while it writes, Python's lock of a module being imported) into a child
where no thread will ever release it. For the same reason the stats are read only from modules the
process has already imported: the heartbeat never imports anything itself.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections import deque
from typing import Any

from django import db
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from buzon.core.models import ProcessHeartbeat

log = logging.getLogger("buzon.heartbeat")


class Heartbeat(threading.Thread):
    def __init__(self, kind: str, interval: float | None = None) -> None:
        super().__init__(name=f"heartbeat-{kind}", daemon=True)
        self.kind = kind
        self.interval = interval if interval is not None else float(settings.HEARTBEAT_S)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host[:40]}:{self.pid}:{uuid.uuid4().hex[:8]}"  # < 64: db_worker ids
        self.halted = threading.Event()
        self.tasks_total = 0
        self._finished: deque[float] = deque()  # monotonic times of the last minute's tasks
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ counters
    def task_done(self, **_kwargs: Any) -> None:
        with self._lock:
            self.tasks_total += 1
            self._finished.append(time.monotonic())

    def _per_minute(self) -> float:
        cutoff = time.monotonic() - 60
        with self._lock:
            while self._finished and self._finished[0] < cutoff:
                self._finished.popleft()
            return float(len(self._finished))

    def _stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        for name, path in getattr(settings, "PROCESS_STATS", {}).items():
            module_name, _, attribute = path.rpartition(".")
            # A module this process never imported has counted nothing; importing it here would take
            # its import lock in this thread (see the module docstring).
            values = getattr(sys.modules.get(module_name), attribute, None)
            if values is not None:
                stats[name] = {str(k): float(v) for k, v in dict(values).items()}
        return stats

    # ------------------------------------------------------------------ writing
    def beat(self) -> None:
        now = timezone.now()
        fields = {"beat_at": now, "tasks_total": self.tasks_total, "tasks_per_minute": self._per_minute(),
                  "stats": self._stats()}
        updated = ProcessHeartbeat.objects.filter(pk=self.id).update(**fields)
        if not updated:  # first beat (or the row was pruned): say who we are
            ProcessHeartbeat.objects.update_or_create(
                pk=self.id, defaults={"kind": self.kind, "host": self.host, "pid": self.pid, "started_at": now,
                                      **fields})

    def goodbye(self) -> None:
        try:
            self.beat()
            ProcessHeartbeat.objects.filter(pk=self.id).update(stopped_at=timezone.now())
        except DatabaseError:
            log.warning("could not record that process %s stopped", self.id)
        finally:
            db.connections.close_all()

    def run(self) -> None:
        while True:
            try:
                self.beat()
            except DatabaseError:
                log.warning("heartbeat of %s not written (database unreachable); retrying", self.id)
            finally:
                db.connections.close_all()
            if self.halted.wait(self.interval):
                return

    def halt(self) -> None:
        self.halted.set()
        if self.is_alive():
            self.join(5)


_current: Heartbeat | None = None


def start(kind: str) -> Heartbeat:
    """Start this process's heartbeat (once per process); the row is marked stopped at exit."""
    global _current
    if _current is not None and _current.pid == os.getpid():
        return _current
    from django_tasks.signals import task_finished

    beat = Heartbeat(kind)
    task_finished.connect(beat.task_done, dispatch_uid="buzon-heartbeat-tasks")
    beat.start()
    atexit.register(_stop, beat)
    _current = beat
    return beat


def current() -> Heartbeat | None:
    return _current


def stop() -> None:
    """Mark this process's row stopped now (a gunicorn worker leaving); atexit does it otherwise."""
    if _current is not None:
        _stop(_current)


def _stop(beat: Heartbeat) -> None:
    if os.getpid() != beat.pid or beat.halted.is_set():  # another process's heartbeat, or said already
        return
    beat.halt()
    beat.goodbye()

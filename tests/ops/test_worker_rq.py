"""`buzon worker` on Redis (BUZON_TASKS=rq) as a real process: a task deferred to later runs when its
time comes, and nothing was forked for it. RQ would fork its scheduler from a worker already running
threads (heartbeat, periodic jobs, RQ's pub/sub listener), copying their locks into the child."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq.job import Job

from tests.support import live_run

# Its tests share one Redis database (15) that each empties first: one xdist worker runs them all.
pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.xdist_group("redis-db-15")]

ROOT = Path(__file__).resolve().parents[2]
_DEFER = """
from datetime import timedelta
from django.utils import timezone
from buzon.inbound.tasks import notify_unreplied_task
print(notify_unreplied_task.using(run_after=timezone.now() + timedelta(seconds=3)).enqueue().id)
"""


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.fixture
def own_redis(redis_url: str) -> Iterator[str]:
    """A Redis database of its own: no other test's worker takes this one's scheduler lock or jobs."""
    url = redis_url.rsplit("/", 1)[0] + "/15"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


def test_a_deferred_task_runs_on_time_and_the_worker_forks_nothing(tmp_path, own_redis):
    env = live_run.run_env(tmp_path, BUZON_TASKS="rq", REDIS_URL=own_redis)
    live_run.prepare(env)
    with open(tmp_path / "worker.log", "ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", "worker"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    connection = redis.Redis.from_url(own_redis)
    try:
        deferred = subprocess.run([sys.executable, "-m", "buzon.core.cli", "shell", "-c", _DEFER], cwd=ROOT,
                                  env=env, capture_output=True, text=True, timeout=120)
        assert deferred.returncode == 0, deferred.stderr
        job_id = deferred.stdout.split()[-1]
        assert Job.fetch(job_id, connection=connection).get_status() == "scheduled"
        deadline = time.monotonic() + 60
        while Job.fetch(job_id, connection=connection).get_status() != "finished":
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.3)
        assert Job.fetch(job_id, connection=connection).worker_name.startswith(f"{_hostname()}:{worker.pid}:")
        assert _children(worker.pid) == [], "the worker forked a process (RQ's scheduler) beside its threads"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert connection.get("rq:scheduler-lock:default") is None  # released: another worker's takes over
    finally:
        with contextlib.suppress(ProcessLookupError):  # the worker and anything it forked
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)


def _hostname() -> str:
    import socket

    return socket.gethostname()[:40]

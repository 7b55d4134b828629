"""What `buzon run` starts, sized to the machine it runs on.

One command should use the machine the way a site's own units would: gunicorn with a worker per
core (the API and the pages are Python, one core per process), and the pipeline, which turns stored
mail into records and is CPU-bound Python too, in one process per core. So `buzon run` starts

- `buzon web` with ``web_workers()`` gunicorn workers;
- one `buzon worker` serving every queue and running the periodic jobs, as before;
- ``inbound_workers() - 1`` more `buzon worker --queue inbound,outbound --no-periodic --concurrency 2`
  processes: the pipeline, a task at a time each (its own core; threads would share one), and, in a
  slot of its own, delivery: a big outgoing queue is drained by every such process at once
  (buzon.outbound.sender.ask_for_help), while a slow relay holds only that slot, never the pipeline's;
  each worker opens its share of BUZON_OUTBOUND_CONNECTIONS to an account (`--connections`);
- `buzon sync`.

Two processes never process one raw message twice: a pipeline task claims its rows (SELECT ... FOR
UPDATE SKIP LOCKED on PostgreSQL; on SQLite every transaction is BEGIN IMMEDIATE, one writer at a
time, waiting on the 30 s busy_timeout) and takes only messages still waiting (buzon.inbound.batch).
"""

from __future__ import annotations

import os

from buzon.core import config

#: gunicorn workers at most by default: each is a Django process (≈ 100 MB) with 4 threads.
MAX_WEB_WORKERS = 4


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (a container's, a taskset's)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def web_workers() -> int:
    """BUZON_WEB_WORKERS, or one per core: at least 2 (a slow request never holds the whole UI), at most 4."""
    return max(1, config.env_int("BUZON_WEB_WORKERS", max(2, min(cores(), MAX_WEB_WORKERS))))


def inbound_workers() -> int:
    """BUZON_INBOUND_WORKERS, or one per core: the processes that run the pipeline (at least 1)."""
    return max(1, config.env_int("BUZON_INBOUND_WORKERS", cores()))


def connections_per_worker() -> int:
    """SMTP connections to one account per worker: BUZON_OUTBOUND_CONNECTIONS (16) shared among the
    workers that deliver, so a big queue drained by all of them opens no more than one worker did."""
    return max(1, config.env_int("BUZON_OUTBOUND_CONNECTIONS", 16) // inbound_workers())


def children(host: str, port: int) -> list[tuple[str, list[str]]]:
    """(name, arguments of `buzon`) for each process `buzon run` supervises."""
    connections = ["--connections", str(connections_per_worker())]
    plan = [("web", ["web", "--host", host, "--port", str(port), "--workers", str(web_workers())]),
            ("worker", ["worker", *connections])]
    plan += [(f"inbound-{n}", ["worker", "--queue", "inbound,outbound", "--no-periodic", "--concurrency", "2",
                               *connections])
             for n in range(1, inbound_workers())]
    plan.append(("sync", ["sync"]))
    return plan

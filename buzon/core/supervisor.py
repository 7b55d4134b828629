"""A small process supervisor for `buzon run`: one command, one process tree.

Each child is a `buzon <command>` process. A child that dies is restarted with a growing delay;
SIGINT/SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period) and returns.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger("buzon.supervisor")


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, start_new_session=False)
        self.started_at = time.monotonic()
        log.info("started %s (pid %s)", self.name, self.process.pid)


class Supervisor:
    def __init__(self, children: list[Child], grace_s: float = 10.0) -> None:
        self.children = children
        self.grace_s = grace_s
        self.stopping = False

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            child.start()
        while not self.stopping:
            self._reap_and_restart()
            time.sleep(0.2)
        self.stop()
        return 0

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.process is None:
                if now >= child.next_start:
                    child.start()
                continue
            code = child.process.poll()
            if code is None:
                continue
            # A child that ran for a while gets a fresh backoff; one that keeps crashing waits longer.
            if now - child.started_at > 60:
                child.restarts = 0
            delay = min(30.0, 0.5 * 2**child.restarts)
            child.restarts += 1
            child.process = None
            child.next_start = now + delay
            log.warning("%s exited with %s; restarting in %.1f s", child.name, code, delay)

    def stop(self) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()


def buzon_argv(*args: str) -> list[str]:
    """Run a sibling `buzon` subcommand with this interpreter and environment."""
    return [sys.executable, "-m", "buzon.core.cli", *args]


def inherit_env() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")

"""The benches' SMTP sink: tests/chaos/sink.py's aiosmtpd server (a process of its own, one log line
per message: time received, Message-ID, Subject; DELAY seconds before each answer to DATA), announcing
PIPELINING as Postfix, Exim, Exchange and Gmail do.

Run: python -m bench.sink PORT LOG [DELAY]
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.chaos.sink import ROOT, SinkProcess, _Handler
from tests.support.ports import wait_for_port


class Handler(_Handler):
    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class Sink(SinkProcess):
    def start(self) -> Sink:
        self.log.touch()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.sink", str(self.port), str(self.log),
                                      str(self.delay)], cwd=ROOT)
        wait_for_port(self.port)
        return self


def main(port: int, log: Path, delay: float) -> None:
    from aiosmtpd.controller import Controller

    with log.open("a", encoding="utf-8") as out:
        controller = Controller(Handler(out, delay), hostname="127.0.0.1", port=port)
        controller.start()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        stopped.wait()
        controller.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)

"""The benches' SMTP sink: tests/chaos/sink.py's aiosmtpd server (a process of its own, one log line
per message: time received, Message-ID, Subject), announcing PIPELINING as Postfix, Exim, Exchange
and Gmail do, and optionally answering each DATA only after `delay` seconds (a slow relay).

Run: python -m bench.sink PORT LOG [DELAY]
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.chaos.sink import ROOT, SinkProcess, _Handler
from tests.support.ports import wait_for_port


class Handler(_Handler):
    delay = 0.0

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


class Sink(SinkProcess):
    def __init__(self, workdir: Path, delay: float = 0.0) -> None:
        super().__init__(workdir)
        self.delay = delay

    def start(self) -> Sink:
        self.log.touch()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.sink", str(self.port), str(self.log),
                                      str(self.delay)], cwd=ROOT)
        wait_for_port(self.port)
        return self


def main(port: int, log: Path, delay: float) -> None:
    from aiosmtpd.controller import Controller

    with log.open("a", encoding="utf-8") as out:
        handler = Handler(out)
        handler.delay = delay
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        stopped.wait()
        controller.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)

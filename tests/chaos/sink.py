"""The SMTP sink of the load bench and the chaos test, in a process of its own, as a real relay is.

In the bench's own process its answers waited for the bench's threads (the deliverer, the polling),
and every worker's send waited with them. Each message received becomes one line of the log file:
the time it was received, its Message-ID and its Subject, tab-separated.

Run: python -m tests.chaos.sink PORT LOG [DELAY]   (DELAY: seconds before answering each DATA)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import IO, Any

from tests.support.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


class _Handler:
    def __init__(self, out: IO[str], delay: float = 0.0) -> None:
        self.out = out
        # compat32 keeps headers as strings (policy.default builds an object for every header of every
        # message, a cost the machine under test pays for nothing); the two logged are decoded here.
        self.parser = BytesHeaderParser(policy=compat32)
        self.delay = delay  # seconds before each answer to DATA: a slow relay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = self.parser.parsebytes(envelope.original_content or envelope.content)
        fields = [str(make_header(decode_header(headers.get(name, "")))).replace("\t", " ").replace("\n", " ")
                  .replace("\r", "").strip() for name in ("Message-ID", "Subject")]
        self.out.write(f"{time.time():.6f}\t{fields[0]}\t{fields[1]}\n")
        self.out.flush()
        return "250 OK"


def main(port: int, log: Path, delay: float = 0.0) -> None:
    from aiosmtpd.controller import Controller

    with log.open("a", encoding="utf-8") as out:
        controller = Controller(_Handler(out, delay), hostname="127.0.0.1", port=port)
        controller.start()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        stopped.wait()
        controller.stop()


class SinkProcess:
    """Starts the sink; ``received()`` reads what it has logged so far."""

    def __init__(self, workdir: Path, delay: float = 0.0) -> None:
        self.port = free_port()
        self.delay = delay
        self.log = workdir / "sink.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._lines: list[tuple[float, str, str]] = []
        self._offset = 0

    def start(self) -> SinkProcess:
        self.log.touch()
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.chaos.sink", str(self.port), str(self.log),
                                      str(self.delay)], cwd=ROOT)
        wait_for_port(self.port)
        return self

    def received(self) -> list[tuple[float, str, str]]:
        """(time received, Message-ID, Subject) of every message so far, in order."""
        with self.log.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            when, message_id, subject = line.split("\t", 2)
            self._lines.append((float(when), message_id, subject))
        return list(self._lines)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)

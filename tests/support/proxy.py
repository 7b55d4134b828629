"""A TCP proxy for tests and benchmarks: adds latency, stalls, or cuts a connection mid-stream.

It runs its own asyncio loop in a thread, in front of a real server (Dovecot), so the client
under test sees exactly what a slow or broken network would do to it:
- `latency_s`: round-trip time added (half each way), order preserved, like a long link;
- `cut_after(n)`: the next connection is cut once the server has sent `n` bytes (mid-literal
  for a big FETCH), then later connections pass normally;
- `stall()` / `resume()`: stop forwarding in both directions without closing (a hung server);
- `drop_all()`: close every open connection (a server restart as the client sees it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

from tests.support.ports import free_port


class Proxy:
    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", latency_s: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.latency_s = latency_s
        self.port = free_port()
        self.connections = 0
        self._cut_next: int | None = None
        self._running = threading.Event()
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        if not self._running.wait(5):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        self._call(self._close_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # controls (thread-safe)
    def cut_after(self, n_bytes: int) -> None:
        self._cut_next = n_bytes

    def stall(self) -> None:
        self._call(lambda: self._flowing.clear() if self._flowing else None)

    def resume(self) -> None:
        self._call(lambda: self._flowing.set() if self._flowing else None)

    def drop_all(self) -> None:
        self._call(self._close_all)

    def _call(self, func: Callable[[], object]) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                func()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()

    # the loop
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._flowing = asyncio.Event()
        self._flowing.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._running.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        cut, self._cut_next = self._cut_next, None
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        pipes = [
            asyncio.ensure_future(self._pipe(client_r, server_w, None, [client_w, server_w])),
            asyncio.ensure_future(self._pipe(server_r, client_w, cut, [client_w, server_w])),
        ]
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for task in pipes:
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()
            self._writers.discard(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: int | None,
                    both: list[asyncio.StreamWriter]) -> None:
        assert self._flowing is not None
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, writer))
        sent = 0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if cut is not None and sent + len(data) >= cut:
                    queue.put_nowait((time.monotonic(), data[: max(0, cut - sent)]))
                    await queue.join()
                    for w in both:
                        w.transport.abort()
                    return
                sent += len(data)
                queue.put_nowait((time.monotonic() + self.latency_s / 2, data))
            await queue.join()
        finally:
            sender.cancel()

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        while True:
            due, data = await queue.get()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._flowing.wait()
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, RuntimeError):
                pass
            queue.task_done()

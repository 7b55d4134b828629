"""A counting proxy: one listening port per account in front of Dovecot, so "never two processes
syncing one account at once" is measured on the wire. Each account watches one folder (INBOX)
over one connection, so two connections open at once on one account's port means two holders.

The TCP connection of a process killed with SIGKILL is closed by the kernel at once, so the count
drops the moment a holder dies; nothing here depends on Buzón's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time


class CountingProxy:
    def __init__(self, target_port: int, accounts: list[str]) -> None:
        self.target_port = target_port
        self.accounts = accounts
        self.ports: dict[str, int] = {}
        self.open: dict[str, int] = dict.fromkeys(accounts, 0)
        self.connections = 0
        self.overlaps: list[str] = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="counting-proxy", daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("counting proxy did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        servers = []
        for account in self.accounts:
            server = self._loop.run_until_complete(asyncio.start_server(
                lambda r, w, a=account: self._handle(a, r, w), "127.0.0.1", 0))
            self.ports[account] = server.sockets[0].getsockname()[1]
            servers.append(server)
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for server in servers:
                server.close()

    async def _handle(self, account: str, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open[account] += 1
        if self.open[account] > 1:
            self.overlaps.append(f"{time.strftime('%H:%M:%S')} {account}: {self.open[account]} connections at once")
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self.open[account] -= 1
            client_w.close()
            return
        pipes = [asyncio.ensure_future(self._pipe(client_r, server_w)),
                 asyncio.ensure_future(self._pipe(server_r, client_w))]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.open[account] -= 1
            for task in pipes:
                task.cancel()
            for writer in (client_w, server_w):
                with contextlib.suppress(Exception):
                    writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

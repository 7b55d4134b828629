"""A thin, typed facade over one logged-in aioimaplib connection (opened by mailboxes.connections).

aioimaplib does not fail a pending command when the socket drops; it waits for its timer. Here
a lost connection fails every pending command at once, and every command carries an
inactivity timeout (reset by each chunk received), which is the watchdog against stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import types
from typing import Any

import aioimaplib

from buzon.sync.imap_parse import FetchItem, FolderStatus, parse_fetch, parse_search, parse_select


class ConnectionLost(ConnectionResetError):
    """The server closed the connection, or the network dropped it."""


class CommandFailed(Exception):
    """The server answered NO or BAD."""

    def __init__(self, command: str, result: str, text: str) -> None:
        self.command, self.result, self.text = command, result, text
        super().__init__(f"{command} answered {result}: {text}"[:300])


def _text(lines: list[Any]) -> str:
    return b" ".join(line for line in lines[-2:] if isinstance(line, bytes)).decode("utf-8", "replace")


class _FetchCommand(aioimaplib.FetchCommand):
    """aioimaplib's FETCH rescans every line received so far after each new one (quadratic: a
    250-message chunk costs ~500,000 regex matches). This one remembers where the last FETCH
    record began, so each line costs the same however long the answer grows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._record_start = 0

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        if isinstance(line, bytes) and self.FETCH_MESSAGE_DATA_RE.match(line):
            self._record_start = len(self._resp_lines)
        super().append_to_resp(line, result)

    def wait_data(self) -> bool:
        text = b"".join(line for line in self._resp_lines[self._record_start:] if isinstance(line, bytes))
        return text.count(b"(") != text.count(b")")


def _handle_responses(self: aioimaplib.IMAP4ClientProtocol, data: bytes, line_handler: Any,
                      current_cmd: aioimaplib.Command | None = None) -> None:
    """aioimaplib's response loop, unchanged but iterative: the original recurses once per line
    and overflows the stack on a long answer (10,000 "UID n RFC822.SIZE m" lines)."""
    while True:
        if not data:
            if self.pending_sync_command is not None:
                self.pending_sync_command.flush()
            if current_cmd is not None and current_cmd.wait_data():
                raise aioimaplib.IncompleteRead(current_cmd)
            return
        if current_cmd is not None and current_cmd.wait_literal_data():
            data = current_cmd.append_literal_data(data)
            if current_cmd.wait_literal_data():
                raise aioimaplib.IncompleteRead(current_cmd)
        line, separator, tail = data.partition(aioimaplib.CRLF)
        if not separator:
            raise aioimaplib.IncompleteRead(current_cmd, data)
        cmd = line_handler(line, current_cmd)
        begin_literal = aioimaplib.literal_data_re.match(line)
        if begin_literal:
            if cmd is None:
                cmd = aioimaplib.Command("NIL", "unused")
            cmd.begin_literal_data(int(begin_literal.group("size")))
            data, current_cmd = tail, cmd
        elif cmd is not None and cmd.wait_data():
            data, current_cmd = tail, cmd
        else:
            data, current_cmd = tail, None


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class ImapConnection:
    def __init__(self, client: aioimaplib.IMAP4, *, timeout: float) -> None:
        self.client = client
        self.protocol = client.protocol
        self.timeout = timeout
        self.lost = asyncio.Event()
        self.last_data_at = time.monotonic()
        self.in_command = False  # read by the engine's watchdog, even before the first command
        self.protocol.conn_lost_cb = self._on_lost
        protocol = self.protocol

        def data_received(data: bytes) -> None:
            # aioimaplib's own data_received formats every chunk into a debug message, logged or
            # not (a 10,000-message download spends seconds on it); this is the same minus that.
            self.last_data_at = time.monotonic()
            try:
                protocol._handle_responses(protocol.incomplete_line + data, protocol._handle_line,
                                           protocol.current_command)
                protocol.incomplete_line = b""
                protocol.current_command = None
            except aioimaplib.IncompleteRead as incomplete:
                protocol.current_command = incomplete.cmd
                protocol.incomplete_line = incomplete.data

        self.protocol.data_received = data_received  # type: ignore[method-assign]
        self.protocol._handle_responses = types.MethodType(_handle_responses, self.protocol)  # type: ignore[method-assign]
        if self.protocol.transport is None or self.protocol.transport.is_closing():
            self.lost.set()

    @property
    def capabilities(self) -> set[str]:
        return {str(cap).upper() for cap in self.protocol.capabilities}

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities or "QRESYNC" in self.capabilities

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def _on_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        error = ConnectionLost(str(exc) if exc else "the server closed the connection")
        pending = [self.protocol.pending_sync_command, *self.protocol.pending_async_commands.values()]
        for command in pending:
            if command is not None and not command._event.is_set():
                command._exception = error
                command.close(b"connection lost", "KO")

    async def _run(self, command: aioimaplib.Command) -> aioimaplib.Response:
        """Run one command; a server silent for `timeout` seconds (not a slow one: any byte
        counts) is stalled, and its connection is dropped."""
        if self.lost.is_set():
            raise ConnectionLost("the connection is closed")
        self.last_data_at = time.monotonic()
        self.in_command = True
        task = asyncio.ensure_future(self.protocol.execute(command))
        task.add_done_callback(_retrieve)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=max(0.2, self.timeout / 5))
                if not task.done() and time.monotonic() - self.last_data_at > self.timeout:
                    self.close()
                    raise aioimaplib.CommandTimeout(command)
        finally:
            self.in_command = False
            if not task.done():
                task.cancel()
        response = task.result()
        if response.result != "OK":
            raise CommandFailed(command.name, response.result, _text(response.lines))
        return response

    def _command(self, name: str, *args: str, prefix: str | None = None) -> aioimaplib.Command:
        return aioimaplib.Command(name, self.protocol.new_tag(), *args, prefix=prefix, loop=self.protocol.loop)

    async def examine(self, folder: str) -> FolderStatus:
        """Open `folder` read-only: nothing the engine does can change a flag on the server."""
        args = [aioimaplib.quoted(folder)]
        if self.condstore:
            args.append("(CONDSTORE)")
        response = await self._run(self._command("EXAMINE", *args))
        self.protocol.state = aioimaplib.SELECTED
        return parse_select(response.lines)

    async def uid_search(self, *criteria: str) -> list[int]:
        response = await self._run(self._command("SEARCH", *criteria, prefix="UID"))
        return parse_search(response.lines)

    async def uid_fetch(self, uids: str, items: str, modifier: str = "") -> list[FetchItem]:
        args = [uids, items] + ([modifier] if modifier else [])
        command = _FetchCommand(self.protocol.new_tag(), *args, prefix="UID", loop=self.protocol.loop)
        response = await self._run(command)
        return parse_fetch(response.lines)

    async def noop(self) -> None:
        await self._run(self._command("NOOP"))

    async def idle(self, wake: asyncio.Event, max_s: float) -> str:
        """IDLE until new mail ("mail"), a wake-up ("wake") or `max_s` has passed ("rearm")."""
        if self.lost.is_set():
            raise ConnectionLost("the connection is closed")
        idle_task = await asyncio.wait_for(self.client.idle_start(timeout=max_s), self.timeout)
        idle_task.add_done_callback(_retrieve)  # its failure is reported through `lost`
        reason = "rearm"
        try:
            deadline = time.monotonic() + max_s
            while reason == "rearm" and time.monotonic() < deadline:
                reason = await self._wait_push(wake, deadline - time.monotonic())
        finally:
            if not self.lost.is_set() and self.client.has_pending_idle():
                self.client.idle_done()
                done, _ = await asyncio.wait({idle_task}, timeout=self.timeout)
                if not done:
                    idle_task.cancel()
                    raise ConnectionLost("the server did not end IDLE in time")
            else:
                idle_task.cancel()
        if self.lost.is_set():
            raise ConnectionLost("the connection dropped while idling")
        return reason

    async def _wait_push(self, wake: asyncio.Event, remaining: float) -> str:
        push = asyncio.ensure_future(self.client.wait_server_push(timeout=max(0.1, remaining)))
        waits = {push, asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self.lost.wait())}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                if not task.done():
                    task.cancel()
        if self.lost.is_set():
            return "lost"
        if wake.is_set():
            return "wake"
        if push in done and not push.cancelled() and push.exception() is None:
            lines = push.result()
            if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return "rearm-now"
            if any(isinstance(line, bytes) and (b"EXISTS" in line or b"RECENT" in line) for line in lines):
                return "mail"
            return "rearm"
        return "rearm-now"

    async def logout(self) -> None:
        if self.lost.is_set() or self.client.has_pending_idle():
            self.close()  # LOGOUT would queue behind the IDLE; a closed socket ends it as well
            return
        with contextlib.suppress(Exception):  # leaving anyway: a failed LOGOUT changes nothing
            await asyncio.wait_for(self.client.logout(), 5)
        self.close()

    def close(self) -> None:
        # aioimaplib keeps helper tasks (IDLE, its acknowledgement) that outlive a dropped socket.
        for task in [*self.client.tasks, *self.protocol.tasks]:
            task.add_done_callback(_retrieve)
            task.cancel()
        transport = self.protocol.transport
        if transport is not None:
            transport.close()

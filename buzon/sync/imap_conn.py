"""A thin, typed facade over one logged-in aioimaplib connection (opened by mailboxes.connections).

aioimaplib does not fail a pending command when the socket drops; it waits for its timer. Here
a lost connection fails every pending command at once, and every command carries an
inactivity timeout (reset by each chunk received), which is the watchdog against stalls.

aioimaplib sends one FETCH at a time; here any number of UID FETCH commands may be outstanding
(a first download keeps several chunks on the wire, so the round trip is paid once, not per
chunk). Untagged FETCH records carry no tag: each is handed to the outstanding fetch whose UIDs
hold it, and a fetch completes with its tagged answer, which the server sends after its records.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Collection
from typing import Any

import aioimaplib

from buzon.mailboxes import imap_names
from buzon.sync.imap_parse import (
    LITERAL_END,
    FetchItem,
    FolderStatus,
    paren_depth,
    parse_fetch,
    parse_search,
    parse_select,
    uid_set,
    uid_set_size,
)

_EXISTS = re.compile(rb"\* (\d+) EXISTS", re.IGNORECASE)
_EXPUNGE = re.compile(rb"\* \d+ EXPUNGE", re.IGNORECASE)
_VANISHED_NOW = re.compile(rb"\* VANISHED ([\d:,]+)", re.IGNORECASE)  # not "(EARLIER)": just expunged
_LIST = re.compile(rb"^\* LIST \(([^)]*)\)", re.IGNORECASE)


class ConnectionLost(ConnectionResetError):
    """The server closed the connection, or the network dropped it."""


class CommandFailed(Exception):
    """The server answered NO or BAD."""

    def __init__(self, command: str, result: str, text: str) -> None:
        self.command, self.result, self.text = command, result, text
        super().__init__(f"{command} answered {result}: {text}"[:300])


def _text(lines: list[Any]) -> str:
    return b" ".join(line for line in lines[-2:] if isinstance(line, bytes)).decode("utf-8", "replace")


class _Fetch(aioimaplib.Command):
    """One UID FETCH among several outstanding on the connection: it is answered with the
    records of its own UIDs, whatever order the server sends them in."""

    def __init__(self, conn: ImapConnection, uids: Collection[int], *args: str) -> None:
        tag = conn.protocol.new_tag()
        # Keyed by tag in aioimaplib's table of pending commands, where its tagged answer finds it.
        super().__init__("FETCH", tag, *args, prefix="UID", untagged_resp_name=f"FETCH {tag}",
                         loop=conn.protocol.loop)
        self.conn = conn
        self.uids = uids
        self.items: dict[int, FetchItem] = {}

    def add(self, item: FetchItem) -> None:
        known = self.items.get(item.uid)
        if known is None:
            self.items[item.uid] = item
            return
        # An unsolicited flag update (another client, CONDSTORE) about a message being fetched.
        known.sections.update(item.sections)
        known.flags = item.flags or known.flags
        known.size = item.size if item.size is not None else known.size
        known.modseq = item.modseq if item.modseq is not None else known.modseq
        known.bodystructure = item.bodystructure if item.bodystructure is not None else known.bodystructure

    def close(self, line: bytes, result: str) -> None:
        super().close(line, result)
        self.conn._fetch_closed(self)


class _FetchStream(aioimaplib.Command):
    """Receives every untagged FETCH record while fetches are outstanding, and hands each
    complete record to the fetch whose UIDs hold it."""

    def __init__(self, conn: ImapConnection) -> None:
        super().__init__("FETCH", "*", untagged_resp_name="FETCH", loop=conn.protocol.loop)
        self.conn = conn
        self._record: list[bytes | bytearray] = []
        self._depth = 0

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        if result != "Pending":
            super().append_to_resp(line, result)
            return
        self._record.append(line)
        if isinstance(line, bytearray):  # a literal (a message body)
            return
        self._depth += paren_depth(LITERAL_END.sub(b"", line))
        if self._depth <= 0:
            record, self._record, self._depth = self._record, [], 0
            for item in parse_fetch(record):
                self.conn._dispatch(item)

    def wait_data(self) -> bool:
        return self._depth > 0


class _Reader:
    """The connection's response reader: lines and literals cut from one growing buffer (the
    library's copies the rest of the buffer for every line and every literal), each handed to
    aioimaplib's line handler, which routes it to its command."""

    def __init__(self, conn: ImapConnection) -> None:
        self.conn = conn
        self.protocol = conn.protocol
        self.buffer = bytearray(self.protocol.incomplete_line)
        self.current: aioimaplib.Command | None = self.protocol.current_command

    def feed(self, data: bytes) -> None:
        self.conn.last_data_at = time.monotonic()
        buffer = self.buffer
        buffer += data
        pos, size = 0, len(buffer)
        try:
            while pos < size:
                current = self.current
                if current is not None and current.wait_literal_data():
                    pos = self._literal(current, pos, size)
                    if current.wait_literal_data():
                        break
                    continue
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    break
                line = bytes(buffer[pos:end])
                pos = end + 2
                command = self.protocol._handle_line(line, current)
                literal = LITERAL_END.search(line)
                if literal:
                    if command is None:
                        command = aioimaplib.Command("NIL", "unused", loop=self.protocol.loop)
                    command.begin_literal_data(int(literal.group(1)))
                    self.current = command
                elif command is not None and command.wait_data():
                    self.current = command
                else:
                    self.current = None
        finally:
            del buffer[:pos]
        if self.protocol.pending_sync_command is not None:
            self.protocol.pending_sync_command.flush()  # hands IDLE's pushed lines over

    def _literal(self, command: aioimaplib.Command, pos: int, size: int) -> int:
        wanted = command._expected_size - len(command._resp_literal_data)
        take = min(wanted, size - pos)
        if take == wanted and not command._resp_literal_data:
            command._resp_literal_data = self.buffer[pos:pos + take]  # whole: one copy
        else:
            command._resp_literal_data += self.buffer[pos:pos + take]
        if not command.wait_literal_data():
            command.append_to_resp(command._resp_literal_data)
            command._end_literal_data()
        return pos + take


async def _answer(command: aioimaplib.Command) -> aioimaplib.Response:
    await command.wait()
    return command.response


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
        # The server announced new mail in an answer to some other command: it will not say it
        # again when IDLE starts, so the caller must look now (cleared by `examine`).
        self.mail_signalled = False
        self._examined_exists = 0  # the message count the last EXAMINE reported
        self.folder_kept: dict[str, bool] = {}  # folder -> never emptied by "delete downloaded messages"
        self._fetches: dict[str, _Fetch] = {}
        self._qresync = False
        self._stream: _FetchStream | None = None
        self.protocol.conn_lost_cb = self._on_lost
        reader = _Reader(self)
        self.protocol.data_received = reader.feed  # type: ignore[method-assign]
        untagged = self.protocol._untagged_response

        def untagged_response(line: bytes) -> aioimaplib.Command:
            exists = _EXISTS.match(line)
            # More than EXAMINE counted (servers may repeat an unchanged count: no pass for that).
            if exists and int(exists.group(1)) > self._examined_exists:
                self.mail_signalled = True
            elif _EXPUNGE.match(line):  # one message fewer: a later EXISTS counts from here
                self._examined_exists -= 1
            else:
                vanished = _VANISHED_NOW.match(line)
                if vanished:
                    self._examined_exists -= uid_set_size(vanished.group(1).decode())
            return untagged(line)

        self.protocol._untagged_response = untagged_response  # type: ignore[method-assign]
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

    @property
    def uidplus(self) -> bool:
        """UID EXPUNGE is offered (UIDPLUS, or IMAP4rev2 where it is part of the base protocol)."""
        return bool({"UIDPLUS", "IMAP4REV2"} & self.capabilities)

    def _on_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        error = ConnectionLost(str(exc) if exc else "the server closed the connection")
        pending = [self.protocol.pending_sync_command, *self.protocol.pending_async_commands.values()]
        for command in pending:
            if command is not None and not command._event.is_set():
                command._exception = error
                command.close(b"connection lost", "KO")

    async def _run(self, command: aioimaplib.Command) -> aioimaplib.Response:
        """Run one command through aioimaplib."""
        if self.lost.is_set():
            raise ConnectionLost("the connection is closed")
        return await self._watch(command, self.protocol.execute(command))

    async def _watch(self, command: aioimaplib.Command, work: Any) -> aioimaplib.Response:
        """Await `work`; a server silent for `timeout` seconds (not a slow one: any byte counts)
        is stalled, and its connection is dropped."""
        self.last_data_at = time.monotonic()
        self.in_command = True
        task = asyncio.ensure_future(work)
        task.add_done_callback(_retrieve)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=max(0.2, self.timeout / 5))
                if not task.done() and time.monotonic() - self.last_data_at > self.timeout:
                    self.close()
                    raise aioimaplib.CommandTimeout(command)
        finally:
            self.in_command = bool(self._fetches)
            if not task.done():
                task.cancel()
        response = task.result()
        if response.result != "OK":
            raise CommandFailed(command.name, response.result, _text(response.lines))
        return response

    def _command(self, name: str, *args: str, prefix: str | None = None) -> aioimaplib.Command:
        return aioimaplib.Command(name, self.protocol.new_tag(), *args, prefix=prefix, loop=self.protocol.loop)

    @property
    def qresync(self) -> bool:
        """QRESYNC is enabled on this connection (see examine)."""
        return self._qresync

    async def examine(self, folder: str, since: tuple[int, int] | None = None, *,
                      writable: bool = False) -> FolderStatus:
        """Open `folder` (its name as the user reads it, sent in modified UTF-7) read-only: nothing
        the engine does can change a flag on the server. `writable`: SELECT instead, for a folder
        whose imported mail is deleted from the server (BODY.PEEK still leaves \\Seen alone).

        `since`: the (UIDVALIDITY, HIGHESTMODSEQ) last seen. Where the server offers QRESYNC, it is
        enabled on the connection's first EXAMINE, and the answer then carries what changed since
        (the flags of changed messages and the expunged ones), so no second command asks for it."""
        if self.protocol.state == aioimaplib.AUTH and "QRESYNC" in self.capabilities:
            response = await self._run(self._command("ENABLE", "QRESYNC"))
            self._qresync = any(isinstance(line, bytes) and line.upper().startswith(b"ENABLED")
                                and b"QRESYNC" in line.upper() for line in response.lines)
        args = [imap_names.quoted(folder)]
        if self._qresync and since is not None:
            args.append(f"(QRESYNC ({since[0]} {since[1]}))")
        elif self.condstore:
            args.append("(CONDSTORE)")
        response = await self._run(self._command("SELECT" if writable else "EXAMINE", *args))
        self.protocol.state = aioimaplib.SELECTED
        status = parse_select(response.lines)
        self._examined_exists, self.mail_signalled = status.exists, False  # what this pass reads
        return status

    async def list_attributes(self, folder: str) -> set[str] | None:
        """The folder's LIST attributes, lower case (\\sent, \\noselect, ...); None if not listed."""
        response = await self._run(self._command("LIST", '""', imap_names.quoted(folder)))
        for line in response.lines:
            found = _LIST.match(b"* " + line) if isinstance(line, bytes) and line[:5].upper() == b"LIST " else None
            if found:
                return {flag.lower() for flag in found.group(1).decode("ascii", "replace").split()}
        return None

    async def delete_uids(self, uids: list[int]) -> bool:
        """Delete these messages of the selected folder: STORE +FLAGS.SILENT (\\Deleted), then UID
        EXPUNGE of the same set, so no other message (another client's \\Deleted ones) is expunged.
        Without UID EXPUNGE nothing is expunged (a bare EXPUNGE would remove others' deletions):
        returns False, the messages stay marked \\Deleted until some client expunges the folder."""
        spec = uid_set(uids)
        if not spec:
            return self.uidplus
        await self._run(self._command("STORE", spec, "+FLAGS.SILENT", "(\\Deleted)", prefix="UID"))
        if not self.uidplus:
            return False
        await self._run(self._command("EXPUNGE", spec, prefix="UID"))
        return True

    async def uid_search(self, *criteria: str) -> list[int]:
        response = await self._run(self._command("SEARCH", *criteria, prefix="UID"))
        return parse_search(response.lines)

    async def uid_fetch(self, uids: Collection[int] | range, items: str, modifier: str = "") -> list[FetchItem]:
        """UID FETCH `items` of `uids` (a range for "first:last"). Sent at once, even while other
        fetches are outstanding; returns the records of these UIDs, in UID order."""
        if self.lost.is_set():
            raise ConnectionLost("the connection is closed")
        if isinstance(uids, range):
            spec = f"{uids.start}:{uids.stop - 1}" if len(uids) else ""
        else:
            uids = frozenset(uids)
            spec = uid_set(sorted(uids))
        if not spec:
            return []
        command = _Fetch(self, uids, spec, items, *([modifier] if modifier else []))
        if self._stream is None:
            self._stream = _FetchStream(self)
            self.protocol.pending_async_commands["FETCH"] = self._stream
        self._fetches[command.tag] = command
        self.protocol.pending_async_commands[command.untagged_resp_name] = command
        self.protocol.send(str(command))
        await self._watch(command, _answer(command))
        return [command.items[uid] for uid in sorted(command.items)]

    def _dispatch(self, item: FetchItem) -> None:
        for fetch in self._fetches.values():
            if item.uid in fetch.uids:
                fetch.add(item)
                return

    def _fetch_closed(self, fetch: _Fetch) -> None:
        self._fetches.pop(fetch.tag, None)
        if self._fetches or self._stream is None:
            return
        stream, self._stream = self._stream, None
        if self.protocol.pending_async_commands.get("FETCH") is stream:
            del self.protocol.pending_async_commands["FETCH"]
        if not stream._event.is_set():
            stream.close(b"", "OK")  # releases a command that waits for every pending one

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

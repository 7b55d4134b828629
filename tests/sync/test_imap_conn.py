"""The connection's reader without a server: several UID FETCH commands outstanding at once,
answers cut at every byte boundary and interleaved, each record handed to the fetch that asked."""

from __future__ import annotations

import asyncio
import re

import aioimaplib
import pytest

from buzon.sync.imap_conn import CommandFailed, ConnectionLost, ImapConnection
from buzon.sync.imap_parse import paren_depth


class Wire:
    """Stands in for the socket: records what the client sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def tags(self) -> list[str]:
        return [re.match(rb"(\S+) ", line).group(1).decode() for line in self.sent]


class Client:
    def __init__(self, protocol: aioimaplib.IMAP4ClientProtocol) -> None:
        self.protocol = protocol
        self.tasks: set[asyncio.Future] = set()


def connection() -> tuple[ImapConnection, Wire]:
    loop = asyncio.get_running_loop()
    protocol = aioimaplib.IMAP4ClientProtocol(loop)
    wire = Wire()
    protocol.transport = wire  # type: ignore[assignment]
    protocol.state = aioimaplib.SELECTED
    return ImapConnection(Client(protocol), timeout=5), wire  # type: ignore[arg-type]


def record(seq: int, uid: int, body: bytes, *, flags: bytes = b"") -> bytes:
    return (b"* %d FETCH (UID %d FLAGS (%s) RFC822.SIZE %d BODY[] {%d}\r\n" % (seq, uid, flags, len(body), len(body))
            + body + b")\r\n")


def feed(conn: ImapConnection, data: bytes, step: int) -> None:
    for start in range(0, len(data), step):
        conn.protocol.data_received(data[start:start + step])


@pytest.mark.parametrize("step", [1, 7, 100_000])
def test_outstanding_fetches_get_their_own_records_whatever_the_order(step):
    bodies = {uid: b"Subject: %d\r\n\r\nbody ( with ) parens and {5}\r\n" % uid * uid for uid in range(1, 7)}

    async def scenario() -> None:
        conn, wire = connection()
        first = asyncio.ensure_future(conn.uid_fetch([1, 2, 3], "(UID FLAGS RFC822.SIZE BODY.PEEK[])"))
        second = asyncio.ensure_future(conn.uid_fetch([4, 5, 6], "(UID FLAGS RFC822.SIZE BODY.PEEK[])"))
        await asyncio.sleep(0)
        assert [line.split(b" ")[2:4] for line in wire.sent] == [[b"FETCH", b"1:3"], [b"FETCH", b"4:6"]]
        one, two = wire.tags()
        # The server answers the second before the first is done, an unsolicited flag update for a
        # message being fetched, a record of nobody's, and new mail in between.
        answer = (record(4, 4, bodies[4]) + record(1, 1, bodies[1], flags=b"\\Seen")
                  + b'* 2 FETCH (UID 2 FLAGS ("x)" \\Flagged))\r\n' + b"* 9 FETCH (UID 77 FLAGS ())\r\n"
                  + b"* 7 EXISTS\r\n" + record(5, 5, bodies[5]) + record(6, 6, bodies[6])
                  + f"{two} OK Fetch completed.\r\n".encode()
                  + record(2, 2, bodies[2]) + record(3, 3, bodies[3]) + f"{one} OK Fetch completed.\r\n".encode())
        feed(conn, answer, step)
        got_one, got_two = await first, await second
        assert [item.uid for item in got_one] == [1, 2, 3] and [item.uid for item in got_two] == [4, 5, 6]
        for item in [*got_one, *got_two]:
            assert item.sections["BODY[]"] == bodies[item.uid] and item.size == len(bodies[item.uid])
        assert got_one[0].flags == ["\\Seen"] and got_one[1].flags == ["x)", "\\Flagged"]
        assert conn.mail_signalled
        conn.mail_signalled, conn._examined_exists = False, 7
        feed(conn, b"* 7 EXISTS\r\n", step)  # the same count again: nothing new
        assert not conn.mail_signalled
        feed(conn, b"* 8 EXISTS\r\n", step)
        assert conn.mail_signalled
        assert "FETCH" not in conn.protocol.pending_async_commands  # nothing left waiting
        assert not conn.protocol.pending_async_commands

    asyncio.run(scenario())


def test_a_refused_fetch_fails_alone_and_a_lost_connection_fails_every_outstanding_one():
    async def scenario() -> None:
        conn, wire = connection()
        refused = asyncio.ensure_future(conn.uid_fetch([1], "(UID BODY.PEEK[])"))
        fine = asyncio.ensure_future(conn.uid_fetch([2], "(UID BODY.PEEK[])"))
        pending = asyncio.ensure_future(conn.uid_fetch(range(3, 10), "(UID BODY.PEEK[])"))
        await asyncio.sleep(0)
        assert wire.sent[2].split(b" ")[3] == b"3:9"
        one, two, _three = wire.tags()
        feed(conn, f"{one} NO [SERVERBUG] broken\r\n".encode() + record(2, 2, b"ok") + f"{two} OK done\r\n".encode(), 3)
        with pytest.raises(CommandFailed, match="broken"):
            await refused
        assert [item.sections["BODY[]"] for item in await fine] == [b"ok"]
        feed(conn, b"* 3 FETCH (UID 3 BODY[] {10}\r\nhalf", 100)  # cut mid-literal
        conn.protocol.connection_lost(None)
        with pytest.raises(ConnectionLost):
            await pending

    asyncio.run(scenario())


def test_paren_depth_ignores_parentheses_in_quoted_strings():
    assert paren_depth(b'1 FETCH (UID 4 BODYSTRUCTURE ("APPLICATION" "PDF" ("NAME" "a(b.pdf")') == 2
    assert paren_depth(b') "\\")" )') == -2

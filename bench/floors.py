"""The floors: the strongest simple programs for Buzón's jobs, run in the same bench as Buzón.

- `download`: UID FETCH over one IMAPS connection per account, all accounts at once, `depth`
  chunks on the wire per connection (as Buzón keeps SYNC_FETCH_DEPTH), chunks of at most `chunk`
  messages and `chunk_bytes` bytes (Buzón's defaults), each chunk committed into SQLite with
  Buzón's durability (WAL, synchronous=NORMAL), or into PostgreSQL (a `postgres://` URL: rows sent
  with psycopg's pipelined executemany, one transaction a chunk, compressed with LZ4 as Buzón's).
  With `parse=True` it is also the simplest correct pipeline: every message parsed with `email`
  policy.default (headers, the text or HTML body, attachment names) and a row inserted beside its
  bytes, in the same transaction.
- `send`: aiosmtplib with `connections` connections at once, each sending its share in turn.
"""

from __future__ import annotations

import asyncio
import email.policy
import re
import sqlite3
import ssl
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)")


#: How long the floor waits for one command's whole response: a chunk is at most 16 MB.
READ_TIMEOUT_S = 120.0


class Imap:
    """Just enough IMAP4rev1 for a pipelined download: tagged commands, literals."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.n = reader, writer, 0

    @classmethod
    async def connect(cls, host: str, port: int, cafile: str) -> Imap:
        context = ssl.create_default_context(cafile=cafile)
        reader, writer = await asyncio.open_connection(host, port, ssl=context, limit=1 << 22)
        await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)  # greeting
        return cls(reader, writer)

    def send(self, command: str) -> bytes:
        self.n += 1
        tag = f"F{self.n}".encode()
        self.writer.write(tag + b" " + command.encode() + b"\r\n")
        return tag

    async def response(self, tag: bytes) -> list[tuple[bytes, bytes | None]]:
        """Untagged lines up to `tag`'s completion, each with the literal it carried. A server silent
        for READ_TIMEOUT_S fails the floor (and the bench) instead of leaving it waiting for ever."""
        return await asyncio.wait_for(self._response(tag), READ_TIMEOUT_S)

    async def _response(self, tag: bytes) -> list[tuple[bytes, bytes | None]]:
        out: list[tuple[bytes, bytes | None]] = []
        while True:
            line = await self.reader.readline()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                return out
            literal = _LITERAL.search(line)
            if literal:
                data = await self.reader.readexactly(int(literal.group(1)))
                rest = await self.reader.readline()
                out.append((line + rest, data))
            else:
                out.append((line, None))

    async def call(self, command: str) -> list[tuple[bytes, bytes | None]]:
        return await self.response(self.send(command))


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # as buzon/settings.py
    db.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, account TEXT, uid INTEGER, data BLOB, "
               "UNIQUE (account, uid))")
    db.execute("CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY, raw_id INTEGER, message_id TEXT, "
               "sender TEXT, sender_name TEXT, subject TEXT, date TEXT, in_reply_to TEXT, body TEXT, "
               "attachments TEXT)")
    return db


_parser = BytesParser(policy=email.policy.default)


def parse(data: bytes) -> tuple[str, ...]:
    try:
        return _parse(data)
    except Exception as exc:  # malformed beyond what the parser forgives: kept, with the reason
        return ("", "", "", "", "", "", f"unparsed: {type(exc).__name__}", "")


def _parse(data: bytes) -> tuple[str, ...]:
    mail = _parser.parsebytes(data)
    name, sender = parseaddr(str(mail.get("From", "")))
    body_part = mail.get_body(("plain", "html"))
    try:
        body = body_part.get_content() if body_part is not None else ""
    except (LookupError, ValueError):  # an unknown charset or a broken part: keep what there is
        body = ""
    names = [part.get_filename() or "" for part in mail.iter_attachments()]
    return (str(mail.get("Message-ID", "")), sender, name, str(mail.get("Subject", "")), str(mail.get("Date", "")),
            str(mail.get("In-Reply-To", "")), body, "\n".join(names))


def store_chunk(db: sqlite3.Connection, account: str, items: list[tuple[int, bytes]], parsed: bool) -> None:
    db.execute("BEGIN")
    for uid, data in items:
        raw_id = db.execute("INSERT INTO raw (account, uid, data) VALUES (?, ?, ?)", (account, uid, data)).lastrowid
        if parsed:
            db.execute("INSERT INTO message (raw_id, message_id, sender, sender_name, subject, date, in_reply_to, "
                       "body, attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (raw_id, *parse(data)))
    db.execute("COMMIT")


_PG_TABLES = ("CREATE TABLE IF NOT EXISTS raw (id BIGSERIAL PRIMARY KEY, account TEXT, uid BIGINT, data BYTEA, "
              "UNIQUE (account, uid))",
              "CREATE TABLE IF NOT EXISTS message (id BIGSERIAL PRIMARY KEY, raw_id BIGINT, message_id TEXT, "
              "sender TEXT, sender_name TEXT, subject TEXT, date TEXT, in_reply_to TEXT, body TEXT, "
              "attachments TEXT)")


def open_pg(url: str) -> Any:
    from bench.site import pg_connect
    from buzon.core.pg_compression import lz4_available

    db = pg_connect(url)
    if lz4_available(db):  # LZ4 where the server has it, as Buzón's mail-sized columns
        db.execute("SET default_toast_compression = lz4")
    for sql in _PG_TABLES:
        db.execute(sql)
    return db


def _text(value: str) -> str:
    """PostgreSQL's text takes no NUL and only valid UTF-8 (SQLite stores either)."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode()


def store_chunk_pg(db: Any, account: str, items: list[tuple[int, bytes]], parsed: bool) -> None:
    with db.transaction(), db.cursor() as cursor:
        if parsed:
            cursor.executemany(
                "WITH r AS (INSERT INTO raw (account, uid, data) VALUES (%s, %s, %s) RETURNING id) "
                "INSERT INTO message (raw_id, message_id, sender, sender_name, subject, date, in_reply_to, body, "
                "attachments) SELECT r.id, %s, %s, %s, %s, %s, %s, %s, %s FROM r",
                [(account, uid, data, *map(_text, parse(data))) for uid, data in items])
        else:
            cursor.executemany("INSERT INTO raw (account, uid, data) VALUES (%s, %s, %s)",
                               [(account, uid, data) for uid, data in items])


def _chunks(sizes: dict[int, int], chunk: int, chunk_bytes: int) -> list[list[int]]:
    out: list[list[int]] = [[]]
    used = 0
    for uid in sorted(sizes):
        if out[-1] and (len(out[-1]) >= chunk or used + sizes[uid] > chunk_bytes):
            out.append([])
            used = 0
        out[-1].append(uid)
        used += sizes[uid]
    return [c for c in out if c]


async def _account(user: str, port: int, cafile: str, store: Callable[[list[tuple[int, bytes]]], object],
                   depth: int, chunk: int, chunk_bytes: int) -> int:
    imap = await Imap.connect("localhost", port, cafile)
    await imap.call(f'LOGIN "{user}" "secret"')
    await imap.call("EXAMINE INBOX")
    sizes = {}
    for line, _ in await imap.call("UID FETCH 1:* (RFC822.SIZE)"):
        found = _SIZE.search(line)
        if found:
            uid, size = (found.group(1), found.group(2)) if found.group(1) else (found.group(4), found.group(3))
            sizes[int(uid)] = int(size)
    batches = deque(_chunks(sizes, chunk, chunk_bytes))
    inflight: deque[bytes] = deque()
    stored = 0
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Future[object]] = []
    while batches or inflight:
        while batches and len(inflight) < depth:
            batch = batches.popleft()
            inflight.append(imap.send(f"UID FETCH {batch[0]}:{batch[-1]} (UID BODY.PEEK[])"))
        answer = await imap.response(inflight.popleft())
        items = [(int(_UID.search(line).group(1)), data) for line, data in answer  # type: ignore[union-attr]
                 if data is not None]
        stored += len(items)
        pending.append(loop.run_in_executor(None, store, items))  # the next chunk arrives meanwhile
    await asyncio.gather(*pending)
    imap.writer.close()
    return stored


def download(users: list[str], port: int, cafile: str, db_path: Path | str, parse_too: bool, depth: int = 3,
             chunk: int = 250, chunk_bytes: int = 16 * 1024 * 1024) -> int:
    """Every account at once; one writer thread (SQLite has one writer; parsing holds the GIL).
    `db_path`: a SQLite file, or a PostgreSQL database's URL. Returns messages stored."""
    postgres = str(db_path).startswith("postgres")
    db = open_pg(str(db_path)) if postgres else open_db(Path(db_path))
    store = store_chunk_pg if postgres else store_chunk
    writer = ThreadPoolExecutor(1)

    async def run() -> list[int]:
        asyncio.get_running_loop().set_default_executor(writer)
        return await asyncio.gather(*(
            _account(user, port, cafile, lambda items, u=user: store(db, u, items, parse_too),  # type: ignore[misc]
                     depth, chunk, chunk_bytes) for user in users))

    try:
        return sum(asyncio.run(run()))
    finally:
        writer.shutdown()
        db.close()


async def _send_all(port: int, messages: list[tuple[str, list[str], bytes]], connections: int) -> int:
    import aiosmtplib

    queue: asyncio.Queue[tuple[str, list[str], bytes]] = asyncio.Queue()
    for item in messages:
        queue.put_nowait(item)
    sent = 0

    async def one() -> None:
        nonlocal sent
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60) as smtp:
            while not queue.empty():
                sender, rcpts, data = queue.get_nowait()
                await smtp.sendmail(sender, rcpts, data)
                sent += 1

    await asyncio.gather(*(one() for _ in range(connections)))
    return sent


def send(port: int, messages: list[tuple[str, list[str], bytes]], connections: int) -> int:
    return asyncio.run(_send_all(port, messages, connections))


def dkim_sign(message: bytes, selector: bytes, domain: bytes, key: object) -> bytes:
    """A DKIM-Signature line (rsa-sha256, relaxed/simple) for `message`: dkimpy's canonicalization,
    the RSA step in `cryptography` (dkimpy's own RSA is pure Python, ~100 times slower)."""
    import base64
    import hashlib
    import time

    import dkim
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from dkim.canonicalization import CanonicalizationPolicy

    policy = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
    headers, body = dkim.rfc822_parse(message)
    names = [b"from", b"to", b"subject", b"date", b"message-id"]
    last = {name.lower(): (name, value) for name, value in headers}  # the bottom instance of each
    chosen = [last[n] for n in names if n in last]
    body_hash = base64.b64encode(hashlib.sha256(policy.canonicalize_body(body)).digest())
    unsigned = (b"v=1; a=rsa-sha256; c=relaxed/simple; d=" + domain + b"; s=" + selector + b"; t="
                + str(int(time.time())).encode() + b"; h=" + b":".join(n for n in names if n in last)
                + b"; bh=" + body_hash + b"; b=")
    digest = hashlib.sha256()
    for name, value in policy.canonicalize_headers(chosen):
        digest.update(name + b":" + value)
    for name, value in policy.canonicalize_headers([(b"DKIM-Signature", b" " + unsigned)]):
        digest.update(name + b":" + value.rstrip())
    signature = key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))  # type: ignore[attr-defined]
    return b"DKIM-Signature: " + unsigned + base64.b64encode(signature) + b"\r\n"

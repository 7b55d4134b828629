"""Header fields read at store time, so mail can be listed before the pipeline runs.

Only the header block is parsed (the body can be megabytes). Nothing here may raise: a header
that cannot be decoded is kept as the raw text, or left empty, and storage goes on.
"""

from __future__ import annotations

import datetime as dt
import email.header
import email.utils
import hashlib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

MAX_FIELD = 10_000  # a 210 KB encoded header is real (see the corpus); the list needs far less


@dataclass(frozen=True)
class HeaderFields:
    from_header: str = ""
    to_header: str = ""
    subject: str = ""
    message_id: str = ""
    date: dt.datetime | None = None


def header_block(data: bytes) -> bytes:
    """The bytes up to the first empty line (any line ending), or all of them."""
    best = len(data)
    for sep in (b"\r\n\r\n", b"\n\n", b"\r\r"):
        pos = data.find(sep, 0, best)
        if pos != -1:
            best = min(best, pos + len(sep))
    return data[:best]


def _decode(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    try:
        parts = email.header.decode_header(text)
        decoded = "".join(
            part.decode(charset or "utf-8", errors="replace") if isinstance(part, bytes) else part
            for part, charset in parts
        )
    except (LookupError, ValueError, UnicodeError, AssertionError):
        decoded = text
    return " ".join(decoded.split())[:MAX_FIELD]


def _date(value: object) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def parse_header_fields(data: bytes) -> HeaderFields:
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(data))
    except Exception:  # noqa: BLE001 - a header we cannot read must never block storage
        return HeaderFields()
    message_id = " ".join(str(headers.get("Message-ID", "") or "").split()).strip()
    return HeaderFields(
        from_header=_decode(headers.get("From")),
        to_header=_decode(headers.get("To")),
        subject=_decode(headers.get("Subject")),
        message_id=message_id[:998],
        date=_date(headers.get("Date")),
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

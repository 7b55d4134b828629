"""Header fields read at store time, so mail can be listed before the pipeline runs.

Only the header block is parsed (the body can be megabytes). Nothing here may raise: a header
that cannot be decoded is kept as the raw text, or left empty, and storage goes on.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email.header
import email.utils
import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.policy import compat32

MAX_FIELD = 10_000  # a 210 KB encoded header is real (see the corpus); the list needs far less


@dataclass(frozen=True)
class HeaderFields:
    from_header: str = ""
    to_header: str = ""
    subject: str = ""
    message_id: str = ""
    date: dt.datetime | None = None


BOM = b"\xef\xbb\xbf"


def without_bom(data: bytes) -> bytes:
    """`data` without a UTF-8 byte-order mark before the headers (some Windows tools write one):
    read with it, the first header's name would start with the mark and the header would be lost."""
    return data[len(BOM):] if data.startswith(BOM) else data


def text_of(raw: bytes) -> str:
    """Raw 8-bit header bytes as text: UTF-8 (what mail with raw non-ASCII headers uses, RFC 6532),
    each byte that is not part of a UTF-8 character as Windows-1252; never a replacement character."""
    return raw.decode("utf-8", _CP1252_FALLBACK)


# Windows-1252 where it differs from Latin-1 (0x80-0x9F); its five unassigned bytes stay as Latin-1.
_CP1252 = {byte: bytes([byte]).decode("cp1252") for byte in range(0x80, 0xA0)
           if byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_CP1252_FALLBACK = "buzon-cp1252"


def _cp1252(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)  # noqa: S101 - registered for decoding only
    return error.object[error.start:error.end].decode("latin-1").translate(_CP1252), error.end


codecs.register_error(_CP1252_FALLBACK, _cp1252)


def readable(message: Message) -> Message:
    """`message`'s headers with raw 8-bit bytes decoded (text_of), parsed again (compat32).

    The email package keeps such bytes as surrogate escapes and, asked for a value, hands back a
    Header whose text has a U+FFFD for every byte: a UTF-8 subject or file name came out garbled."""
    values = list(message.raw_items())
    if all(value.isascii() for _name, value in values):
        return message
    lines = "".join(f"{name}: {text_of(value.encode('ascii', 'surrogateescape'))}\n" for name, value in values)
    return HeaderParser(policy=compat32).parsestr(lines + "\n", headersonly=True)


def filename(message: Message) -> str:
    """The part's file name (RFC 2231, raw UTF-8 and, as mail clients read them, RFC 2047 words), or ""."""
    try:
        name = readable(message).get_filename()
    except (ValueError, LookupError, TypeError, IndexError):
        return ""
    return _decode(name) if name else ""


def header_block(data: bytes) -> bytes:
    """The bytes up to the first empty line (any line ending), or all of them."""
    data = without_bom(data)
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
    if "=?" not in text:  # no encoded word: decode_header would hand the text back as it is
        return " ".join(text.split())[:MAX_FIELD]
    try:
        parts = email.header.decode_header(text)
        decoded = "".join(_word(part, charset) if isinstance(part, bytes) else part for part, charset in parts)
    except (LookupError, ValueError, UnicodeError, AssertionError):
        decoded = text
    return " ".join(decoded.split())[:MAX_FIELD]


def _word(data: bytes, charset: str | None) -> str:
    """An encoded word's bytes in its charset; if they are not (a wrong or unknown label), as text_of."""
    try:
        return data.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return text_of(data)


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


WANTED = ("from", "to", "subject", "message-id", "date")
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")  # the email package's headerRE


def _ascii_fields(block: bytes) -> dict[str, str] | None:
    """The first value of each WANTED field of an all-ASCII header block, read exactly as the
    email package's parser (compat32) reads it, without building a Message; None if not ASCII."""
    if not block.isascii():
        return None
    found: dict[str, str] = {}
    name, value = "", []
    for line in _LINES.findall(block.decode("ascii")):
        if not _HEADER_LINE.match(line):
            break  # the end of the headers: an empty line, or a line that cannot be a header
        if line[0] in " \t":
            if name:
                value.append(line)  # a folded continuation
            continue
        if name:
            found.setdefault(name, "".join(value).rstrip("\r\n"))
            name, value = "", []
        if line.startswith("From "):
            continue  # an mbox "From " line: never a field
        head, _, rest = line.partition(":")
        if head.lower() in WANTED:
            name, value = head.lower(), [rest.lstrip(" \t")]
    if name:
        found.setdefault(name, "".join(value).rstrip("\r\n"))
    return found


def _parsed_fields(block: bytes) -> dict[str, object]:
    headers = readable(BytesHeaderParser(policy=compat32).parsebytes(block))
    return {name: headers.get(name) for name in WANTED if headers.get(name) is not None}


def parse_header_fields(data: bytes) -> HeaderFields:
    block = header_block(data)
    try:
        ascii_fields = _ascii_fields(block)
        fields: dict[str, object] = dict(ascii_fields) if ascii_fields is not None else _parsed_fields(block)
    except Exception:  # noqa: BLE001 - a header we cannot read must never block storage
        return HeaderFields()
    message_id = " ".join(str(fields.get("message-id", "") or "").split()).strip()
    return HeaderFields(
        from_header=_decode(fields.get("from")),
        to_header=_decode(fields.get("to")),
        subject=_decode(fields.get("subject")),
        message_id=message_id[:998],
        date=_date(fields.get("date")),
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

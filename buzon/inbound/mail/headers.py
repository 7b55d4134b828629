"""Header decoding that survives real mail: RFC 2047 words, 8-bit bytes, wrong or unknown charsets."""

from __future__ import annotations

import datetime as dt
import email.header
import email.utils
import re
from email.message import Message as EmailMessage

from buzon.sync.headers import text_of

# Headers longer than this are cut before decoding: a 200 KB Subject is an attack or a bug, and
# decoding it whole would cost time every time the message is shown.
MAX_HEADER_CHARS = 16_384
_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_ENCODED_WORD_RE = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text from bytes: the declared charset if it fits, else UTF-8, else Windows-1252, else Latin-1.

    Mail often declares the wrong charset (us-ascii with UTF-8 inside, iso-8859-1 with cp1252 quotes);
    a strict try of each candidate picks the first one that decodes the bytes without error.
    """
    candidates = [c for c in (declared, "utf-8", "cp1252") if c]
    for charset in candidates:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")


def _unsurrogate(value: str) -> str:
    # The parser keeps raw 8-bit header bytes as surrogate escapes; turn them back into text.
    if not _SURROGATE_RE.search(value):
        return value
    # UTF-8 where the bytes are UTF-8, Windows-1252 for any other byte: a header a gateway half re-encoded
    # keeps its UTF-8 words readable instead of turning wholly into Windows-1252 mojibake.
    return text_of(value.encode("ascii", "surrogateescape"))


def _decode_words(value: str) -> str:
    try:
        chunks = email.header.decode_header(value)
    except (ValueError, AssertionError, LookupError):  # malformed words: keep the text as written
        return value
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        else:
            parts.append(decode_bytes(chunk, charset if charset not in (None, "unknown-8bit") else None))
    return "".join(parts)


def decode_header(value: object) -> str:
    """One header value as readable text."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = str(value)
    text = str(value)[:MAX_HEADER_CHARS]
    text = _FOLD_RE.sub("", text)
    text = _unsurrogate(text)
    if "=?" in text and _ENCODED_WORD_RE.search(text):
        text = _decode_words(text)
    return text.replace("\x00", "").strip()


def raw_headers(msg: EmailMessage) -> dict[str, list[str]]:
    """Every header as written (lower-case names), before decoding."""
    result: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        result.setdefault(str(name).strip().lower(), []).append(str(value)[:MAX_HEADER_CHARS])
    return result


def first(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return decode_header(values[0]) if values else ""


def addresses(raw_values: list[str] | None) -> list[tuple[str, str]]:
    """(name, address) pairs; names decoded after splitting so an encoded comma cannot split one."""
    if not raw_values:
        return []
    cleaned = [_FOLD_RE.sub("", _unsurrogate(v[:MAX_HEADER_CHARS])) for v in raw_values]
    try:
        pairs = email.utils.getaddresses(cleaned)
    except (ValueError, IndexError, TypeError):
        return []
    result = []
    for name, address in pairs:
        address = address.strip().strip("<>").strip()
        if "@" not in address or len(address) > 320:
            continue
        result.append((decode_header(name)[:320], address))
    return result


_MSGID_RE = re.compile(r"<([^<>\s]{1,990})>")


def message_ids(value: str) -> list[str]:
    """Message-IDs in a References/In-Reply-To value, in order, as ``<id>``."""
    found = [f"<{m}>" for m in _MSGID_RE.findall(value or "")]
    if not found and value and "@" in value and " " not in value.strip():
        found = [f"<{value.strip()}>"]  # a bare id without brackets, as some clients write it
    return list(dict.fromkeys(found))


def date(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    if not (1970 <= parsed.year <= 2200):
        return None
    return parsed

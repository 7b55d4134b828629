"""Raw bytes → the `email` package's message tree (compat32), without reading every line in Python.

The standard parser (email.feedparser) looks at a message one line at a time: for mail with
attachments, whose base64 is tens of thousands of 76-character lines, that loop is most of the
pipeline's CPU. This module finds the same structure with `bytes.find` (C): each part's header block
is read by the standard parser (a few lines), and a leaf part's body is handed over whole.

It builds exactly the tree email.feedparser builds (the same headers, payloads, preambles,
epilogues, part order), so attachment numbers, bodies and everything read from the tree stay the
same (tests/inbound/test_mime.py compares both on the corpus of real-world mail and on generated
mail). It does so only for mail whose structure it reads without doubt: anything the standard
parser would mark as a defect, or treats in its own way (lone CR line ends, message/* parts,
digests, a header block not ended by a blank line, two boundary lines in a row, a missing closing
boundary…), goes to the standard parser whole, as before.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from email.message import Message
from typing import Any

_HEADER_LINE = re.compile(rb"(From |[\041-\071\073-\176]*:|[\t ])")  # email.feedparser.headerRE
_BOUNDARY_TAIL = re.compile(rb"(--)?[ \t]*\r?\n?")  # what may follow "--boundary" on its line
_CONTENT_TRANSFER_ENCODINGS = ("7bit", "8bit", "binary")


class _Doubt(Exception):
    """The standard parser should read this message."""


def _standard() -> email.parser.BytesParser:
    # compat32 never raises on bad structure; it records defects and keeps going.
    return email.parser.BytesParser(policy=email.policy.compat32)


def parse(data: bytes) -> Message:
    """The message tree of ``data``, as BytesParser(policy=compat32).parsebytes(data) makes it."""
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return _standard().parsebytes(data)  # a lone CR ends a line for the standard parser
    try:
        return _part(data)
    except _Doubt:
        return _standard().parsebytes(data)


def _text(data: bytes) -> str:
    return data.decode("ascii", "surrogateescape")  # as BytesParser hands bytes to the FeedParser


def _headers(data: bytes) -> tuple[Message, bytes]:
    """The part's headers (read by the standard parser) and the bytes of its body."""
    crlf = data.find(b"\r\n\r\n")
    end = data.find(b"\n\n", 0, len(data) if crlf == -1 else crlf)  # not through the whole part again
    if data.startswith((b"\n", b"\r\n")):  # no headers at all: the body starts after the blank line
        head, body = b"", data[1 if data[:1] == b"\n" else 2:]
    elif crlf != -1 and (end == -1 or crlf < end):
        head, body = data[:crlf + 2], data[crlf + 4:]
    elif end != -1:
        head, body = data[:end + 1], data[end + 2:]
    else:
        raise _Doubt  # headers running to the end of the part
    for line in head.splitlines():
        if not _HEADER_LINE.match(line):
            raise _Doubt  # the standard parser would start the body here (a defect)
    message = _standard().parsebytes(head, headersonly=True)
    if message.defects or _stored_payload(message):
        raise _Doubt  # e.g. a "From " line last in the block, which it reads as the body's first
    return message, body


def _part(data: bytes) -> Message:
    message, body = _headers(data)
    maintype = message.get_content_maintype()
    if maintype == "message":
        raise _Doubt  # an enclosed message or a delivery report: parsed again inside
    if maintype != "multipart":
        message.set_payload(_text(body))
        return message
    boundary = message.get_boundary()
    if boundary is None or message.get_content_type() == "multipart/digest":
        raise _Doubt
    if str(message.get("content-transfer-encoding", "8bit")).lower() not in _CONTENT_TRANSFER_ENCODINGS:
        raise _Doubt  # a defect the standard parser notes
    try:
        delimiter = b"--" + boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        raise _Doubt from None  # an RFC 2231 boundary decoded to other characters
    lines = _boundary_lines(body, delimiter)
    if not lines or lines[0][2]:
        raise _Doubt  # no boundary, or the closing one first: a start boundary not found
    if not lines[-1][2]:
        raise _Doubt  # the closing boundary is missing (the lines stop at the first closing one)
    closing = len(lines) - 1
    message._payload = None  # type: ignore[attr-defined]  # the header parse left an empty body; parts go here
    if lines[0][0] > 0:
        message.preamble = _without_last_line_end(_text(body[:lines[0][0]]))
    for (_start, after, _close), (following, _end, _next_close) in zip(lines, lines[1:closing + 1], strict=False):
        if following == after:
            raise _Doubt  # two boundary lines in a row: the standard parser skips them its own way
        message.attach(_child(body[after:following]))
    message.epilogue = _text(body[lines[closing][1]:])
    return message


def _child(region: bytes) -> Message:
    """A part between two boundary lines; the line end before the next boundary belongs to it
    (RFC 2046), so it leaves the part's payload (or a multipart part's epilogue)."""
    child = _part(region)
    if child.is_multipart():
        if child.epilogue == "":
            child.epilogue = None
        elif child.epilogue is not None:
            child.epilogue = _without_last_line_end(child.epilogue)
    else:
        payload = _stored_payload(child)
        if isinstance(payload, str):
            child.set_payload(_without_last_line_end(payload))
    return child


def _stored_payload(message: Message) -> Any:
    """The payload as stored: get_payload() would decode 8-bit text by its charset."""
    return message._payload  # type: ignore[attr-defined]


def _without_last_line_end(value: str) -> str:
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith(("\n", "\r")):
        return value[:-1]
    return value


def _boundary_lines(body: bytes, delimiter: bytes) -> list[tuple[int, int, bool]]:
    """(start, end after its line end, closing?) of each line that is ``delimiter`` alone (with
    "--" for the closing one, and trailing blanks), as email.feedparser's boundary pattern matches
    whole lines, up to and including the first closing one."""
    found: list[tuple[int, int, bool]] = []
    at = body.find(delimiter)
    while at != -1:
        if at == 0 or body[at - 1] == 0x0A:
            line_end = body.find(b"\n", at)
            end = len(body) if line_end == -1 else line_end + 1
            tail = _BOUNDARY_TAIL.fullmatch(body, at + len(delimiter), end)
            if tail is not None:
                close = tail.group(1) is not None
                found.append((at, end, close))
                if close:
                    break
        at = body.find(delimiter, at + len(delimiter))
    return found

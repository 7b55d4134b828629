"""Cutting an oversized message read from a file, never holding it whole in memory (POP3).

One pass over the lines finds every leaf part (its MIME headers and where its body starts and
ends in the file); the attachment plan (truncate.plan, as for IMAP's BODYSTRUCTURE) then says
which parts to keep, and only those are read back. Memory is one line plus the kept parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import BinaryIO

from buzon.sync.headers import filename
from buzon.sync.truncate import Leaf, Plan, build, note_text, plan

TEXT_TYPES = ("text/plain", "text/html")


@dataclass(frozen=True)
class Span:
    leaf: Leaf
    headers: bytes  # the part's own MIME headers
    start: int  # its body, as offsets in the file
    end: int


def _headers(fp: BinaryIO) -> bytes:
    """The header lines from here up to (and without) the empty line that ends them."""
    lines: list[bytes] = []
    while True:
        line = fp.readline()
        if not line or line in (b"\r\n", b"\n"):
            return b"".join(lines)
        lines.append(line)


def _delimiter(line: bytes, stack: list[bytes]) -> tuple[str, bytes] | None:
    """("next", boundary) for "--boundary", ("end", boundary) for "--boundary--", else None."""
    if not line.startswith(b"--"):
        return None
    text = line.rstrip(b"\r\n").rstrip(b" \t")[2:]
    for boundary in reversed(stack):
        if text == boundary:
            return "next", boundary
        if text == boundary + b"--":
            return "end", boundary
    return None


class _Scanner:
    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.spans: list[Span] = []
        self.multipart = False  # the message itself is multipart

    def _until_delimiter(self, stack: list[bytes]) -> tuple[tuple[str, bytes] | None, int]:
        """Read up to the next delimiter line; returns it and where the text before it ends (the
        line break before a delimiter belongs to the delimiter)."""
        end = self.fp.tell()
        while True:
            at = self.fp.tell()
            line = self.fp.readline()
            if not line:
                return None, at
            found = _delimiter(line, stack) if stack else None
            if found is not None:
                return found, end
            end = at + len(line.rstrip(b"\r\n"))

    def entity(self, headers: bytes, stack: list[bytes]) -> tuple[str, bytes] | None:
        message: Message = BytesHeaderParser(policy=compat32).parsebytes(headers + b"\r\n")
        boundary = message.get_param("boundary") if message.get_content_maintype() == "multipart" else None
        if isinstance(boundary, str) and boundary:
            self.multipart = self.multipart or not stack
            own = boundary.encode("utf-8", "surrogateescape")
            stack.append(own)
            found, _ = self._until_delimiter(stack)  # the preamble
            while found == ("next", own):
                found = self.entity(_headers(self.fp), stack)
            stack.pop()
            if found == ("end", own):
                found, _ = self._until_delimiter(stack)  # the epilogue
            return found
        start = self.fp.tell()
        found, end = self._until_delimiter(stack)
        name = filename(message)  # raw UTF-8 names too (headers.readable)
        ctype = message.get_content_type()
        leaf = Leaf(str(len(self.spans)), ctype, max(0, end - start), name, ctype in TEXT_TYPES and not name)
        self.spans.append(Span(leaf, headers, start, max(start, end)))
        return found


def scan(fp: BinaryIO) -> tuple[bytes, list[Span], bool]:
    """The message's header block, its leaf parts in order, and whether it is multipart."""
    fp.seek(0)
    headers = _headers(fp)
    scanner = _Scanner(fp)
    scanner.entity(headers, [])
    return headers, scanner.spans, scanner.multipart


def cut(fp: BinaryIO, limit: int) -> tuple[bytes, str] | None:
    """The message in `fp` with the attachments that do not fit in `limit` left out (headers, text
    and a note naming them kept), and the note; None when nothing needs leaving out."""
    headers, spans, multipart = scan(fp)
    leaves = [span.leaf for span in spans]
    # A single-part message this big is all attachment (or all text): only the headers fit.
    chosen = plan(leaves, limit) if multipart else Plan(keep=[], left_out=leaves)
    if not chosen.left_out:
        return None
    kept = []
    for leaf in chosen.keep:
        span = spans[int(leaf.part)]
        fp.seek(span.start)
        kept.append((span.headers, fp.read(span.end - span.start)))
    return build(headers, kept, chosen.left_out), note_text(chosen.left_out)

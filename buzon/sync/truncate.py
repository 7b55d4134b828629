"""`attachment_limit_mb`: an oversized message keeps its headers and text; big attachments go.

What is left out is kept as data beside the message (``RawMessage.truncation_note``: ``note_text``),
shown to each reader in their language (``describe``), and named in a text part at the end of the
stored original for anyone who opens it outside Buzón (the pipeline leaves that part out of the
body: ``without_note``). IMAP servers let us plan from BODYSTRUCTURE and fetch only the parts we keep
(memory stays bounded by the limit); POP3 can only give the whole message, which is cut here.
"""

from __future__ import annotations

import email
import json
import re
import secrets
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from buzon.sync.headers import filename, header_block, text_of
from buzon.sync.imap_parse import Value


@dataclass(frozen=True)
class Leaf:
    part: str  # IMAP part number ("1", "2.1") or, for a parsed message, its index in walk()
    content_type: str
    size: int
    name: str
    is_text: bool


@dataclass(frozen=True)
class Plan:
    keep: list[Leaf]
    left_out: list[Leaf]


def plan(leaves: list[Leaf], limit: int) -> Plan:
    """Keep every text body (up to the limit), then the smallest attachments that still fit."""
    keep: list[Leaf] = []
    left_out: list[Leaf] = []
    used = 0
    for leaf in [leaf for leaf in leaves if leaf.is_text] + sorted(
        (leaf for leaf in leaves if not leaf.is_text), key=lambda leaf: leaf.size
    ):
        if used + leaf.size <= limit:
            keep.append(leaf)
            used += leaf.size
        else:
            left_out.append(leaf)
    keep.sort(key=lambda leaf: leaves.index(leaf))
    return Plan(keep=keep, left_out=left_out)


def _text(value: Value) -> str:
    return text_of(value) if isinstance(value, bytes) else ""  # raw 8-bit names: no U+FFFD


def _find_name(value: Value) -> str:
    """Look through a part's parameter lists for a FILENAME or NAME."""
    if not isinstance(value, list):
        return ""
    for key, item in zip(value, value[1:], strict=False):
        if isinstance(key, bytes) and key.upper() in (b"FILENAME", b"NAME") and isinstance(item, bytes):
            return _text(item)
    for item in value:
        found = _find_name(item) if isinstance(item, list) else ""
        if found:
            return found
    return ""


def leaves_from_bodystructure(structure: Value, prefix: str = "") -> list[Leaf]:
    if not isinstance(structure, list) or not structure:
        return []
    if isinstance(structure[0], list):  # multipart: children first, then the subtype
        leaves: list[Leaf] = []
        children: list[list[Value]] = []
        for item in structure:
            if not isinstance(item, list):
                break  # the subtype, then the multipart's parameters
            children.append(item)
        for index, child in enumerate(children):
            leaves.extend(leaves_from_bodystructure(child, f"{prefix}{index + 1}."))
        return leaves
    ctype = f"{_text(structure[0])}/{_text(structure[1])}".lower()
    size = structure[6] if len(structure) > 6 and isinstance(structure[6], int) else 0
    name = _find_name(structure[2:])
    is_text = ctype in ("text/plain", "text/html") and not name
    return [Leaf(part=prefix.rstrip(".") or "1", content_type=ctype, size=size, name=name, is_text=is_text)]


def _without_content_headers(headers: bytes) -> bytes:
    kept: list[bytes] = []
    skipping = False
    for line in headers.splitlines(keepends=True):
        if line.strip() == b"":
            continue
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        skipping = name in (b"content-type", b"content-transfer-encoding")
        if not skipping:
            kept.append(line)
    return b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in kept)


def note_text(left_out: list[Leaf]) -> str:
    """What ``RawMessage.truncation_note`` keeps: the attachments left out, as data (JSON), so that each
    reader sees the note in their own language (``describe``) rather than in the worker's."""
    return json.dumps([{"name": leaf.name, "type": leaf.content_type, "size": leaf.size} for leaf in left_out],
                      ensure_ascii=False)


def left_out_of(note: str) -> list[dict[str, Any]]:
    """The attachments a ``truncation_note`` names ([] for none, or for a note that is not data)."""
    try:
        items = json.loads(note) if note.startswith("[") else []
    except ValueError:
        return []
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def describe(note: str) -> str:
    """The note in the active language: a heading, then one line per attachment left out."""
    items = left_out_of(note)
    if not items:
        return note if not note.startswith("[") else ""  # a note from before notes were data: as written
    lines = [_("Attachments left out because the message is larger than the account's attachment limit:")]
    unnamed = _("(no name)")
    for item in items:
        size = item.get("size")
        size = size if isinstance(size, int) else 0
        lines.append(f"- {item.get('name') or unnamed} ({item.get('type', '')}, {size // 1024} KB)")
    return "\n".join(lines)


_NOTE_HEADERS = b'\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n' \
    b"Content-Disposition: inline\r\n\r\n"
_BOUNDARY_RE = re.compile(rb'^Content-Type: multipart/mixed; boundary="(buzon-truncated-[0-9a-f]{16})"\r?$', re.M)


def without_note(data: bytes) -> bytes:
    """A message ``build`` made, without the note part it ends with: the note is not the sender's text,
    and the reader's page shows it in their language. Call it only for a message Buzón truncated
    (``RawMessage.truncated``): the sender does not control that flag, nor the boundary ``build`` chose."""
    header_end = data.find(b"\r\n\r\n")
    found = _BOUNDARY_RE.search(data, 0, header_end + 2) if header_end >= 0 else None
    if found is None:
        return data
    boundary = found.group(1)
    start = data.rfind(b"--" + boundary + _NOTE_HEADERS)
    end = data.rfind(b"--" + boundary + b"--")
    if start < 0 or end < start:
        return data
    return data[:start] + data[end:]


def build(headers: bytes, parts: list[tuple[bytes, bytes]], left_out: list[Leaf]) -> bytes:
    """A multipart/mixed message: the original headers, the kept parts, then the note."""
    boundary = f"buzon-truncated-{secrets.token_hex(8)}".encode()
    out = [_without_content_headers(headers)]
    out.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n')
    for mime_headers, body in parts:
        out += [b"--", boundary, b"\r\n", mime_headers.rstrip(b"\r\n"), b"\r\n\r\n", body, b"\r\n"]
    # The stored original names what it lost, in the site's language, for whoever opens it outside
    # Buzón; Buzón itself reads the note from truncation_note (without_note, describe).
    with translation.override(settings.LANGUAGE_CODE):
        note = describe(note_text(left_out)).encode("utf-8")
    out += [b"--", boundary, _NOTE_HEADERS, note, b"\r\n"]
    out += [b"--", boundary, b"--\r\n"]
    return b"".join(out)


def _leaf_bytes(part: Message) -> tuple[bytes, bytes]:
    headers = "".join(f"{key}: {value}\r\n" for key, value in part.items())
    payload = part.get_payload(decode=False)
    body = payload if isinstance(payload, str) else ""
    return headers.encode("utf-8", "surrogateescape"), body.encode("ascii", "surrogateescape")


def truncate_bytes(data: bytes, limit: int) -> tuple[bytes, str] | None:
    """Cut an already downloaded message (POP3). None when nothing needs leaving out."""
    try:
        message = email.message_from_bytes(data, policy=compat32)
        parts = [part for part in message.walk() if not part.is_multipart()]
    except Exception:  # noqa: BLE001 - a message we cannot split is stored whole rather than lost
        return None
    leaves = []
    for index, part in enumerate(parts):
        name = filename(part)
        ctype = part.get_content_type()
        body = _leaf_bytes(part)[1]
        leaves.append(Leaf(str(index), ctype, len(body), str(name), ctype in ("text/plain", "text/html") and not name))
    chosen = plan(leaves, limit)
    if not chosen.left_out:
        return None
    kept = [_leaf_bytes(parts[int(leaf.part)]) for leaf in chosen.keep]
    return build(header_block(data), kept, chosen.left_out), note_text(chosen.left_out)

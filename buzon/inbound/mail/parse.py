"""Raw bytes → ParsedMail: headers, bodies, attachments, the parts a bounce report carries.

Bounded on purpose: at most MAX_PARTS MIME parts and MAX_DEPTH levels of nesting are looked at, so a
hostile or broken message (an endlessly nested one, a torture test) costs bounded time and memory.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message as EmailMessage
from typing import Any

from buzon.inbound.mail import headers as hdr
from buzon.inbound.mail import htmltext, mime
from buzon.sync import headers as sync_headers

MAX_PARTS = 400
MAX_DEPTH = 25
# The standard parser checks every line against every open multipart boundary, so its time grows
# with lines x nesting: 3,000 nested multiparts cost ~20 s of CPU. Past this many boundary
# declarations the rest of the message is not read (noted), which bounds that cost before parsing.
MAX_BOUNDARIES = 100
_BOUNDARY_RE = re.compile(rb"boundary\s*=", re.I)
MAX_TEXT_CHARS = 1_000_000
# An enclosed message (forwarded, or returned by a bounce): an attachment of its own, never read as
# part of this message's text (message/news is the old name, message/global the UTF-8 one, RFC 6532).
ATTACHED_MESSAGES = ("message/rfc822", "message/news", "message/global")
_NOT_DESCENDED = (*ATTACHED_MESSAGES, "text/rfc822-headers", "message/delivery-status")
# RFC 2045 5.2: a Content-Type that is not a valid type/subtype means text/plain.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE_RE = re.compile(rf"\s*({_TOKEN})\s*/\s*({_TOKEN})\s*")
_MAIL_HEADERS = ("from", "to", "subject", "date", "message-id", "received", "content-type", "mime-version")


class Unparseable(Exception):
    """The bytes are not a mail message at all (empty, binary, no headers)."""


@dataclass
class ParsedAttachment:
    part: int
    filename: str
    content_type: str
    size: int
    content_id: str = ""
    inline: bool = False


@dataclass
class ParsedMail:
    headers: dict[str, list[str]]
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_name: str = ""
    from_address: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    date: dt.datetime | None = None
    content_type: str = "text/plain"
    text: str = ""
    html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    delivery_status: list[dict[str, str]] = field(default_factory=list)  # RFC 3464 per-recipient fields
    returned_headers: dict[str, list[str]] = field(default_factory=dict)  # of the message a bounce returns
    notes: list[str] = field(default_factory=list)  # what was odd about the message, in plain words

    def header(self, name: str) -> str:
        return hdr.first(self.headers, name)


def parse_bytes(data: bytes) -> ParsedMail:
    data = sync_headers.without_bom(data)
    if not data or not data.strip():
        raise Unparseable("the message is empty")
    data, cut = _bounded(data)
    msg = mime.parse(data)
    # NUL is never meaningful in mail text, and PostgreSQL refuses it in text columns.
    headers = {k: [v.replace("\0", "") for v in values] for k, values in hdr.raw_headers(msg).items()}
    if not headers:
        raise Unparseable("the message has no headers")
    if not any(name in headers for name in _MAIL_HEADERS):
        raise Unparseable("it has none of the headers of an email (From, To, Subject, Date, Content-Type...)")
    mail = _headers_to_mail(headers)
    mail.content_type = _content_type(msg)
    if cut:
        mail.notes.append(f"only the first {MAX_BOUNDARIES} multipart sections were read")
    _walk(msg, mail)
    mail.text, mail.html = mail.text.replace("\0", ""), mail.html.replace("\0", "")
    if not mail.text and mail.html:
        mail.text = htmltext.to_text(mail.html)[:MAX_TEXT_CHARS]
    mail.html = htmltext.sanitise(mail.html)
    return mail


def _bounded(data: bytes) -> tuple[bytes, bool]:
    """``data`` cut before its (MAX_BOUNDARIES + 1)-th boundary declaration, and whether it was cut."""
    if data.lower().count(b"boundary") <= MAX_BOUNDARIES:  # C: the pattern below costs ~1 ms per 100 KB
        return data, False
    for count, match in enumerate(_BOUNDARY_RE.finditer(data), start=1):
        if count > MAX_BOUNDARIES:
            return data[:data.rfind(b"\n", 0, match.start()) + 1], True
    return data, False


def _headers_to_mail(headers: dict[str, list[str]]) -> ParsedMail:
    sender = hdr.addresses(headers.get("from")) or hdr.addresses(headers.get("sender"))
    mail = ParsedMail(headers=headers)
    mail.message_id = (hdr.message_ids(hdr.first(headers, "message-id")) or [""])[0][:998]
    mail.in_reply_to = (hdr.message_ids(hdr.first(headers, "in-reply-to")) or [""])[0][:998]
    mail.references = hdr.message_ids(" ".join(headers.get("references", [])))[-100:]
    mail.subject = hdr.first(headers, "subject")
    if sender:
        mail.from_name, mail.from_address = sender[0]
    mail.to = [a for _, a in hdr.addresses(headers.get("to"))]
    mail.cc = [a for _, a in hdr.addresses(headers.get("cc"))]
    mail.reply_to = [a for _, a in hdr.addresses(headers.get("reply-to"))]
    mail.date = hdr.date(hdr.first(headers, "date"))
    return mail


def _content_type(part: EmailMessage) -> str:
    """type/subtype in lower case; the default (text/plain, or message/rfc822 in a digest) when the
    header is missing, and text/plain when it is not a valid type/subtype (RFC 2045 5.2: "text",
    "text/", "/plain"), where the email package would give "text/" or "/plain" back."""
    try:
        value = part.get("content-type")
        if value is None:
            return part.get_default_type()
        match = _CONTENT_TYPE_RE.fullmatch(str(value).split(";", 1)[0])
    except (ValueError, IndexError, AttributeError, TypeError):
        return "application/octet-stream"
    return f"{match.group(1)}/{match.group(2)}".lower() if match else "text/plain"


def _payload_bytes(part: EmailMessage) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError):
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _payload_size(part: EmailMessage) -> int:
    """``len(_payload_bytes(part))``: a file's size. Valid base64, as the email package decodes it
    (line ends dropped, then checked strictly), is counted from its text, 3 bytes for 4 characters
    less the padding, without decoding it (decoding was a tenth of the pipeline's time for mail with
    files); anything else is decoded and measured."""
    payload = part.get_payload()
    if (isinstance(payload, str) and payload.isascii()
            and str(part.get("content-transfer-encoding", "")).lower() == "base64"):
        raw = payload.encode("ascii")
        left = raw.translate(None, _BASE64_ALPHABET)  # line ends and padding, if it is valid
        rest = left.translate(None, b"\r\n")  # bytes' splitlines() splits at \r, \n and \r\n alone
        chars = len(raw) - (len(left) - len(rest))
        if chars % 4 == 0 and rest in (b"", b"=", b"==") and raw.rstrip(b"\r\n").endswith(rest):
            return chars // 4 * 3 - len(rest)
    return len(_payload_bytes(part))


def _part_text(part: EmailMessage) -> str:
    try:
        charset = part.get_content_charset()
    except (ValueError, LookupError):
        charset = None
    return hdr.decode_bytes(_payload_bytes(part), charset)[:MAX_TEXT_CHARS]


def _filename(part: EmailMessage) -> str:
    # RFC 2231 continuations and charsets joined, raw UTF-8 read as such (not as U+FFFD), RFC 2047 words decoded.
    name = sync_headers.filename(part)
    return hdr.decode_header(name).replace("\0", "")[:500] if name else ""


def _parts(root: EmailMessage, notes: list[str],
           alternatives: set[int] | None = None) -> Iterator[tuple[int, EmailMessage, str, bool]]:
    """(index, part, content type, inside multipart/related) in a fixed order, within the limits.

    Attachment rows store the index, and downloads find the bytes again by walking the same way.
    `alternatives` learns (by id) each text part of a multipart/alternative after the first one of
    its type: another rendering of the same text, not more of it.
    """
    stack: list[tuple[EmailMessage, int, bool]] = [(root, 0, False)]  # (part, depth, inside related)
    index = -1
    while stack:
        part, depth, related = stack.pop()
        index += 1
        if index >= MAX_PARTS:
            notes.append(f"only the first {MAX_PARTS} parts were read")
            return
        ctype = _content_type(part)
        if ctype in _NOT_DESCENDED or not part.is_multipart():
            yield index, part, ctype, related
            continue
        if depth >= MAX_DEPTH:
            notes.append(f"parts nested deeper than {MAX_DEPTH} levels were not read")
            continue
        children = part.get_payload()
        if isinstance(children, list):
            if alternatives is not None and ctype == "multipart/alternative":
                alternatives.update(_later_alternatives(children))
            inner_related = related or ctype == "multipart/related"
            stack.extend((child, depth + 1, inner_related) for child in reversed(children)
                         if isinstance(child, EmailMessage))


def _later_alternatives(children: list[Any]) -> set[int]:
    seen: set[str] = set()
    later: set[int] = set()
    for child in children:
        if not isinstance(child, EmailMessage):
            continue
        ctype = _content_type(child)
        if ctype in ("text/plain", "text/html") and (child.get_content_disposition() or "") != "attachment":
            if ctype in seen:
                later.add(id(child))
            seen.add(ctype)
    return later


def _walk(root: EmailMessage, mail: ParsedMail) -> None:
    alternatives: set[int] = set()
    for index, part, ctype, related in _parts(root, mail.notes, alternatives):
        if id(part) in alternatives:  # kept as a file: nothing is lost, and the text is not read twice
            mail.attachments.append(ParsedAttachment(part=index, filename=_filename(part), content_type=ctype,
                                                     size=_payload_size(part)))
            continue
        if ctype in (*ATTACHED_MESSAGES, "text/rfc822-headers"):
            _returned_message(part, ctype, index, mail)
        elif ctype == "message/delivery-status":
            _delivery_status(part, mail)
        else:
            _leaf(part, ctype, index, related, mail)


def part_bytes(data: bytes, index: int) -> tuple[bytes, str] | None:
    """The decoded bytes and content type of the part an Attachment row names, or None."""
    root = mime.parse(sync_headers.without_bom(data))
    for found, part, ctype, _related in _parts(root, []):
        if found == index:
            if ctype in ATTACHED_MESSAGES:
                inner = part.get_payload()
                if isinstance(inner, list) and inner and isinstance(inner[0], EmailMessage):
                    return inner[0].as_bytes(), ctype
            return _payload_bytes(part), ctype
    return None


def _is_body(ctype: str, disposition: str, filename: str, mail: ParsedMail) -> bool:
    """Whether a leaf is read as the message's text rather than listed as an attachment.

    As Thunderbird shows it (and as policy.default's get_body() picks it): text/plain or text/html
    not marked "attachment"; one with a file name too when it is text/plain, shown inline (or not
    said) and the first text of the message (Outlook and phones name the body "message.txt").
    Unnamed inline text after the first joins it (a list's footer); named text after it is a file."""
    if ctype not in ("text/plain", "text/html") or disposition == "attachment":
        return False
    return not filename or (ctype == "text/plain" and not mail.text and not mail.html)


def _leaf(part: EmailMessage, ctype: str, index: int, related: bool, mail: ParsedMail) -> None:
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part)
    if _is_body(ctype, disposition, filename, mail):
        text = _part_text(part)
        if ctype == "text/plain":
            mail.text = f"{mail.text}\n\n{text}" if mail.text else text
        else:
            mail.html = f"{mail.html}\n{text}" if mail.html else text
        return
    content_id = hdr.decode_header(part.get("Content-ID", "")).strip("<> ")[:500]
    inline = disposition == "inline" or (related and bool(content_id) and disposition != "attachment")
    mail.attachments.append(ParsedAttachment(
        part=index, filename=filename, content_type=ctype[:200], size=_payload_size(part),
        content_id=content_id, inline=inline,
    ))


def _returned_message(part: EmailMessage, ctype: str, index: int, mail: ParsedMail) -> None:
    inner = part.get_payload()
    inner_msg = inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], EmailMessage) else None
    if inner_msg is None and isinstance(inner, str):
        inner_msg = email.parser.Parser(policy=email.policy.compat32).parsestr(inner[:200_000], headersonly=True)
    if inner_msg is not None and not mail.returned_headers:
        mail.returned_headers = hdr.raw_headers(inner_msg)
    if ctype in ATTACHED_MESSAGES:
        subject = hdr.first(mail.returned_headers, "subject") if mail.returned_headers else ""
        mail.attachments.append(ParsedAttachment(
            part=index, filename=_filename(part) or f"{subject or 'message'}.eml"[:500], content_type=ctype,
            size=len(inner_msg.as_bytes()) if inner_msg is not None and _small(part) else 0,
        ))


def _small(part: EmailMessage) -> bool:
    payload = part.get_payload()
    if not isinstance(payload, list) or not payload:
        return True
    first = payload[0]
    return not (isinstance(first, EmailMessage) and first.is_multipart())


def _delivery_status(part: EmailMessage, mail: ParsedMail) -> None:
    groups = part.get_payload()
    if isinstance(groups, str):  # not split into field groups: parse the blocks ourselves
        blocks = [b for b in groups.replace("\r\n", "\n").split("\n\n") if b.strip()]
        parsed = [email.parser.Parser(policy=email.policy.compat32).parsestr(b, headersonly=True) for b in blocks]
    else:
        parsed = [g for g in groups if isinstance(g, EmailMessage)]
    for group in parsed[:200]:
        fields = {name.lower(): hdr.decode_header(value) for name, value in group.raw_items()}
        if fields:
            mail.delivery_status.append(fields)

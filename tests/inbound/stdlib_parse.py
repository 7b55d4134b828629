"""What the standard library's `email` package (policy.default) reads in a message, and Buzón's
intended differences from it, each named and explained (tests/inbound/test_corpus.py compares).

policy.default is the reference: its own MIME structure, header and address parsers, transfer
decoding and charset decoding (get_content), never Buzón's. Where Buzón reads a message differently
on purpose, the difference is applied here to policy.default's result, with the reason, so that
anything else that differs is a bug:

- BODY_JOINS: every unnamed inline text/plain part after the first joins the body, in order (a
  mailing list's footer, an iPhone's text after a picture). Thunderbird shows them so; get_body()
  returns only the first and iter_attachments() lists the others as attachments.
- NUL: NUL characters are dropped from the text (never meaningful in mail; PostgreSQL refuses them).
- CHARSET: where the declared charset does not decode the bytes (a wrong or unknown label),
  get_content() puts U+FFFD for each such byte; Buzón reads the bytes as UTF-8, else Windows-1252,
  so the text has no U+FFFD (compared with the UTF-8 reading where the bytes are UTF-8).
- REPORTS: the machine-readable parts of a report (message/delivery-status, message/feedback-report,
  message/disposition-notification, text/rfc822-headers) are read as the report (bounces,
  complaints), not listed as files. An enclosed message (message/rfc822, message/news,
  message/global) is a file named after its Subject (".eml"); policy.default gives it no name, and
  no decoded payload (its size is the enclosed message's bytes).
- HTML_ONLY: with no text/plain body, Buzón's text is made from the HTML body (compared elsewhere).
- CONTENT_TYPE: a Content-Type that is not a valid type/subtype ("text/plain   charset=x" without
  its ";", "text") is text/plain (RFC 2045 5.2); policy.default keeps the malformed string as the
  type, so its get_body() skips the part.
- COMMENT_NAME: `addr (Name)`: the comment is the sender's name, as Thunderbird shows it;
  policy.default ignores comments.
- NO_DOMAIN: an address without a domain ("MAILER-DAEMON", "postmaster", the null path "<>") is no
  address mail can be sent to, so Buzón keeps none (policy.default returns it as it is).
- BOM: a UTF-8 byte-order mark before the headers (some Windows tools write one) is ignored;
  policy.default reads it as part of the first header's name, and loses that header.
- RAW_8BIT: raw 8-bit header bytes are read as UTF-8, else Windows-1252 byte by byte; policy.default
  leaves them as surrogate escapes (or U+FFFD).
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

from buzon.inbound.mail.parse import ATTACHED_MESSAGES, ParsedMail
from buzon.sync.headers import without_bom

REPORT_PARTS = ("message/delivery-status", "message/feedback-report", "message/disposition-notification",
                "text/rfc822-headers")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SURROGATES = re.compile("[\udc80-\udcff]")


@dataclass
class Reference:
    text: str = ""
    charset_replaced: bool = False  # CHARSET: get_content() could not decode some bytes
    utf8_text: str | None = None  # the same parts read as UTF-8, where they are UTF-8
    html: bool = False
    attachments: list[tuple[str, str, int | None]] = field(default_factory=list)  # name, type, size
    sender: tuple[str, str] | None = None  # (display name, addr_spec)
    to: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    """Text compared word by word: line endings and folding whitespace are not the parse's business."""
    return re.sub(r"\s+", " ", text.replace("\0", "")).strip()  # NUL


def _content_type(part: EmailMessage) -> str:
    """CONTENT_TYPE: text/plain for a malformed value, as RFC 2045 5.2 says."""
    ctype = part.get_content_type()
    return ctype if re.fullmatch(rf"{_TOKEN}/{_TOKEN}", ctype) else "text/plain"


def _leaves(part: EmailMessage) -> list[EmailMessage]:
    ctype = _content_type(part)
    payload = part.get_payload()
    if ctype in (*ATTACHED_MESSAGES, *REPORT_PARTS) or not part.is_multipart() or not isinstance(payload, list):
        return [part]
    return [leaf for child in payload for leaf in _leaves(child)]


def _text_of(part: EmailMessage) -> tuple[str, bool, str | None]:
    """get_content()'s text, whether it replaced bytes, and the UTF-8 reading of the same bytes."""
    try:
        text = part.get_content()
    except (LookupError, ValueError, KeyError):  # an unknown charset: get_content gives up
        text = "\ufffd"
    raw = part.get_payload(decode=True) or b""
    try:
        utf8: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    return str(text), "\ufffd" in str(text) and "\ufffd" not in (utf8 or ""), utf8


def _is_body_text(part: EmailMessage, first: bool) -> bool:
    if _content_type(part) != "text/plain" or part.is_attachment():
        return False
    return first or not part.get_filename()  # BODY_JOINS: later ones only when unnamed


def _addresses(message: EmailMessage, name: str) -> list[tuple[str, str]]:
    try:
        header = message[name]
        found = [(a.display_name, a.addr_spec) for a in header.addresses] if header is not None else []
    except (IndexError, ValueError, AttributeError, TypeError):
        return []
    return [(n, a) for n, a in found if "@" in a and not a.startswith("@")]  # NO_DOMAIN


def reference(data: bytes) -> Reference:
    message = email.message_from_bytes(without_bom(data), policy=policy.default)  # BOM
    assert isinstance(message, EmailMessage)
    ref = Reference()
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    ref.html = html is not None
    leaves = _leaves(message)
    start = plain
    if leaves and leaves[0].get_content_type() != _content_type(leaves[0]) and _is_body_text(leaves[0], True):
        start = leaves[0]  # CONTENT_TYPE: the first part, which policy.default could not type, is the body
    body: list[EmailMessage] = []
    if start is not None and start in leaves:
        body = [start] + [p for p in leaves[leaves.index(start) + 1:] if p is not html and _is_body_text(p, False)
                          and not _later_alternative(message, p)]
    elif start is not None:
        body = [start]
    texts = [_text_of(p) for p in body]
    ref.text = "\n".join(t for t, _, _ in texts)
    ref.charset_replaced = any(replaced for _, replaced, _ in texts)
    if all(utf8 is not None for _, _, utf8 in texts):
        ref.utf8_text = "\n".join(utf8 or "" for _, _, utf8 in texts)
    for part in leaves:
        ctype = _content_type(part)
        if part in body or part is html or ctype in REPORT_PARTS:  # REPORTS
            continue
        if ctype in ATTACHED_MESSAGES:
            ref.attachments.append((part.get_filename() or "", ctype, None))  # REPORTS: see test_corpus
            continue
        payload = part.get_payload(decode=True)
        ref.attachments.append((part.get_filename() or "", ctype, len(payload) if isinstance(payload, bytes) else 0))
    senders = _addresses(message, "from") or _addresses(message, "sender")
    ref.sender = senders[0] if senders else None
    ref.to = [address for _, address in _addresses(message, "to")]
    return ref


def _later_alternative(root: EmailMessage, part: EmailMessage) -> bool:
    """A second text/plain inside one multipart/alternative: another rendering, not more text."""
    for container in root.walk():
        if container.get_content_type() != "multipart/alternative" or not isinstance(container.get_payload(), list):
            continue
        children = container.get_payload()
        if part in children:
            same = [c for c in children if _content_type(c) == _content_type(part) and not c.is_attachment()]
            return bool(same) and same[0] is not part
    return False


def has_raw_8bit(value: str) -> bool:
    """RAW_8BIT: policy.default left undecoded bytes (surrogate escapes or U+FFFD) in this value."""
    return bool(_SURROGATES.search(value)) or "\ufffd" in value


def _text_differs(mine: ParsedMail, ref: Reference) -> str:
    if not ref.text and ref.html:
        return ""  # HTML_ONLY: Buzón's text is made from the HTML
    if ref.charset_replaced:  # CHARSET
        if "\ufffd" in mine.text:
            return "U+FFFD in the text"
        if ref.utf8_text is None or normalise(mine.text) == normalise(ref.utf8_text):
            return ""
    return "" if normalise(mine.text) == normalise(ref.text) else f"text {normalise(mine.text)[:120]!r} != " \
        f"{normalise(ref.text)[:120]!r}"


def _attachments_differ(mine: ParsedMail, ref: Reference) -> str:
    got = [(a.filename, a.content_type, a.size) for a in mine.attachments]
    want = ref.attachments
    if len(got) != len(want):
        return f"attachments {got[:6]} != {want[:6]}"
    for (name, ctype, size), (ref_name, ref_ctype, ref_size) in zip(got, want, strict=True):
        if ref_ctype in ATTACHED_MESSAGES:  # REPORTS: its own name, else its Subject + ".eml"
            if ctype != ref_ctype or not (name == ref_name if ref_name else name.endswith(".eml")):
                return f"enclosed message {name!r} {ctype} != {ref_ctype}"
            continue
        same_name = name == ref_name or (has_raw_8bit(ref_name) and not has_raw_8bit(name))  # RAW_8BIT
        if not same_name or ctype != ref_ctype or size != ref_size:
            return f"attachment {(name, ctype, size)} != {(ref_name, ref_ctype, ref_size)}"
    return ""


def _sender_differs(mine: ParsedMail, ref: Reference, raw_from: str) -> str:
    got = (mine.from_name, mine.from_address) if mine.from_address else None
    if got == ref.sender:
        return ""
    if got is None or ref.sender is None or got[1] != ref.sender[1]:
        return f"sender {got} != {ref.sender}"
    name, ref_name = got[0], ref.sender[0]
    if has_raw_8bit(ref_name) and not has_raw_8bit(name):
        return ""  # RAW_8BIT
    if not ref_name and f"({name}" in " ".join(raw_from.split()):
        return ""  # COMMENT_NAME
    return f"sender name {name!r} != {ref_name!r}"



def differences(mine: ParsedMail, data: bytes) -> list[str]:
    """How Buzón's parse of `data` differs from policy.default's, beyond the intended differences."""
    ref = reference(data)
    checks = [_text_differs(mine, ref), _sender_differs(mine, ref, " ".join(mine.headers.get("from", [])))]
    if not mine.notes:  # a message cut at the parse limits lists only what was read
        checks.append(_attachments_differ(mine, ref))
    if mine.to != ref.to and not any(has_raw_8bit(a) for a in ref.to):  # RAW_8BIT
        checks.append(f"to {mine.to[:4]} != {ref.to[:4]}")
    return [check for check in checks if check]

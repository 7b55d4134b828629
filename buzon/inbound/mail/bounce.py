"""Recognising bounces: RFC 3464 delivery reports and the common non-standard ones.

Returns who failed and which of our messages bounced; never raises on odd input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from buzon.inbound.mail import headers as hdr
from buzon.inbound.mail.parse import ParsedMail

_ADDRESS_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Senders that only ever send bounces (Postfix, Exim, qmail, Exchange, Gmail).
_DAEMON_RE = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounce[s]?|mdaemon)@", re.I)
_DAEMON_NAME_RE = re.compile(r"mail delivery|mailer.?daemon|postmaster|ndr administrator|mail administrator", re.I)
# Subjects of non-standard bounces, one family per alternative.
_SUBJECT_RE = re.compile(
    r"undeliver|undelivered mail|delivery status notification \((failure|delay)|failure notice|"
    r"returned mail|mail delivery (failed|failure|system|subsystem)|delivery failure|could not be delivered|"
    r"non.?remis|no se pudo entregar|message not delivered|delivery has failed|mail system error|"
    r"nondeliverable|rejected:|unzustellbar|notificaci[oó]n de estado de entrega|delivery status notification|"
    r"delayed mail|delivery (report|notification)|returned to sender|mail could not|permanent error|"
    r"エラー|not be delivered|warning: could not send",
    re.I,
)
# qmail: "<user@example.com>:" at the start of a line.
_QMAIL_RE = re.compile(r"^<([^>\s]+@[^>\s]+)>:", re.M)
# Exim: "This message was created automatically... following address(es) failed:" then indented addresses.
_EXIM_RE = re.compile(r"following (?:address|recipient)\(?e?s?\)? failed:?\s*\n((?:[ \t]+\S.*\n?)+)", re.I)
# Postfix: "<user@example.com>: host ... said:" and Exchange/Office 365 "Your message to x couldn't be delivered"
_ANGLE_COLON_RE = re.compile(r"<([^>\s]+@[^>\s]+)>\s*[:(]", re.M)
_MSGID_LINE_RE = re.compile(r"^message-id:\s*(<[^>]+>)", re.I | re.M)


@dataclass
class Bounce:
    permanent: bool
    recipients: list[str] = field(default_factory=list)
    diagnostic: str = ""
    original_message_id: str = ""
    original_ref: str = ""  # X-Buzon-Ref of the returned message


def _from_dsn(mail: ParsedMail) -> Bounce | None:
    recipients, permanent, diagnostic = [], False, ""
    for group in mail.delivery_status:
        recipient = group.get("final-recipient") or group.get("original-recipient") or ""
        if not recipient:
            continue
        action = group.get("action", "").lower()
        status = group.get("status", "")
        address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
        if "@" not in address:
            continue
        if action == "failed" or status.startswith("5"):
            permanent = True
            recipients.append(address)
            diagnostic = diagnostic or group.get("diagnostic-code", "") or status
        elif action in ("delayed", "") and status.startswith("4"):
            recipients.append(address)
            diagnostic = diagnostic or group.get("diagnostic-code", "") or status
    if not recipients:
        return None
    return Bounce(permanent=permanent, recipients=list(dict.fromkeys(recipients)), diagnostic=diagnostic[:1000])


def _from_text(mail: ParsedMail, own: set[str]) -> list[str]:
    text = mail.text[:50_000]
    found: list[str] = []
    failed_header = mail.header("x-failed-recipients")
    found += _ADDRESS_RE.findall(failed_header)
    found += _QMAIL_RE.findall(text)
    for block in _EXIM_RE.findall(text):
        found += _ADDRESS_RE.findall(block)
    if not found:
        # Cut at the returned message so its own From/To are not taken for failed recipients.
        head = re.split(r"^-{2,}.*(original|returned|headers).*$|^received:", text, maxsplit=1, flags=re.I | re.M)[0]
        found += _ANGLE_COLON_RE.findall(head) or _ADDRESS_RE.findall(head)[:5]
    sender = mail.from_address.lower()
    result = []
    for address in found:
        address = address.strip().strip("<>.").lower()
        if address and address != sender and address not in own and not _DAEMON_RE.match(address):
            result.append(address)
    return list(dict.fromkeys(result))[:20]


def is_bounce_like(mail: ParsedMail) -> bool:
    if mail.delivery_status:
        return True
    content_type = " ".join(mail.headers.get("content-type", [])).lower()
    if mail.content_type == "multipart/report" and "feedback-report" not in content_type:
        return True
    if mail.header("x-failed-recipients"):
        return True
    null_sender = mail.header("return-path").replace(" ", "") in ("<>", "")  and "return-path" in mail.headers
    from_daemon = (bool(_DAEMON_RE.match(mail.from_address or "")) or not mail.from_address
                   or bool(_DAEMON_NAME_RE.search(mail.from_name)) or null_sender)
    return from_daemon and bool(_SUBJECT_RE.search(mail.subject))


def detect(mail: ParsedMail, own: set[str]) -> Bounce | None:
    """A Bounce when ``mail`` reports a failed delivery, else None."""
    if not is_bounce_like(mail):
        return None
    bounce = _from_dsn(mail) or Bounce(permanent=True, recipients=_from_text(mail, own))
    returned = mail.returned_headers
    if returned:
        bounce.original_message_id = (hdr.message_ids(hdr.first(returned, "message-id")) or [""])[0]
        bounce.original_ref = hdr.first(returned, "x-buzon-ref")
    if not bounce.original_message_id:
        match = _MSGID_LINE_RE.search(mail.text[:100_000])
        bounce.original_message_id = match.group(1) if match else ""
    if not bounce.original_ref:
        match = re.search(r"^x-buzon-ref:\s*(.+)$", mail.text[:100_000], re.I | re.M)
        bounce.original_ref = match.group(1).strip() if match else ""
    return bounce

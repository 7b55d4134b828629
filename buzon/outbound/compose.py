"""Turn a queued Message into the exact bytes to send, applying the account's options (seed 000 §3.4).

From rules: the From address is always the account's, so a customer's answer comes back to the
shared mailbox Buzón syncs and joins its conversation (and SPF/DKIM/DMARC align with the server that
sends it). Mail a person writes names them the way helpdesks do, "Ana Pérez via Soporte" (in the
language that person chose: "vía" in Spanish; the name is fixed when the mail is queued); with
`always_use_account_address` only the account is shown. Notifications, bulk mail and auto-replies
are the organisation speaking: the account alone. The person's own address appears only when the
account says answers go to them (`replies_to_agent`, as Reply-To). Replies come home: when the
account does not receive mail, Reply-To is a mailbox Buzón syncs (`reply_home`): the one the
conversation came in through, else its store's, else the default incoming account.
"""

from __future__ import annotations

import html as html_lib
import quopri
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr
from typing import Any

import nh3
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.core import public_url
from buzon.crm import roles
from buzon.mailboxes.models import EmailAccount
from buzon.messages import targets
from buzon.messages.models import Direction, Message
from buzon.outbound import addresses, tokens, verbatim
from buzon.outbound.models import OutgoingEmail
from buzon.outbound.signing import Signer

MAX_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
AUTO_SUBMITTED = {"auto_reply": "auto-replied", "notification": "auto-generated"}
# Mail to the organisation's own people (agent notifications, unreplied alerts): it leaves through the
# default outgoing account like any notification, but carries none of what is for customers
# (signature, unsubscribe link, tracking pixel, Reply-To to the shared mailbox) and is not filed in
# the account's Sent folder, which is the record of what customers were sent.
INTERNAL_KINDS = frozenset({"notification"})


@dataclass(frozen=True)
class Composed:
    envelope_from: str
    recipients: list[str]
    data: bytes  # the message, without its DKIM-Signature line (see `signature`)
    # Addresses with a non-ASCII local part: the message is UTF-8 (RFC 6532) and needs SMTPUTF8.
    utf8_addresses: tuple[str, ...] = ()
    # What makes the DKIM-Signature line (signing.prepare_signature: hashed while composing, its RSA
    # step when called, in the thread that sends); None: unsigned.
    signature: Callable[[], bytes] | None = None

    def content(self) -> bytes:
        """The bytes to send: the DKIM-Signature line (if any), then the message."""
        return self.data if self.signature is None else self.signature() + self.data


def _home_address() -> str:
    home = EmailAccount.objects.filter(default_incoming=True, incoming_enabled=True).order_by("id").first()
    return home.email_address if home else ""


def reply_home(message: Message, account: EmailAccount, default: str | None = None) -> str:
    """Where answers to mail from an account that does not receive go (its Reply-To): the receiving
    account the conversation came in through (the record's latest received mail, else the message
    answered); else a receiving account of the sending account's store, its default incoming one first;
    else the default incoming account (`default`, when the caller already read it). The site's default
    may be another store's mailbox, whose agents the answer is not for."""
    conversation = []  # the record's mail first, then the message answered
    if message.record_type_id and message.record_id:
        conversation.append(Q(record_type_id=message.record_type_id, record_id=message.record_id))
    if message.in_reply_to:
        conversation.append(Q(message_id=message.in_reply_to))
    if conversation:
        received = Message.objects.filter(direction=Direction.INCOMING, account__incoming_enabled=True)
        if message.store_id is not None:
            received = received.filter(store_id=message.store_id)
        elif message.created_by is not None:  # a store-less account: the sender's stores (one mail may be in two)
            received = roles.visible(received, message.created_by)
        for condition in conversation:
            found = received.filter(condition).order_by("-id").values_list("account__email_address", flat=True).first()
            if found:
                return found
    if account.store_id is not None:
        found = EmailAccount.objects.filter(store_id=account.store_id, incoming_enabled=True).order_by(
            "-default_incoming", "id").values_list("email_address", flat=True).first()
        if found:
            return found
    return _home_address() if default is None else default


def author_of(message: Message, kind: str) -> Any:
    """The person whose mail this is (normal mail written by someone), or None."""
    return message.created_by if kind == "normal" else None


def _author(message: Message, kind: str) -> tuple[str, str]:
    """The name and address of the person whose mail this is (normal mail written by someone)."""
    user = author_of(message, kind)
    return ((user.get_full_name() or user.get_username()) if user else ""), (user.email if user else "")


def shown_name(message: Message, account: EmailAccount, kind: str) -> str:
    """The name the From header shows: the account's, or "<person> via <account>" (module docstring)."""
    user_name, _email = _author(message, kind)
    account_name = account.display_name or ""
    if user_name and not account.always_use_account_address:
        return _("%(user)s via %(account)s") % {"user": user_name, "account": account_name} \
            if account_name else user_name
    return account_name


#: The longest sender name a Message keeps (Message.from_name).
FROM_NAME_MAX = Message._meta.get_field("from_name").max_length


def stored_name(shown: str, address: str) -> str:
    """The sender's name a Message keeps: as a mail client reads it back from the From header
    (quotes and runs of spaces undone), cut to the field's length, as `compose` stores it."""
    return parseaddr(addresses.format_human(shown, address))[0][:FROM_NAME_MAX]


def sender_headers(message: Message, account: EmailAccount, kind: str, home: str | None = None) -> dict[str, str]:
    """From / Reply-To for this message, by the rules in the module docstring."""
    user_name, user_email = _author(message, kind)
    # The name queued with the message (queue.check: in the sender's language), as it was shown in
    # the outbox since; composed here for mail queued without one.
    name = message.from_name or shown_name(message, account, kind)
    headers = {"From": addresses.format_human(name, account.email_address)}
    if user_email and account.replies_to_agent and user_email.lower() != account.email_address.lower():
        headers["Reply-To"] = addresses.format_human(user_name, user_email)  # the admin chose so
    elif not account.incoming_enabled and kind not in INTERNAL_KINDS:
        home = reply_home(message, account, home)
        if home and home.lower() != account.email_address.lower():
            # Every answer to the company must land in Buzón, not in a mailbox nobody reads.
            headers["Reply-To"] = home
    return headers


ADDRESS_HEADERS = {"from", "sender", "reply-to", "to", "cc"}
# Headers that are words for people: the email package folds (and, if it must, encodes) them.
# Every other ASCII header is ids, URLs or keywords and is written verbatim (verbatim.py).
TEXT_HEADERS = ADDRESS_HEADERS | {"subject"}


def _encoded(name: str, value: str, utf8: bool = False) -> str:
    """The header value as it goes on the wire: RFC 2047 words for non-ASCII text; addresses with their
    domains in A-labels and names in RFC 2047 words, or, in a UTF-8 message (RFC 6532), as written.

    Setting pre-encoded values with `set_raw` skips the email package's header parser, which costs
    more than the rest of composing; the policy still folds any line that is too long.
    """
    if value.isascii():
        return value
    if name.lower() in ADDRESS_HEADERS:
        return ", ".join(box.header(utf8) for box in addresses.parse_all([value]))
    return Header(value, "utf-8").encode()


def _set(mail: EmailMessage, name: str, value: str, utf8: bool = False) -> None:
    if name.lower() not in TEXT_HEADERS and verbatim.fits(name, value):
        mail.set_raw(name, verbatim.Verbatim(name, value))  # URLs and ids: folded, never encoded
        return
    if "\r" in value or "\n" in value:  # set_raw writes what it is given: it would end this header
        raise ValueError(_("The %(header)s header has a line break.") % {"header": name})
    mail.set_raw(name, _encoded(name, value, utf8))


def _envelope_address(value: str) -> str:
    """The bare address for MAIL FROM / RCPT TO, its domain in A-labels; "" for an empty entry."""
    if addresses.is_bare(value):
        return value
    if value.isascii():
        return parseaddr(value)[1]
    boxes = addresses.parse_all([value])
    return boxes[0].envelope if boxes else ""


def _utf8_addresses(headers: dict[str, str], bcc: list[str], envelope_from: str) -> tuple[str, ...]:
    """The addresses (in headers or envelope) that only SMTPUTF8 can carry, each once, in order."""
    values = [v for k, v in headers.items() if k.lower() in ADDRESS_HEADERS and not v.isascii()]
    values += [v for v in [*bcc, envelope_from] if not v.isascii()]
    return tuple(dict.fromkeys(box.address for box in addresses.parse_all(values) if box.utf8))


def _encoded_body(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, body): 7bit for short-lined ASCII, else quoted-printable.

    What `set_content()` decides, without its header parsing (a third of the cost of composing):
    quoted-printable keeps mostly-Latin text readable and lines under the 78 the policy allows.
    """
    lines = text.splitlines()
    if text.isascii() and all(len(line) <= MAX_LINE for line in lines):
        return "7bit", "\n".join(lines) + "\n"
    encoded = quopri.encodestring("\n".join(lines).encode("utf-8") + b"\n")
    return "quoted-printable", encoded.decode("ascii")


def _text_part(text: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=SMTP)
    cte, body = _encoded_body(text)
    # Verbatim values (str with a name): the generator reads the type and encoding of every part,
    # and a plain string would go through the header parser on each read.
    part.set_raw("Content-Type", verbatim.Verbatim("Content-Type", f'text/{subtype}; charset="utf-8"'))
    part.set_raw("Content-Transfer-Encoding", verbatim.Verbatim("Content-Transfer-Encoding", cte))
    part.set_payload(body)
    return part


def _set_bodies(mail: EmailMessage, text: str, html: str) -> None:
    """The text (and HTML alternative) as MIME parts, like set_content()/add_alternative()."""
    mail.set_raw("MIME-Version", "1.0")
    if not html:
        part = _text_part(text, "plain")
        for name, value in part.raw_items():  # as set: items() would parse each value again
            mail.set_raw(name, value)
        mail.set_payload(part.get_payload())
        return
    mail.set_raw("Content-Type", "multipart/alternative")  # the generator picks a boundary not in the parts
    mail.set_payload([_text_part(text, "plain"), _text_part(html, "html")])


def _text_from_html(html: str) -> str:
    return html_lib.unescape(nh3.clean(html, tags=set())).strip()


def _html_from_text(text: str) -> str:
    return "<div>" + html_lib.escape(text).replace("\n", "<br>\n") + "</div>"


def _single_recipient(message: Message) -> str:
    everyone = {parseaddr(a)[1].lower() for a in [*message.to, *message.cc, *message.bcc]}
    return everyone.pop() if len(everyone) == 1 else ""


def unsubscribe_url(message: Message, account: EmailAccount, base: str = "") -> str:
    # One recipient: the link names them. Several: the link names the message, and the page asks
    # which recipient wants out (a one-click POST cannot tell who clicked).
    address = _single_recipient(message)
    token = tokens.unsubscribe_token(account.pk, address) if address else tokens.make(
        tokens.UNSUBSCRIBE, [account.pk, "", message.pk])
    return (base or public_url.base_url()) + reverse("outbound:unsubscribe", args=[token])


def pixel_url(message: Message, base: str = "") -> str:
    return (base or public_url.base_url()) + reverse("outbound:pixel", args=[tokens.pixel_token(message.pk)])


def _bodies(outgoing: OutgoingEmail, message: Message, account: EmailAccount) -> tuple[str, str, str]:
    """(text, html, unsubscribe url) with signature, unsubscribe link and pixel applied."""
    text, html = message.text, outgoing.html_source
    if not text and html:
        text = _text_from_html(html)
    if outgoing.kind in INTERNAL_KINDS:
        return text, html, ""
    if account.add_signature and account.signature.strip():
        text = f"{text.rstrip()}\n\n-- \n{account.signature.strip()}\n"
        if html:
            html += f"<br><br>-- <br>{_html_from_text(account.signature.strip())}"
    # Queued during a request (and BUZON_BASE_URL unset): links go where that person reached Buzón.
    base = outgoing.base_url
    unsubscribe = unsubscribe_url(message, account, base) if account.unsubscribe_link else ""
    if unsubscribe:
        text += "\n\n" + _("To stop receiving these emails, open: %(url)s") % {"url": unsubscribe} + "\n"
        if html:
            link, label = html_lib.escape(unsubscribe), html_lib.escape(_("Unsubscribe"))
            html += f'<p style="font-size:small"><a href="{link}">{label}</a></p>'
    if account.track_opens:
        html = html or _html_from_text(text)
        html += f'<img src="{html_lib.escape(pixel_url(message, base))}" width="1" height="1" alt="">'
    return text, html, unsubscribe


def compose(outgoing: OutgoingEmail, signer: Signer | None = None, home: str | None = None) -> Composed:
    """Build the message, and with a signer, what signs it (`Composed.signature`, `content()`).
    Also fills in the Message's From/Reply-To as sent."""
    message = outgoing.message
    account = message.account
    assert account is not None
    mail = EmailMessage(policy=SMTP)
    headers = sender_headers(message, account, outgoing.kind, home)
    if message.to:
        headers["To"] = ", ".join(message.to)
    if message.cc:
        headers["Cc"] = ", ".join(message.cc)
    headers["Subject"] = message.subject
    headers["Date"] = format_datetime(message.created_at or timezone.now())
    headers["Message-ID"] = message.message_id
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
    if message.references:
        headers["References"] = message.references
    record = message.record if message.record_type_id else None
    has_target = record is not None and targets.target_for(record) is not None
    headers[targets.REF_HEADER] = targets.ref_header(message.pk, record if has_target else None)
    if outgoing.kind in AUTO_SUBMITTED:
        headers["Auto-Submitted"] = AUTO_SUBMITTED[outgoing.kind]
    if outgoing.kind == "bulk":
        headers["Precedence"] = "bulk"
    for name, value in (outgoing.headers or {}).items():
        if name.lower() not in {"from", "to", "cc", "bcc", "message-id", "subject", "date", "sender"}:
            headers[name] = value
    utf8 = _utf8_addresses(headers, message.bcc, account.email_address)
    for name, value in headers.items():
        _set(mail, name, value, bool(utf8))
    text, html, unsubscribe = _bodies(outgoing, message, account)
    if unsubscribe:
        _set(mail, "List-Unsubscribe", f"<{unsubscribe}>")
        _set(mail, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")  # RFC 8058
    _set_bodies(mail, text, html)
    for attachment in outgoing.attachments.all():
        maintype, _slash, subtype = attachment.mimetype.partition("/")
        mail.add_attachment(bytes(attachment.content), maintype=maintype or "application",
                            subtype=subtype or "octet-stream", filename=attachment.filename)
    data = mail.as_bytes(policy=SMTPUTF8 if utf8 else SMTP)
    from_name, from_address = parseaddr(headers["From"])
    signature = signer.signature(data, from_address) if signer is not None else None
    message.from_address, message.from_name = from_address, from_name[:FROM_NAME_MAX]
    message.reply_to = [headers["Reply-To"]] if headers.get("Reply-To") else []
    recipients = [address for address in (_envelope_address(a) for a in [*message.to, *message.cc, *message.bcc])
                  if address]
    sender = account.email_address  # a bare address (the account's field): parsed only when it is not ASCII
    return Composed(envelope_from=sender if sender.isascii() else _envelope_address(sender), recipients=recipients,
                    data=data, utf8_addresses=utf8, signature=signature)

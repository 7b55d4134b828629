"""parse: headers, bodies (HTML sanitised, text derived from HTML), attachments, charsets."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from buzon.inbound.context import Context, Unreadable
from buzon.inbound.mail.parse import ParsedMail, Unparseable, parse_bytes
from buzon.messages.models import Direction
from buzon.sync import truncate
from buzon.sync.models import RawMessage

NAME = "parse"


def read(raw: RawMessage) -> ParsedMail:
    """The raw message's mail, parsed; raises Unreadable."""
    data = bytes(raw.data or b"")
    if raw.truncated:  # the note naming what was left out is not the sender's text (sync.truncate)
        data = truncate.without_note(data)
    try:
        return parse_bytes(data)
    except Unparseable as error:
        raise Unreadable(str(error)) from error
    except (RecursionError, MemoryError) as error:
        raise Unreadable(f"the message structure is too deep or too large to read ({type(error).__name__})") \
            from error


def run(ctx: Context, mail: ParsedMail | None = None) -> None:
    """`mail`: this raw message already parsed (buzon.inbound.batch parses outside its transaction)."""
    mail = read(ctx.raw) if mail is None else mail
    ctx.parsed = mail
    message = ctx.message
    message.direction = Direction.INCOMING
    message.account = ctx.account
    message.store_id = ctx.store_id  # the receiving account's store: who may see it, what it dedupes against
    message.message_id = mail.message_id or ctx.raw.message_id[:998]
    message.in_reply_to = mail.in_reply_to
    message.references = " ".join(mail.references)
    message.subject = mail.subject
    message.from_address = mail.from_address.lower()[:320]
    message.from_name = mail.from_name
    message.to, message.cc, message.reply_to = mail.to, mail.cc, mail.reply_to
    message.date = mail.date or ctx.raw.date
    message.text, message.html = mail.text, mail.html
    ctx.decide(
        NAME, "parsed", gettext_noop("Read %(attachments)s attachment(s); text %(text_chars)s characters."),
        attachments=len(mail.attachments), text_chars=len(mail.text), notes=mail.notes or None,
    )

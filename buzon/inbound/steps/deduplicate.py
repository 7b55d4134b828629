"""deduplicate: the same message seen twice (two folders, two accounts, a resync) is one Message.

The key is the Message-ID plus a hash of what the reader sees (sender, recipients, date, subject,
bodies, attachment sizes): the Received and delivery headers differ between two copies of one mail,
so the raw bytes' hash cannot be the key. A message without Message-ID is keyed by content alone.

Within a store. One mail addressed to two stores (To: store A, Cc: store B) is one message for
each: store B's copy is never "already stored" as store A's message, which B's agents cannot see.
So the key is looked up among the messages of the receiving account's store (store-less accounts
among store-less messages, so an installation without stores dedupes across its accounts as
before), and the database holds the key unique per store (messages_app.Message). Likewise a copy
of our own sent mail (its X-Buzon-Ref names what Buzón sent) is recognised only when the message it
names was sent from the same store, and only when the ref is signed (or, written before refs were,
read from the sending account's Sent folder: own_sent_copy): an X-Buzon-Ref is text anyone can
write, and must not make mail disappear or change what Buzón sent.
"""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from buzon.crm.records import store_filter
from buzon.inbound.context import Context, Duplicate
from buzon.messages import targets
from buzon.messages.models import Direction, Message

NAME = "deduplicate"


def dedupe_key(ctx: Context) -> str:
    mail = ctx.mail
    digest = hashlib.sha256()
    for value in (mail.message_id, mail.from_address.lower(), ",".join(sorted(mail.to)), mail.header("date"),
                  mail.subject, mail.text, mail.html):
        digest.update(value.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    for attachment in mail.attachments:
        digest.update(f"{attachment.filename}:{attachment.content_type}:{attachment.size}\x00".encode())
    return digest.hexdigest()


#: Folder names of an account's Sent folder (outbound.sent_folder.USUAL_NAMES, which picks where
#: Buzón appends its copies; tests/inbound/test_signed_refs.py keeps the two lists equal).
SENT_FOLDER_NAMES = frozenset(name.lower() for name in (
    "Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "INBOX/Sent", "Enviados",
    "Elementos enviados", "[Gmail]/Sent Mail"))


def ref(ctx: Context) -> targets.BuzonRef | None:
    return targets.parse_ref_header(ctx.mail.header(targets.REF_HEADER.lower()))


def sent_ref(ctx: Context) -> int | None:
    """The id of the outgoing message an X-Buzon-Ref header names, if any (believed or not: the
    batch looks every one up at once, own_sent_copy decides)."""
    found = ref(ctx)
    return found.message_pk if found is not None else None


def in_sent_folder(ctx: Context) -> bool:
    """Whether the raw message was read from its account's Sent folder (by name; POP3 has none)."""
    return ctx.raw.folder.strip().lower() in SENT_FOLDER_NAMES


def outgoing(ctx: Context, pk: int) -> Message | None:
    """The outgoing message ``pk`` sent from the receiving account's store (looked up by the batch
    already, or now); None for another store's."""
    if ctx.known is not None and pk in ctx.known.outgoing:
        sent = ctx.known.outgoing[pk]
    else:
        sent = Message.objects.filter(pk=pk, direction=Direction.OUTGOING).first()
    return sent if sent is not None and sent.store_id == ctx.store_id else None


def own_sent_copy(ctx: Context) -> None:
    """Our own sent mail coming back (the Sent folder is synced too), matched by X-Buzon-Ref: a
    Duplicate of the message Buzón sent.

    Believed when the ref carries its message's tag (targets.ref_header; only Buzón can write it).
    A ref without one (mail sent before tags) is believed only for a copy read from the Sent folder
    of the very account that sent the message: only that mailbox's owner and Buzón write there,
    whereas anyone can send mail carrying any header to the inbox. Otherwise the mail is imported
    as any other and the sent message is left as it is."""
    found = ref(ctx)
    if found is None or found.message_pk is None:
        return
    sent = outgoing(ctx, found.message_pk)
    if sent is None:
        return
    if not found.signed and not (in_sent_folder(ctx) and sent.account_id == ctx.raw.account_id):
        return
    # The provider may have replaced our Message-ID; remember theirs so replies still thread.
    mail_id = ctx.mail.message_id
    if mail_id and mail_id != sent.message_id and sent.provider_message_id != mail_id:
        sent.provider_message_id = mail_id
        sent.save(update_fields=["provider_message_id", "updated_at"])
    raise Duplicate(f"this is the copy of message {sent.pk} that Buzón sent", sent.pk)


def already_stored(existing: int) -> Duplicate:
    return Duplicate(f"the same message is already stored as message {existing}", existing)


def same_key(ctx: Context) -> QuerySet[Message]:
    """The stored messages with this message's key in its store (what the unique constraint covers)."""
    return Message.objects.filter(dedupe_key=ctx.message.dedupe_key, **store_filter(ctx.store_id)).order_by()


def run(ctx: Context) -> None:
    own_sent_copy(ctx)
    ctx.message.dedupe_key = dedupe_key(ctx)
    same = same_key(ctx)
    if ctx.message.pk is not None:
        same = same.exclude(pk=ctx.message.pk)
    existing = next(iter(same.values_list("pk", flat=True)[:1]), None)
    if existing is not None:
        raise already_stored(existing)
    decide_new(ctx)


def decide_new(ctx: Context) -> None:
    ctx.decide(NAME, "new", gettext_noop("No earlier copy of this message."))

"""classify: bounce (and what it bounced), auto-reply, mailing list / bulk, or our own address (loop).

The message of ours a bounce returns is looked for among the mail sent from the receiving account's
store only: a bounce (or anything dressed as one) never marks, or joins, another store's mail.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_noop

from buzon.crm.records import store_filter
from buzon.inbound.context import Context
from buzon.inbound.mail import automatic, bounce
from buzon.inbound.steps import deduplicate
from buzon.messages import targets
from buzon.messages.models import Classification, Direction, Message

NAME = "classify"


def bounced_ref(found: bounce.Bounce) -> int | None:
    """The id of our message that bounced, from the returned X-Buzon-Ref header when it is signed
    (an unsigned one is anyone's text; the returned Message-ID is looked up instead)."""
    ref = targets.parse_ref_header(found.original_ref)
    return ref.message_pk if ref is not None and ref.signed else None


def sent_with_message_id(mid: str, store_id: int | None) -> Message | None:
    """Our message sent from ``store_id`` with this Message-ID (ours or the one a provider gave it),
    the newest first."""
    return Message.objects.filter(direction=Direction.OUTGOING, **store_filter(store_id)).filter(
        Q(message_id=mid) | Q(provider_message_id=mid)
    ).first()


def _bounced_message(ctx: Context, found: bounce.Bounce) -> Message | None:
    pk = bounced_ref(found)
    if pk is not None:
        sent = deduplicate.outgoing(ctx, pk)
        if sent is not None:
            return sent
    mid = found.original_message_id
    if not mid:
        return None
    if ctx.known is not None and (ctx.store_id, mid) in ctx.known.outgoing_by_message_id:
        return ctx.known.outgoing_by_message_id[(ctx.store_id, mid)]
    return sent_with_message_id(mid, ctx.store_id)


def _handle_bounce(ctx: Context, found: bounce.Bounce) -> None:
    """Decide; the bounced step marks the recipients and our message once the bounce is stored."""
    ctx.message.classification = Classification.BOUNCE
    sent = _bounced_message(ctx, found)
    ctx.bounce, ctx.bounced = found, sent
    if sent is not None:
        ctx.parent = sent
    ctx.decide(
        NAME, "bounce", gettext_noop("Delivery failed for %(recipients)s (%(kind)s)."),
        recipients=", ".join(found.recipients) or "?", kind="permanent" if found.permanent else "temporary",
        diagnostic=found.diagnostic or None, bounced_message=sent.pk if sent else None,
    )


def run(ctx: Context) -> None:
    mail = ctx.mail
    known = ctx.known  # the batch runner detected it already
    if known is not None and ctx.raw.pk in known.bounces:
        found = known.bounces[ctx.raw.pk]
    else:
        found = bounce.detect(mail, ctx.own_addresses)
    if found is not None:
        _handle_bounce(ctx, found)
        return
    reason = automatic.auto_reply_reason(mail)
    if reason:
        ctx.message.classification = Classification.AUTO_REPLY
        ctx.decide(NAME, "auto_reply", gettext_noop("Automatic reply (%(why)s)."), why=reason)
        return
    reason = automatic.list_reason(mail) or automatic.bulk_reason(mail)
    if reason:
        ctx.message.classification = Classification.LIST
        ctx.decide(NAME, "list", gettext_noop("Mailing list or bulk mail (%(why)s)."), why=reason)
        return
    if mail.from_address.lower() in ctx.own_addresses:
        ctx.message.classification = Classification.LOOP
        ctx.decide(NAME, "loop", gettext_noop("Sent from one of our own addresses (%(address)s)."),
                   address=mail.from_address.lower())
        return
    ctx.message.classification = Classification.NORMAL
    ctx.decide(NAME, "normal", gettext_noop("Written by a person."))

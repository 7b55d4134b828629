"""autoreply: answer the first message of a new conversation with the account's auto-reply text.

RFC 3834: never to auto-submitted, bulk, list or bounce mail, nor to no-reply senders, and at most
once per sender per day (AutoReplySent's unique key).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from buzon.inbound import outbox_glue
from buzon.inbound.context import Context
from buzon.inbound.mail import automatic
from buzon.inbound.models import AutoReplySent

NAME = "autoreply"


def _why_not(ctx: Context) -> str:
    if not ctx.new_conversation:
        return gettext_noop("Not the first message of a conversation.")
    if ctx.automated:
        return gettext_noop("Automatic, bulk, list or bounce mail is never answered automatically.")
    if automatic.is_no_reply_address(ctx.message.from_address) or not ctx.message.from_address:
        return gettext_noop("The sender does not accept replies.")
    return ""


def run(ctx: Context) -> None:
    account = ctx.account
    if account is None or not account.auto_reply_enabled or not account.auto_reply_message.strip():
        return
    why_not = _why_not(ctx)
    if why_not:
        ctx.decide(NAME, "not_sent", why_not)
        return
    address = (ctx.message.reply_to or [ctx.message.from_address])[0].lower()
    try:
        with transaction.atomic():
            log = AutoReplySent.objects.create(account=account, address=address[:320], day=timezone.localdate())
    except IntegrityError:
        ctx.decide(NAME, "not_sent", gettext_noop("%(address)s already had an auto-reply today."), address=address)
        return
    subject = ctx.message.subject
    queued, why_not = outbox_glue.queue(
        to=[address], subject=subject if subject.lower().startswith("re:") else f"Re: {subject}".strip(),
        text=account.auto_reply_message, kind="auto_reply", account=account, in_reply_to=ctx.message,
        record=ctx.record,
    )
    if queued is None:
        log.delete()  # nothing went out: a later message from this sender may still get one today
        ctx.decide(NAME, "not_sent", gettext_noop("No auto-reply queued: %(why)s"), why=why_not)
        return
    log.message_id = queued.pk
    log.save(update_fields=["message_id"])
    ctx.decide(NAME, "sent", gettext_noop("Auto-reply queued to %(address)s."), address=address)

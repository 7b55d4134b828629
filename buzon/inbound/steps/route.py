"""route: a new conversation creates one record of the account's ``append_to`` type; a reply
joins its record, and a customer's reply reopens a replied or closed ticket (buzon.messages.replies)."""

from __future__ import annotations

from django.db.models import Model
from django.utils.translation import gettext_noop

from buzon.inbound.context import Context
from buzon.messages import replies, targets

NAME = "route"


def _link(ctx: Context) -> None:
    record = ctx.record
    if record is None:
        return
    ctx.message.record = record
    token = targets.record_token(record) if targets.target_for(record) else str(record.pk)
    ctx.decide(NAME, "linked", gettext_noop("Added to %(record)s."), record=token)
    if not ctx.automated and replies.after_customer_mail(record):
        ctx.decide(NAME, "reopened", gettext_noop("The customer answered, so %(record)s is open again."), record=token)


def run(ctx: Context) -> None:
    if ctx.message.record_id and ctx.record is None:
        ctx.record = ctx.message.record  # reprocessing: keep the record made the first time
    if ctx.record is not None:
        _link(ctx)
        return
    append_to = ctx.account.append_to if ctx.account is not None else ""
    if not append_to:
        ctx.decide(NAME, "none", gettext_noop("The account creates no records."))
        return
    if not ctx.new_conversation or ctx.automated:
        ctx.decide(NAME, "none", gettext_noop("Automatic mail or not a new conversation: no record created."))
        return
    target = targets.get_target(append_to)
    if target is None or target.create is None:
        ctx.decide(NAME, "none", gettext_noop("The account appends to %(key)s, which is not a known record type."),
                   key=append_to)
        return
    created(ctx, target.create(conversation(ctx)))


def conversation(ctx: Context) -> targets.NewConversation:
    return targets.NewConversation(
        subject=targets.strip_record_tokens(ctx.message.subject), from_address=ctx.message.from_address,
        from_name=ctx.message.from_name, customer=ctx.customer, account=ctx.account,
    )


def created(ctx: Context, record: Model) -> None:
    """Link the message to the record made for its conversation (also used by the batch runner)."""
    ctx.record = record
    ctx.message.record = record
    ctx.decide(NAME, "created", gettext_noop("New %(record)s created for this conversation."),
               record=targets.record_token(record))

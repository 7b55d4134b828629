"""bounced: a bounce marks its failed recipients undeliverable and, when permanent, our sent
message bounced (classify found both). Runs once the bounce is stored, so the undeliverable address
links to it, and for a bounce that is not imported (skipped) too: the addresses failed all the same.
Addresses are marked in the store of the account that received the bounce only
(messages_app.UndeliverableAddress): another store's customers and sending are left alone."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from buzon.crm.models import Contact, CustomerEmail
from buzon.crm.records import store_filter
from buzon.inbound.context import Context
from buzon.messages.models import MessageStatus, UndeliverableAddress

NAME = "bounced"


def run(ctx: Context) -> None:
    found = ctx.bounce
    if found is None or not found.permanent:
        return
    reason = found.diagnostic or "bounced"
    stored = ctx.message if ctx.message.pk else None
    for address in found.recipients:
        # Within the receiving account's store only: a bounce is text anyone can send to one store.
        UndeliverableAddress.objects.update_or_create(
            address=address[:320], **store_filter(ctx.store_id), defaults={
                "reason": reason[:1000], "bounce": stored, "store_id": ctx.store_id})
        CustomerEmail.objects.filter(address=address, **store_filter(ctx.store_id)).update(
            undeliverable=True, undeliverable_reason=reason[:1000])
        Contact.objects.filter(email__iexact=address, **store_filter(ctx.store_id, "customer__store")).update(
            undeliverable=True)
    sent = ctx.bounced
    if sent is not None and sent.status != MessageStatus.BOUNCED:
        sent.status = MessageStatus.BOUNCED
        sent.status_reason = found.diagnostic[:1000] or ", ".join(found.recipients)
        sent.save(update_fields=["status", "status_reason", "updated_at"])
    if found.recipients:
        ctx.decide(NAME, "undeliverable", gettext_noop("%(recipients)s marked as undeliverable."),
                   recipients=", ".join(found.recipients), bounced_message=sent.pk if sent else None)

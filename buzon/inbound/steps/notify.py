"""notify: tell the customer's agent (seed 002): "customer assigned to you" and "new email", in the
app (the bell) and by email through the default outgoing account, once each."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from buzon.core import public_url
from buzon.crm.models import Notification
from buzon.crm.notifications import notify
from buzon.inbound import outbox_glue
from buzon.inbound.context import Context

NAME = "notify"


def _email(ctx: Context, user: object, subject: str, text: str) -> None:
    address = getattr(user, "email", "")
    if not address:
        return
    _, why_not = outbox_glue.queue(to=[address], subject=subject, text=text, kind="notification")
    if why_not:
        ctx.decide(NAME, "email_not_sent", gettext_noop("Notification email not sent: %(why)s"), why=why_not)


def run(ctx: Context) -> None:
    account, customer, message = ctx.account, ctx.customer, ctx.message
    if account is None or not account.notify_agent or customer is None or customer.agent is None:
        return
    user = customer.agent.user
    path = f"/inbox/{message.pk}/"  # the bell's link works at whatever address the page is open at
    url = public_url.absolute(path)  # mail needs the whole address
    who = message.from_name or message.from_address
    sent = []
    if ctx.agent_assigned:
        text = _("Customer %(customer)s has been assigned to you.") % {"customer": who}
        if notify(user, Notification.Kind.CUSTOMER_ASSIGNED, f"customer:{customer.pk}", text, path):
            _email(ctx, user, text, text + "\n\n" + url)
            sent.append(Notification.Kind.CUSTOMER_ASSIGNED)
    text = _("New email from %(sender)s: %(subject)s") % {"sender": who, "subject": message.subject[:200]}
    if notify(user, Notification.Kind.NEW_EMAIL, f"message:{message.pk}", text, path):
        _email(ctx, user, text, f"{text}\n\n{message.text[:2000]}\n\n{url}")
        sent.append(Notification.Kind.NEW_EMAIL)
    ctx.decide(NAME, "notified" if sent else "already", gettext_noop("Agent %(agent)s notified."),
               agent=customer.agent.pk, kinds=sent or None)

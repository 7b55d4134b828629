"""notify: tell the customer's agent (seed 002), in the app (the bell) and by email, once each, in the
agent's own language (buzon.inbound.notices). The mail quotes the store's mail, so it is that store's:
it leaves through the store's own outgoing account (else the site's default) and its Message row is
the store's, never the sending account's other store's (buzon.messages.outbox, ``about_store``):

- "customer assigned to you" whenever the assignment just gave them the customer, always: an agent
  must know a customer became theirs;
- "new email" only when the account's "Notify agent" is on (seed 002: the option is the notice of
  an incoming mail to the customer's agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import translation
from django.utils.translation import gettext_noop

from buzon.core import public_url
from buzon.core.language import language_of
from buzon.crm.models import Notification
from buzon.inbound import notices, outbox_glue
from buzon.inbound.context import Context

NAME = "notify"


def _email(ctx: Context, user: Any, kind: str, params: Mapping[str, Any], url: str, body: str = "") -> None:
    address = getattr(user, "email", "")
    if not address:
        return
    with translation.override(language_of(user)):
        text = notices.render(kind, params)
        content = "\n\n".join(part for part in (text, body, url) if part)
    # The notice carries the store's mail: it is that store's (and leaves through its account if any).
    _, why_not = outbox_glue.queue(to=[address], subject=text[:200], text=content, kind="notification",
                                   about_store=ctx.message.store_id)
    if why_not:
        ctx.decide(NAME, "email_not_sent", gettext_noop("Notification email not sent: %(why)s"), why=why_not)


def run(ctx: Context) -> None:
    account, customer, message = ctx.account, ctx.customer, ctx.message
    if customer is None or customer.agent is None:
        return
    if customer.store_id != (account.store_id if account is not None else None):
        return  # stores are walls: another store's agent never hears of this store's mail
    notify_mail = account is not None and account.notify_agent
    if not ctx.agent_assigned and not notify_mail:
        return
    user = customer.agent.user
    path = f"/inbox/{message.pk}/"  # the bell's link works at whatever address the page is open at
    url = public_url.absolute(path)  # mail needs the whole address
    who = message.from_name or message.from_address
    sent = []
    if ctx.agent_assigned:
        params = {"customer": who}
        if notices.send(user, Notification.Kind.CUSTOMER_ASSIGNED, f"customer:{customer.pk}", params, path):
            _email(ctx, user, Notification.Kind.CUSTOMER_ASSIGNED, params, url)
            sent.append(Notification.Kind.CUSTOMER_ASSIGNED)
    if notify_mail:
        params = {"sender": who, "subject": message.subject[:200]}
        if notices.send(user, Notification.Kind.NEW_EMAIL, f"message:{message.pk}", params, path):
            _email(ctx, user, Notification.Kind.NEW_EMAIL, params, url, message.text[:2000])
            sent.append(Notification.Kind.NEW_EMAIL)
    ctx.decide(NAME, "notified" if sent else "already", gettext_noop("Agent %(agent)s notified."),
               agent=customer.agent.pk, kinds=sent or None)

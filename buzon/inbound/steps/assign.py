"""assign: a customer without an agent gets one from the account's agent group (seed 002)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from buzon.crm.assignment import assign_agent
from buzon.crm.models import Ticket
from buzon.inbound.context import Context
from buzon.messages import placement

NAME = "assign"


def same_store(ctx: Context) -> bool:
    """Whether the customer is a card of the receiving account's store. Customers are looked up per
    store, so it always is; checked anyway, because their agent gets the mail and may answer it
    through this account: one store's mail never goes to another store's agent."""
    return ctx.customer is not None and ctx.customer.store_id == ctx.store_id


def run(ctx: Context) -> None:
    customer = ctx.customer
    if customer is None:
        return
    if not same_store(ctx):
        ctx.decide(NAME, "none", gettext_noop("The customer belongs to another store: no agent is given the mail."))
        return
    group = ctx.account.agent_group if ctx.account is not None else None
    if customer.agent_id is None and group is not None:
        agent = assign_agent(customer, group)
        if agent is not None:
            ctx.agent_assigned = True
            ctx.decide(NAME, "assigned", gettext_noop("Customer assigned to agent %(agent)s of group %(group)s."),
                       agent=agent.pk, group=group.name)
    if customer.agent_id is None:
        if group is not None:
            ctx.decide(NAME, "none", gettext_noop("The customer has no agent."))
        return
    message = ctx.message
    if message.agent_id != customer.agent_id:
        message.agent_id = customer.agent_id
        message.save(update_fields=["agent", "updated_at"])
        placement.adopt_agent(message)  # the bulk path stored the agent with the message already
    if isinstance(ctx.record, Ticket) and ctx.record.agent_id is None:
        ctx.record.agent_id = customer.agent_id
        ctx.record.save(update_fields=["agent", "updated_at"])

"""Spreading new customers over the agents of a group (seed 002).

First evenly among signed-in agents whose status is ``free``; when there is none, evenly among the
others: at lunch, busy, on break, offline, or not signed in (``Agent.online``, buzon.crm.presence:
a "free" agent who signed out is not free to answer).
"Evenly" counts the customers this group already gave
each agent; ties go to the lowest agent id, so the choice is deterministic. Only active agents who work in
the customer's store are chosen: stores are walls, and a group is not (it may hold any agent).

Race-free with many workers: the group's row is locked (SELECT ... FOR UPDATE) for the rest of the
caller's transaction, so two workers assigning into one group take turns and each sees the other's
count. On SQLite the write transaction itself serialises them.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from buzon.crm.models import Agent, AgentGroup, Customer

FALLBACK_STATUSES = (Agent.Status.LUNCH, Agent.Status.BUSY, Agent.Status.BREAK, Agent.Status.OFFLINE)


def choose_agent(group: AgentGroup, store_id: int | None = None) -> Agent | None:
    """The next agent of ``group`` for a new customer of ``store_id``: only agents who work in that
    store (a group given to a store's account may hold other stores' agents; stores are walls).
    A store-less customer may get any agent of the group, as before stores."""
    agents = group.agents.filter(user__is_active=True)  # a deactivated person gets no one
    if store_id is not None:
        agents = agents.filter(stores=store_id)
    agents = agents.annotate(load=Count("customers", filter=Q(customers__agent_group=group)))
    free = agents.filter(status=Agent.Status.FREE, online=True)
    pool = free if free.exists() else agents.filter(Q(status__in=FALLBACK_STATUSES) | Q(online=False))
    return pool.order_by("load", "id").first()


def assign_agent(customer: Customer, group: AgentGroup) -> Agent | None:
    """Give ``customer`` an agent of ``group`` unless it has one. Returns the agent newly assigned."""
    with transaction.atomic():
        AgentGroup.objects.select_for_update().filter(pk=group.pk).first()
        current = Customer.objects.select_for_update().filter(pk=customer.pk).values_list("agent_id", flat=True).first()
        if current is not None:
            customer.refresh_from_db(fields=["agent", "agent_group", "assigned_at"])
            return None
        agent = choose_agent(group, customer.store_id)
        if agent is None:
            return None
        customer.agent, customer.agent_group, customer.assigned_at = agent, group, timezone.now()
        customer.save(update_fields=["agent", "agent_group", "assigned_at"])
        return agent

"""Assigning new customers to agents: evenly among free agents, else among the others; race-free."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db import connection

from buzon.crm.assignment import assign_agent
from buzon.crm.models import Agent, AgentGroup, Customer
from buzon.inbound import pipeline
from buzon.messages.models import Message
from tests.inbound.helpers import mail, store_raw, support_account


def _group(statuses: list[str]) -> tuple[AgentGroup, list[Agent]]:
    group = AgentGroup.objects.create(name="Ventas")
    agents = []
    for index, status in enumerate(statuses):
        user = User.objects.create_user(f"agent{index}", email=f"agent{index}@shop.test")
        agent = Agent.objects.create(user=user, status=status, online=status != Agent.Status.OFFLINE)
        agent.groups.add(group)
        agents.append(agent)
    return group, agents


@pytest.mark.django_db
def test_free_agents_first_then_the_others_evenly():
    group, agents = _group([Agent.Status.FREE, Agent.Status.BUSY, Agent.Status.FREE])
    chosen = [assign_agent(Customer.objects.create(), group) for _ in range(4)]
    assert [a.pk for a in chosen] == [agents[0].pk, agents[2].pk, agents[0].pk, agents[2].pk]
    Agent.objects.filter(status=Agent.Status.FREE).update(status=Agent.Status.LUNCH)
    later = [assign_agent(Customer.objects.create(), group) for _ in range(3)]
    assert later[0].pk == agents[1].pk  # the busy one had none yet
    customer = Customer.objects.first()
    assert assign_agent(customer, group) is None  # already assigned: kept


@pytest.mark.django_db
def test_pipeline_assigns_and_notifies_the_agent_once():
    group, agents = _group([Agent.Status.FREE])
    account = support_account(agent_group=group, notify_agent=True)
    raw = store_raw(mail(), account)
    pipeline.run_pipeline(raw.pk)
    pipeline.run_pipeline(raw.pk)  # reprocessing notifies nobody again
    message = Message.objects.get()
    assert message.agent == agents[0] and message.customer.agent == agents[0]
    kinds = sorted(agents[0].user.notifications.values_list("kind", flat=True))
    assert kinds == ["customer_assigned", "new_email"]
    pipeline.run_pipeline(store_raw(mail(subject="otra"), account).pk)
    assert agents[0].user.notifications.filter(kind="customer_assigned").count() == 1
    assert agents[0].user.notifications.filter(kind="new_email").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_assignment_stays_even_under_four_concurrent_workers(postgres_url):
    assert connection.vendor == "postgresql"
    group, agents = _group([Agent.Status.FREE] * 5 + [Agent.Status.BUSY])
    account = support_account(agent_group=group)
    raws = [store_raw(mail(sender=f"c{i}@customer.test"), account).pk for i in range(60)]
    errors: list[BaseException] = []

    def worker(chunk: list[int]) -> None:
        try:
            for raw_id in chunk:
                assert pipeline.run_pipeline(raw_id) == "processed"
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(raws[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    counts = Counter(Customer.objects.values_list("agent_id", flat=True))
    free = [counts.get(a.pk, 0) for a in agents[:5]]
    assert sum(free) == 60 and counts.get(agents[5].pk, 0) == 0
    assert max(free) - min(free) <= 1, free

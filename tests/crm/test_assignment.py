"""Assigning new customers to agents: evenly among free agents, else among the others; race-free."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from queue import Empty, Queue

import pytest
from django.contrib.auth.models import User
from django.db import connection

from buzon.crm.assignment import assign_agent
from buzon.crm.models import Agent, AgentGroup, Customer, CustomerEmail
from buzon.inbound import batch, pipeline
from buzon.inbound.tasks import process_raw_messages
from buzon.messages.models import Message
from buzon.sync.models import RawMessage
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


def _run_concurrently(jobs: list[list[int]], run: Callable[[list[int]], object], workers: int = 4) -> None:
    """``workers`` threads (each its own database connection) take the jobs from one queue, as task
    workers take tasks."""
    queue: Queue[list[int]] = Queue()
    for job in jobs:
        queue.put(job)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                try:
                    job = queue.get_nowait()
                except Empty:
                    return
                run(job)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def _one_by_one(ids: list[int]) -> None:
    for raw_id in ids:
        assert pipeline.run_pipeline(raw_id) == "processed"


def _as_tasks(ids: list[int]) -> None:
    """What a worker runs for one process_raw_messages task (the sync engine's chunk)."""
    process_raw_messages.call(ids)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run", [_one_by_one, _as_tasks], ids=["one-by-one", "batch-tasks"])
def test_assignment_stays_even_under_four_concurrent_workers(postgres_url, run, caplog):
    assert connection.vendor == "postgresql"
    group, agents = _group([Agent.Status.FREE] * 5 + [Agent.Status.BUSY])
    account = support_account(agent_group=group)
    # 90 senders; a third write twice (the second a reply), so chunks race on the same new senders too.
    data = [mail(sender=f"c{i}@customer.test", message_id=f"<m{i}@customer.test>") for i in range(90)]
    data += [mail(sender=f"c{i}@customer.test", subject="Re: Hola", headers={"In-Reply-To": f"<m{i}@customer.test>"})
             for i in range(0, 90, 3)]
    raws = [store_raw(d, account).pk for d in data]
    jobs = [raws[i::8] for i in range(8)] if run is _one_by_one else [raws[i:i + 12] for i in range(0, len(raws), 12)]
    bulk_stores = batch.STAGE_SECONDS.get("store", 0.0)
    with caplog.at_level(logging.ERROR, logger="buzon.inbound.batch"):
        _run_concurrently(jobs, run)
    if run is _as_tasks:  # the bulk path ran (a chunk that lost a race may have gone one by one)
        fallbacks = sum("bulk processing failed" in r.getMessage() for r in caplog.records)
        assert batch.STAGE_SECONDS.get("store", 0.0) > bulk_stores and fallbacks < len(jobs) / 2, fallbacks
    assert not RawMessage.objects.exclude(status=RawMessage.Status.PROCESSED).exists()
    assert Message.objects.count() == len(raws) and Customer.objects.count() == 90
    assert CustomerEmail.objects.count() == 90
    assert not Message.objects.filter(agent__isnull=True).exists()
    counts = Counter(Customer.objects.values_list("agent_id", flat=True))
    free = [counts.get(a.pk, 0) for a in agents[:5]]
    assert sum(free) == 90 and counts.get(agents[5].pk, 0) == 0
    assert max(free) - min(free) <= 1, free

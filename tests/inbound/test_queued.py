"""A pipeline task takes up the other stored messages waiting, and never does work twice.

Under load most tasks carry a single IDLE arrival; process_raw_messages fills its batch with the
oldest stored messages no one holds, and a task whose messages were taken up by another (or are
being processed by one) has nothing left to do.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction

from buzon.crm.models import Customer, CustomerEmail
from buzon.inbound.batch import run_queued
from buzon.inbound.tasks import process_raw_messages
from buzon.messages.models import Message
from buzon.sync.models import RawMessage
from tests.crm.test_assignment import _run_concurrently
from tests.inbound.helpers import mail, store_raw, support_account


@pytest.mark.django_db
def test_a_task_takes_up_waiting_messages_and_then_has_nothing_left_to_do(django_assert_max_num_queries):
    account = support_account()
    ids = [store_raw(mail(sender=f"c{i}@customer.test", message_id=f"<q{i}@x>"), account).pk for i in range(5)]
    assert process_raw_messages.call([ids[-1]]) == {"processed": 5}  # its own, and the four waiting
    assert not RawMessage.objects.exclude(status=RawMessage.Status.PROCESSED).exists()
    assert Message.objects.count() == 5
    for raw_id in ids[:-1]:  # the other tasks: a look, nothing else
        with django_assert_max_num_queries(4):  # their ids; what waits (in a savepoint, in tests)
            assert process_raw_messages.call([raw_id]) == {}
    assert Message.objects.count() == 5


@pytest.mark.django_db
def test_a_task_does_not_take_up_more_than_a_batch(settings):
    from buzon.inbound import batch

    account = support_account()
    ids = [store_raw(mail(sender=f"c{i}@customer.test", message_id=f"<b{i}@x>"), account).pk for i in range(7)]
    settings.INBOUND_TASK_BATCH = 3
    original = batch.CHUNK
    batch.CHUNK = 3
    try:
        assert run_queued([ids[5]]) == Counter(processed=3)
    finally:
        batch.CHUNK = original
    done = set(RawMessage.objects.filter(status=RawMessage.Status.PROCESSED).values_list("id", flat=True))
    assert done == {ids[0], ids[1], ids[5]}  # its own first, then the oldest waiting


@pytest.mark.django_db
def test_skipped_mail_named_by_a_task_is_imported_once_its_sender_is_a_customer():
    account = support_account(create_customer_if_not_found=False)
    raw = store_raw(mail(sender="nuevo@customer.test", message_id="<skip@x>"), account)
    assert run_queued([raw.pk]) == Counter(skipped=1)
    assert run_queued([]) == Counter()  # skipped mail is not taken up by others' tasks
    customer = Customer.objects.create(name="Nuevo")
    CustomerEmail.objects.create(customer=customer, address="nuevo@customer.test")
    assert run_queued([raw.pk]) == Counter(processed=1)
    assert Message.objects.get(raw=raw).customer == customer


@contextlib.contextmanager
def _another_transaction(work: Callable[[], object]) -> Iterator[threading.Event]:
    """`work` done in another worker's transaction (a thread of its own), held open until the
    event given is set, or the block ends."""
    done, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                work()
                done.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert done.wait(10)
        yield release
    finally:
        release.set()
        thread.join()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_message_another_worker_holds_is_skipped_not_waited_for(postgres_url):
    assert connection.vendor == "postgresql"
    account = support_account()
    held, free = (store_raw(mail(sender=f"h{i}@customer.test", message_id=f"<h{i}@x>"), account).pk
                  for i in range(2))
    with _another_transaction(lambda: RawMessage.objects.select_for_update().get(pk=held)):
        started = time.monotonic()
        assert run_queued([held, free]) == Counter(processed=1)
        assert time.monotonic() - started < 5  # did not wait for the other transaction
        assert RawMessage.objects.get(pk=held).status == RawMessage.Status.STORED
    assert run_queued([]) == Counter(processed=1)  # released: the next task takes it up
    assert Message.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_single_message_tasks_process_every_message_exactly_once(postgres_url):
    assert connection.vendor == "postgresql"
    account = support_account()
    ids = [store_raw(mail(sender=f"s{i % 40}@customer.test", message_id=f"<s{i}@x>"), account).pk
           for i in range(120)]
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def task(job: list[int]) -> None:
        result = process_raw_messages.call(job)
        with lock:
            outcomes.update(result)

    _run_concurrently([[raw_id] for raw_id in ids], task)
    assert outcomes == Counter(processed=120)  # each message processed once, by one of the tasks
    assert Message.objects.count() == 120 and Customer.objects.count() == 40
    assert not RawMessage.objects.exclude(status=RawMessage.Status.PROCESSED).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_new_sender_another_worker_creates_meanwhile_does_not_send_the_batch_one_by_one(postgres_url, caplog):
    """Two workers' batches bring the same new sender at once (a first download of two mailboxes
    a customer wrote to): the batch that loses the race on the sender's address links its messages
    to the winner's customer, as one by one does, instead of rolling back its whole chunk and
    processing every message of it one by one."""
    from buzon.crm.records import create_customer_for

    assert connection.vendor == "postgresql"
    account = support_account()
    ids = [store_raw(mail(sender="lucia@customer.test" if i % 2 else f"otro{i}@customer.test",
                          message_id=f"<race{i}@x>"), account).pk for i in range(6)]
    winner: list[Customer] = []
    with _another_transaction(lambda: winner.append(create_customer_for("lucia@customer.test")[0])) as release:
        # the batch's insert of the same address waits for the other transaction; it commits then
        threading.Timer(0.5, release.set).start()
        assert run_queued(ids) == Counter(processed=6)
    assert "one by one" not in caplog.text
    lucia = CustomerEmail.objects.get(address="lucia@customer.test").customer
    assert lucia == winner[0] and Customer.objects.count() == 4  # no second card, none without an address
    assert {m.customer for m in Message.objects.filter(from_address="lucia@customer.test")} == {lucia}
    assert Message.objects.filter(from_address="lucia@customer.test").count() == 3
    assert not Customer.objects.filter(emails__isnull=True).exists()

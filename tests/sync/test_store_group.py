"""Batches that reach the database thread together (many accounts' IDLE arrivals) commit in one
transaction with a few statements for all of them; if any part fails, they are stored one by one,
a savepoint each, so one batch's failure never undoes another's."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext

from buzon.mailboxes.models import EmailAccount
from buzon.sync import dbs, lease, store
from buzon.sync.models import FolderCursor, RawMessage, SyncLease
from buzon.sync.store import CursorMark, Incoming, Mailbox
from tests.sync.helpers import make_mail

pytestmark = pytest.mark.django_db(transaction=True)


def accounts(count: int) -> list[EmailAccount]:
    made = []
    for index in range(count):
        account = EmailAccount.objects.create(email_address=f"group{index}@example.test", incoming_enabled=True)
        FolderCursor.objects.create(account=account, folder="INBOX", uidvalidity=7)
        made.append(account)
    return made


def test_arrivals_of_several_accounts_commit_together_and_a_failing_one_alone_is_undone(monkeypatch):
    first, broken, third = accounts(3)
    groups: list[int] = []
    store_group, store_batch = dbs._store_group, store.store_batch

    def recording_group(jobs):
        groups.append(len(jobs))
        return store_group(jobs)

    def failing_for_broken(box, items, **kwargs):
        result = store_batch(box, items, **kwargs)  # written, then undone by its savepoint
        if box.account_id == broken.pk:
            raise RuntimeError("this batch fails after writing")
        return result

    dbs.STOPPING.clear()  # as the engine does when it starts (a stopped one leaves it set)
    def failing_together(batches, fences):
        if any(batch.box.account_id == broken.pk for batch in batches):
            raise RuntimeError("this group fails as a whole")
        return store.store_batches(batches, fences)

    monkeypatch.setattr(dbs, "_store_group", recording_group)
    monkeypatch.setattr(dbs, "store_batch", failing_for_broken)
    monkeypatch.setattr(dbs, "store_batches", failing_together)

    async def arrivals():
        batches = [dbs.store(Mailbox(acc.pk, acc.email_address, "INBOX", 7),
                             [Incoming(data=make_mail(acc.pk * 10 + i), uid=i + 1) for i in range(2)],
                             CursorMark(2, 55, done=True), tracked=False)
                   for acc in (first, broken, third)]
        return await asyncio.gather(*batches, return_exceptions=True)

    outcomes = async_to_sync(arrivals)()
    assert outcomes[0] == 2 and outcomes[2] == 2
    assert isinstance(outcomes[1], RuntimeError)
    assert groups == [3]  # one transaction for the three
    for acc, count, cursor in ((first, 2, (2, 55, True)), (broken, 0, (0, None, False)), (third, 2, (2, 55, True))):
        assert RawMessage.objects.filter(account=acc).count() == count
        row = FolderCursor.objects.get(account=acc)
        assert (row.last_uid, row.highest_modseq, row.initial_done) == cursor


def _jobs(boxes_items, loop, fences=None):
    fences = fences or {}
    jobs = []
    for box, items, mark in boxes_items:
        context = lease.fenced_context(fences[box.account_id]) if box.account_id in fences else contextvars.Context()
        jobs.append(dbs._StoreJob(box, items, mark, False, context, loop.create_future()))
    return jobs


def test_a_group_costs_a_few_statements_whatever_its_size_and_stores_what_one_by_one_would():
    many = accounts(20)
    first = many[0]
    held = Mailbox(first.pk, first.email_address, "INBOX", 7)
    same = make_mail(1, message_id="<same@example.test>")
    store.store_batch(held, [Incoming(data=same, uid=1)], cursor=CursorMark(1, 5, done=True))
    loop = asyncio.new_event_loop()
    try:
        work = [(Mailbox(acc.pk, acc.email_address, "INBOX", 7),
                 [Incoming(data=make_mail(acc.pk * 10), uid=2, flags=["\\Seen"])], CursorMark(2, 9, done=True))
                for acc in many]
        # The first account's folder gets a copy of what it holds, then a second batch that
        # repeats one of the first's messages: both are skipped as copies, their keys kept.
        again = make_mail(7, message_id="<again@example.test>")
        work[0] = (held, [Incoming(data=same, uid=2), Incoming(data=again, uid=3)], CursorMark(3, 9, done=True))
        work.append((held, [Incoming(data=again, uid=4)], CursorMark(4, 10, done=True)))
        jobs = _jobs(work, loop)
        with CaptureQueriesContext(connection) as queries:
            outcomes = dbs._store_group(jobs)
    finally:
        loop.close()
    assert outcomes == [1] + [1] * 19 + [0]
    assert len(queries) <= 8, [q["sql"][:80] for q in queries]  # one by one: ~6 per batch
    for acc in many[1:]:
        row = RawMessage.objects.get(account=acc)
        assert (row.uid, row.flags, row.status, row.subject) == (2, ["\\Seen"], "stored", f"Message {acc.pk * 10}")
        cursor = FolderCursor.objects.get(account=acc)
        assert (cursor.last_uid, cursor.highest_modseq, cursor.initial_done) == (2, 9, True)
    statuses = dict(RawMessage.objects.filter(account=first).values_list("uid", "status"))
    assert statuses == {1: "stored", 2: "duplicate", 3: "stored", 4: "duplicate"}
    cursor = FolderCursor.objects.get(account=first)
    assert (cursor.last_uid, cursor.highest_modseq) == (4, 10)  # the later batch has the last word


def test_in_a_group_a_lost_lease_refuses_that_account_only():
    kept, taken = accounts(2)
    fences = lease.claim("a", [kept.pk, taken.pk], limit=2)
    SyncLease.objects.filter(account=taken).update(owner="b", epoch=fences[taken.pk].epoch + 1)
    loop = asyncio.new_event_loop()
    try:
        work = [(Mailbox(acc.pk, acc.email_address, "INBOX", 7), [Incoming(data=make_mail(acc.pk), uid=1)],
                 CursorMark(1, 3, done=True)) for acc in (kept, taken)]
        outcomes = dbs._store_group(_jobs(work, loop, fences))
    finally:
        loop.close()
    assert outcomes[0] == 1 and isinstance(outcomes[1], lease.LeaseLost)
    assert RawMessage.objects.filter(account=kept).count() == 1
    assert RawMessage.objects.filter(account=taken).count() == 0
    assert FolderCursor.objects.get(account=taken).last_uid == 0

"""Batches that reach the database thread together share one transaction, a savepoint each."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync

from buzon.mailboxes.models import EmailAccount
from buzon.sync import dbs, store
from buzon.sync.models import FolderCursor, RawMessage
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
    monkeypatch.setattr(dbs, "_store_group", recording_group)
    monkeypatch.setattr(dbs, "store_batch", failing_for_broken)

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

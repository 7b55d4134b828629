"""A sync process holds at most SYNC_FETCH_BUDGET_BYTES of fetched mail not yet stored, whatever the
number of accounts and chunks on the wire (buzon.sync.budget), and loses nothing by waiting for it."""

from __future__ import annotations

import asyncio

import pytest

from buzon.sync.budget import ByteBudget
from buzon.sync.models import RawMessage
from tests.sync.helpers import make_account, make_mail, sync


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_reservations_are_served_in_the_order_asked_and_never_past_the_budget() -> None:
    async def scenario() -> list[str]:
        budget = ByteBudget(100)
        order: list[str] = []

        async def take(name: str, size: int, hold: float) -> None:
            got = await budget.acquire(size)
            order.append(name)
            assert budget.held <= budget.total
            await asyncio.sleep(hold)
            budget.release(got)

        await budget.acquire(90)  # held by someone else at first
        tasks = [asyncio.ensure_future(take("big", 60, 0.01)), asyncio.ensure_future(take("small", 5, 0))]
        await asyncio.sleep(0.01)
        assert order == []  # "small" fits in the 10 left but waits its turn behind "big"
        budget.release(90)
        await asyncio.gather(*tasks)
        assert budget.held == 0 and budget.peak == 90
        return order

    assert _run(scenario()) == ["big", "small"]


def test_a_chunk_larger_than_the_budget_takes_it_all_alone() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100)
        first = await budget.acquire(30)
        huge = asyncio.ensure_future(budget.acquire(10_000))
        await asyncio.sleep(0)
        assert not huge.done()
        budget.release(first)
        assert await huge == 100 and budget.free == 0
        budget.release(100)
        assert budget.free == 100

    _run(scenario())


def test_a_cancelled_wait_gives_way_and_leaks_nothing() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100)
        held = await budget.acquire(80)
        blocked = asyncio.ensure_future(budget.acquire(50))  # waits for the 80
        behind = asyncio.ensure_future(budget.acquire(20))  # fits, but is behind it
        await asyncio.sleep(0)
        assert not behind.done()
        blocked.cancel()  # the fetch was stopped (account dropped, engine stopping)
        assert await behind == 20
        with pytest.raises(asyncio.CancelledError):
            await blocked
        budget.release(held)
        budget.release(20)
        assert budget.free == 100

        # granted at the very moment it is cancelled: the bytes come back
        budget2 = ByteBudget(10)
        first = await budget2.acquire(10)
        racing = asyncio.ensure_future(budget2.acquire(10))
        await asyncio.sleep(0)
        budget2.release(first)  # grants `racing`...
        racing.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await racing
        assert budget2.free == 10

    _run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_first_download_with_a_small_budget_stores_every_message_once(dovecot, settings, monkeypatch):
    """Three accounts, each folder with three 20 KB chunks on the wire at once, through a 50 KB
    budget: every message arrives, and the process never held more than the budget."""
    settings.SYNC_FETCH_CHUNK = 2  # two 20 KB messages a chunk
    settings.SYNC_FETCH_DEPTH = 3
    budget = ByteBudget(50 * 1024)
    monkeypatch.setattr("buzon.sync.imap.fetched", lambda: budget)
    accounts = [make_account(dovecot) for _ in range(3)]
    mails = {account.pk: [make_mail(i + 100 * n, size_kb=20) for i in range(12)]
             for n, account in enumerate(accounts)}
    for account in accounts:
        for mail in mails[account.pk]:
            dovecot.deliver(account.email_address, mail)
    sync(*accounts)
    for account in accounts:
        stored = sorted(bytes(raw.data) for raw in RawMessage.objects.filter(account=account))
        assert stored == sorted(mails[account.pk])
    assert 35 * 1024 <= budget.peak <= 50 * 1024  # it was used (a chunk: two 20 KB messages), never past it
    assert budget.held == 0


@pytest.mark.django_db(transaction=True)
def test_pop3_batches_wait_for_the_budget_too(dovecot, monkeypatch):
    budget = ByteBudget(30 * 1024)  # less than one batch: each takes the whole budget, alone
    monkeypatch.setattr("buzon.sync.pop3.fetched", lambda: budget)
    account = make_account(dovecot, protocol="pop3")
    mails = [make_mail(i, size_kb=20) for i in range(5)]
    for mail in mails:
        dovecot.deliver(account.email_address, mail)
    sync(account)
    assert sorted(bytes(raw.data) for raw in RawMessage.objects.filter(account=account)) == sorted(mails)
    assert budget.peak == 30 * 1024 and budget.held == 0


def test_a_wait_cancelled_just_before_a_release_is_skipped_and_ends_cancelled() -> None:
    async def scenario() -> None:
        budget = ByteBudget(10)
        first = await budget.acquire(10)
        waiting = asyncio.ensure_future(budget.acquire(5))
        await asyncio.sleep(0)
        waiting.cancel()  # cancels the turn it waits on at once...
        budget.release(first)  # ...and a release passes over it before it has run again
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert budget.free == 10 and not budget._waiting

    _run(scenario())

"""How many bytes of fetched mail a sync process holds before the database has stored them.

Each folder keeps a few FETCH chunks on the wire (SYNC_FETCH_DEPTH, each up to
SYNC_FETCH_CHUNK_BYTES), so a process syncing a thousand accounts could hold tens of gigabytes when
many have mail at once and the database is the slower side: under load a sync process grew past
2 GB with mail fetched and waiting. A chunk now reserves its bytes (the sizes the server announced,
each capped at the attachment limit that truncates it) from one budget per process before it is
asked for, and gives them back once stored. Reservations are served strictly in the order they were
asked for: a folder stores its chunks in order, and a later chunk holding bytes while an earlier one
waits behind another folder's could otherwise wait for ever. A chunk larger than the whole budget
takes all of it, alone.
"""

from __future__ import annotations

import asyncio
from collections import deque

from django.conf import settings


class ByteBudget:
    """A FIFO semaphore counted in bytes, for one event loop."""

    def __init__(self, total: int) -> None:
        self.total = max(1, total)
        self.free = self.total
        self.peak = 0  # most bytes held at once (tests, and the status page's numbers)
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def held(self) -> int:
        return self.total - self.free

    async def acquire(self, size: int) -> int:
        """Wait until `size` bytes (at most the whole budget) are free, in turn; returns what was taken."""
        size = min(max(0, size), self.total)
        if not self._waiting and size <= self.free:
            self._take(size)
            return size
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((size, turn))
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():  # granted just as it was cancelled: give it back
                self.release(size)
            else:
                if (size, turn) in self._waiting:  # a release may have passed over it already
                    self._waiting.remove((size, turn))
                self._grant()  # the next in line may fit now
            raise
        return size

    def release(self, size: int) -> None:
        self.free = min(self.total, self.free + size)
        self._grant()

    def _take(self, size: int) -> None:
        self.free -= size
        self.peak = max(self.peak, self.held)

    def _grant(self) -> None:
        while self._waiting and self._waiting[0][0] <= self.free:
            size, turn = self._waiting.popleft()
            if turn.cancelled():
                continue
            self._take(size)
            turn.set_result(None)


_budgets: dict[asyncio.AbstractEventLoop, ByteBudget] = {}


def fetched() -> ByteBudget:
    """This event loop's budget (settings.SYNC_FETCH_BUDGET_BYTES)."""
    loop = asyncio.get_running_loop()
    budget = _budgets.get(loop)
    if budget is None:
        for old in [other for other in _budgets if other.is_closed()]:
            del _budgets[old]
        budget = _budgets[loop] = ByteBudget(settings.SYNC_FETCH_BUDGET_BYTES)
    return budget

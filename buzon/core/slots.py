"""How `buzon worker` shares its slots among the task queues.

A slot is a thread that runs one task at a time. Each queue the worker serves gets a slot of its own
while there are slots to give, so a kind of work that waits (outbound: a relay taking 30 s per
message) holds only its own slots and never delays the others (inbound: stored mail → records).
Slots beyond one per queue serve every queue the worker serves. With fewer slots than queues,
housekeeping (short database jobs that never wait on a remote server) shares inbound's slot; with
one slot, it serves everything, as a single-threaded worker did.

Threads, not processes: sending and Sent-folder copies wait on the network, and the pipeline's
database writes take one writer at a time on SQLite anyway. For more CPU (a big first download),
run more `buzon worker` processes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from buzon.core.queues import ALL_QUEUES, HOUSEKEEPING, LEGACY, QUEUES

#: Slots per queue in this process (0 when it runs no worker); its heartbeat publishes them
#: (settings.PROCESS_STATS) and the processes page shows them.
SERVED: dict[str, float] = {}


class UnknownQueue(ValueError):
    pass


def parse_queues(text: str) -> tuple[str, ...]:
    """``*`` (every queue) or names separated by commas, in the order slots are given."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    if not names or "*" in names:
        return ALL_QUEUES
    unknown = sorted(names - set(ALL_QUEUES))
    if unknown:
        raise UnknownQueue(f"unknown queue {', '.join(unknown)}; the queues are {', '.join(QUEUES)}")
    if HOUSEKEEPING in names:  # tasks queued before the queues were split go where housekeeping goes
        names.add(LEGACY)
    return tuple(name for name in ALL_QUEUES if name in names)


def default_concurrency(queues: Sequence[str]) -> int:
    """A slot per queue at least, and one per core: on a 2-core machine serving everything, three."""
    return max(len([q for q in queues if q != LEGACY]), os.cpu_count() or 1)


def plan(queues: Sequence[str], concurrency: int) -> list[tuple[str, ...]]:
    """The queues each of `concurrency` slots serves (see the module docstring)."""
    served = [name for name in ALL_QUEUES if name in queues]
    groups = [[name] for name in served if name != LEGACY]
    if LEGACY in served:
        home = next((g for g in groups if HOUSEKEEPING in g), None)
        if home is None:
            groups.append([LEGACY])
        else:
            home.append(LEGACY)
    while len(groups) > max(1, concurrency):  # short of slots: the last queue joins the first one's slot
        groups[0].extend(groups.pop())
    slots = [tuple(group) for group in groups]
    return slots + [tuple(served)] * (concurrency - len(slots))


def publish(slots: list[tuple[str, ...]]) -> None:
    SERVED.clear()
    for name in QUEUES:
        count = sum(1 for slot in slots if name in slot)
        if count:
            SERVED[name] = float(count)

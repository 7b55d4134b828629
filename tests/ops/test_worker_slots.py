"""How `buzon worker` gives its slots to the queues: each queue served has one of its own while there
are enough (outbound waiting on a slow relay can never take inbound's), the rest serve everything."""

from __future__ import annotations

import pytest

from buzon.core.slots import UnknownQueue, default_concurrency, parse_queues, plan

EVERYTHING = parse_queues("*")


def test_every_queue_has_a_slot_of_its_own_and_spare_slots_serve_all():
    assert plan(EVERYTHING, 3) == [("inbound",), ("outbound",), ("housekeeping", "default")]
    assert plan(EVERYTHING, 5) == [("inbound",), ("outbound",), ("housekeeping", "default"),
                                   ("inbound", "outbound", "housekeeping", "default"),
                                   ("inbound", "outbound", "housekeeping", "default")]


def test_short_of_slots_housekeeping_shares_inbound_and_outbound_keeps_its_own():
    assert plan(EVERYTHING, 2) == [("inbound", "housekeeping", "default"), ("outbound",)]
    assert plan(EVERYTHING, 1) == [("inbound", "housekeeping", "default", "outbound")]


def test_a_worker_pointed_at_queues_serves_only_those():
    assert parse_queues("outbound") == ("outbound",)
    assert plan(parse_queues("outbound"), 3) == [("outbound",)] * 3
    assert parse_queues("outbound, inbound") == ("inbound", "outbound")
    assert plan(parse_queues("inbound,outbound"), 2) == [("inbound",), ("outbound",)]
    assert parse_queues("housekeeping") == ("housekeeping", "default")  # tasks queued before the split


def test_unknown_queue_is_named():
    with pytest.raises(UnknownQueue, match="inboud"):
        parse_queues("inboud")


def test_the_default_is_a_slot_per_queue_and_one_per_core(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_concurrency(EVERYTHING) == 3
    assert default_concurrency(parse_queues("outbound")) == 2
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert default_concurrency(EVERYTHING) == 8


@pytest.mark.parametrize(("queues", "lingers"), [(("outbound",), True), (("inbound", "outbound"), False),
                                                 (("inbound", "housekeeping", "default", "outbound"), False)])
def test_only_a_slot_that_serves_outbound_alone_lets_a_delivery_task_linger(queues, lingers):
    """A delivery task that waits for more mail in a slot inbound also uses (`--concurrency 1`, spare
    slots) would hold the pipeline back: there it ends as soon as the queue is empty."""
    from buzon.core import workerpool

    seen: list[bool] = []

    class Probe(workerpool.Slot):
        def work(self) -> None:
            seen.append(workerpool.may_linger("outbound"))

    assert not workerpool.may_linger("outbound")  # not in a worker at all (a test, a web request)
    workerpool._serving.set()
    try:
        probe = Probe(0, queues)
        probe.start()
        probe.join()
        workerpool._stopping.set()  # asked to stop: no task lingers any more
        stopping = Probe(1, queues)
        stopping.start()
        stopping.join()
    finally:
        workerpool._serving.clear()
        workerpool._stopping.clear()
    assert seen == [lingers, False]

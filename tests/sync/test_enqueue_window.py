"""With a task backend outside the database, what is stored within a short window goes as one task."""

from __future__ import annotations

import time

import pytest

from buzon.sync import enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    groups: list[list[int]] = []
    monkeypatch.setattr(enqueue, "_joins_transaction", lambda task: False)
    monkeypatch.setattr(enqueue, "_send", lambda batch: groups.extend(batch))
    yield groups
    enqueue.window.flush()


def test_arrivals_within_the_window_go_as_one_task(sent, settings, django_capture_on_commit_callbacks):
    settings.INBOUND_ENQUEUE_WINDOW_S = 0.3
    for ids in ([1, 2], [3]):
        with django_capture_on_commit_callbacks(execute=True):
            enqueue.enqueue_processing(ids, coalesce=True)
    assert sent == []  # still within the window
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sent == [[1, 2, 3]]


def test_a_full_batch_goes_at_once_and_rolled_back_ids_never(sent, settings, django_capture_on_commit_callbacks):
    settings.INBOUND_ENQUEUE_WINDOW_S = 30
    settings.INBOUND_TASK_BATCH = 3
    with django_capture_on_commit_callbacks(execute=True):
        enqueue.enqueue_processing([1, 2, 3, 4], coalesce=True)
    assert sent == [[1, 2, 3], [4]]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:  # the transaction rolled back
        enqueue.enqueue_processing([5], coalesce=True)
    assert len(callbacks) == 1
    enqueue.window.flush()
    assert sent == [[1, 2, 3], [4]]


def test_without_a_window_or_outside_the_sync_engine_each_commit_sends_at_once(
        sent, settings, django_capture_on_commit_callbacks):
    settings.INBOUND_ENQUEUE_WINDOW_S = 0
    enqueue.window.add([7])
    assert sent == [[7]]
    settings.INBOUND_ENQUEUE_WINDOW_S = 30
    with django_capture_on_commit_callbacks(execute=True):  # skipped mail brought back, the sweep
        enqueue.enqueue_processing([8, 9])
    assert sent == [[7], [8, 9]]


def test_a_flush_returns_only_once_the_timers_send_has_finished(monkeypatch, settings,
                                                                 django_capture_on_commit_callbacks):
    """`buzon sync --once` (and the acceptance tests after it) flush the window and then read the
    records: a flush that came while the timer's flush was still sending waits for it, instead of
    returning at once because the timer had already taken the ids."""
    import threading

    started, done = threading.Event(), []

    def slow_send(batch):
        started.set()
        time.sleep(0.5)
        done.extend(batch)

    monkeypatch.setattr(enqueue, "_joins_transaction", lambda task: False)
    monkeypatch.setattr(enqueue, "_send", slow_send)
    settings.INBOUND_ENQUEUE_WINDOW_S = 0.05
    with django_capture_on_commit_callbacks(execute=True):
        enqueue.enqueue_processing([1, 2], coalesce=True)
    assert started.wait(5)  # the timer's flush is sending now
    enqueue.window.flush()
    assert done == [[1, 2]]

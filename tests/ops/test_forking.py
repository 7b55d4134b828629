"""What may cross a fork (buzon.core.forking), and a heartbeat that never imports a module itself."""

from __future__ import annotations

import sys
import threading

import pytest
from django.db import connection

from buzon.core import forking
from buzon.core.heartbeat import Heartbeat


@pytest.mark.postgres  # SQLite's test database lives in memory, and Django never closes that one
@pytest.mark.django_db(transaction=True)
def test_before_fork_closes_the_database_connection():
    connection.ensure_connection()
    forking.before_fork("this test")
    assert connection.connection is None


def test_before_fork_refuses_to_fork_beside_another_thread():
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="heartbeat-web", daemon=True)
    other.start()
    try:
        with pytest.raises(forking.ThreadsAtFork, match="heartbeat-web"):
            forking.before_fork("gunicorn's master")
    finally:
        stop.set()
        other.join()
    forking.before_fork("gunicorn's master")  # alone again: fine


def test_heartbeat_reads_stats_only_of_modules_already_imported(settings):
    import buzon.inbound.pipeline as pipeline

    never = "tabnanny"  # a module that exists and that nothing here imports
    assert never not in sys.modules
    settings.PROCESS_STATS = {"steps": "buzon.inbound.pipeline.STEP_SECONDS", "other": f"{never}.STATS"}
    stats = Heartbeat("web", interval=60)._stats()
    assert never not in sys.modules  # not even tried: importing takes the module's lock in the heartbeat
    assert stats == {"steps": {str(k): float(v) for k, v in pipeline.STEP_SECONDS.items()}}

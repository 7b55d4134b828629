"""SQLite writers take turns (buzon.core.backends.sqlite3): a transaction holds its process's turn
and the database's file lock from BEGIN to its end, whatever the end; another process waits for
the lock and gets it as soon as it is free; a holder that never lets go delays a writer by the
connection's timeout at most, after which SQLite's own lock decides, as before."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from buzon.crm.models import Store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _sqlite_file() -> None:
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        pytest.skip("writers take turns on an SQLite database file")


def _lock_path() -> Path:
    return Path(os.path.abspath(connection.settings_dict["NAME"]) + "-writer.lock")


def _free_elsewhere() -> bool:
    """Whether another open file (as another process has) can take the database's writer lock now."""
    fd = os.open(_lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the file lets go of a lock it took
    return True


def test_a_transaction_holds_the_turn_until_it_ends_however_it_ends():
    with transaction.atomic():
        Store.objects.create(name="Centro")
        assert not _free_elsewhere()
        with transaction.atomic():  # a savepoint: still the same turn
            assert not _free_elsewhere()
        assert not _free_elsewhere()
    assert _free_elsewhere()  # committed

    with pytest.raises(RuntimeError), transaction.atomic():
        Store.objects.create(name="Norte")
        raise RuntimeError("rolled back")
    assert _free_elsewhere()
    assert not Store.objects.filter(name="Norte").exists()

    with transaction.atomic():
        Store.objects.create(name="Sur")
        connection.close()  # a connection closed inside its transaction gives the turn back too
    assert _free_elsewhere()
    Store.objects.create(name="Este")  # and the next transaction takes it again
    with transaction.atomic():
        assert not _free_elsewhere()


def test_threads_of_one_process_write_in_turn():
    """Eight threads, each a hundred short transactions: all of them written, every turn given back."""
    def write(n: int) -> None:
        try:
            for i in range(100):
                with transaction.atomic():
                    Store.objects.create(name=f"tienda {n}-{i}")
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Store.objects.filter(name__startswith="tienda ").count() == 800
    assert _free_elsewhere()


_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold_elsewhere(seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(_lock_path()), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_waits_for_another_process_and_goes_as_soon_as_it_lets_go():
    holder = _hold_elsewhere(0.5)
    started = time.monotonic()
    with transaction.atomic():
        waited = time.monotonic() - started
        Store.objects.create(name="Oeste")
    holder.wait(timeout=10)
    assert 0.4 < waited < 0.6  # looked at every few milliseconds, not SQLite's sleeps of up to 100 ms


def test_a_holder_that_never_lets_go_delays_a_writer_by_the_timeout_at_most(settings):
    connection.close()
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("timeout")
    options["timeout"] = 0.3
    holder = _hold_elsewhere(30)
    try:
        started = time.monotonic()
        with transaction.atomic():  # SQLite's own lock is free: the write goes on
            Store.objects.create(name="Paciente")
        assert 0.25 < time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
        options["timeout"] = saved
        connection.close()
    assert Store.objects.filter(name="Paciente").exists()
    assert _free_elsewhere()

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
from django.db import OperationalError, connection, transaction

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
    assert 0.4 < waited < 1.5  # it took the lock itself, within milliseconds of its release


def test_a_holder_that_never_lets_go_fails_a_writer_after_the_timeout_as_sqlite_did():
    connection.close()
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("timeout")
    options["timeout"] = 0.3
    holder = _hold_elsewhere(30)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"), transaction.atomic():
            Store.objects.create(name="Impaciente")
        assert 0.25 < time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
        options["timeout"] = saved
        connection.close()
    assert not Store.objects.filter(name="Impaciente").exists()
    Store.objects.create(name="Paciente")  # the process's turn was given back with the failure
    with transaction.atomic():
        Store.objects.create(name="Paciente 2")
    assert _free_elsewhere()


_WAITING = """
import fcntl, os, sys, time
wait = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(wait, fcntl.LOCK_SH)  # what a process waiting for its turn holds while it looks
print("waiting", flush=True)
time.sleep(30)
"""


def test_a_writer_lets_a_waiting_process_go_first():
    """A busy process would otherwise hand the turn from thread to thread at once, every time, while
    another process looks every few milliseconds: a writer that sees another process waiting waits
    longer than that process looks before it takes the turn itself."""
    alone = []
    for _ in range(5):  # the quickest of five: a busy machine may hold up one of them
        started = time.monotonic()
        with transaction.atomic():
            alone.append(time.monotonic() - started)
    waiting = subprocess.Popen([sys.executable, "-c", _WAITING, str(_lock_path()).replace("-writer.lock",
                                                                                          "-writer.wait")],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert waiting.stdout is not None and waiting.stdout.readline().strip() == "waiting"
        started = time.monotonic()
        with transaction.atomic():
            behind = time.monotonic() - started
            Store.objects.create(name="después")
    finally:
        waiting.kill()
        waiting.wait()
    assert behind >= 0.003 > min(alone)

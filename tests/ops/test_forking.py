"""What may cross a fork (buzon.core.forking), and a heartbeat that never imports a module itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import connection

from buzon.core import forking
from buzon.core.heartbeat import Heartbeat


@pytest.mark.postgres  # SQLite's test database lives in memory, and Django never closes that one
@pytest.mark.django_db(transaction=True)
def test_before_fork_closes_the_database_connection(monkeypatch):
    # alone in its process, as gunicorn's master is (threads earlier tests left here, an SMTP pool's, are not its)
    monkeypatch.setattr(forking.threading, "enumerate", lambda: [forking.threading.current_thread()])
    connection.ensure_connection()
    forking.before_fork("this test")
    assert connection.connection is None


_ALONE_OR_NOT = """
import os, threading
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
django.setup()
from buzon.core import forking

stop = threading.Event()
other = threading.Thread(target=stop.wait, name="heartbeat-web", daemon=True)
other.start()
try:
    forking.before_fork("gunicorn's master")
except forking.ThreadsAtFork as refused:
    print("refused:", refused)
else:
    print("forked beside heartbeat-web")
stop.set()
other.join()
forking.before_fork("gunicorn's master")  # alone again: fine
print("alone: fine")
"""


def test_before_fork_refuses_to_fork_beside_another_thread():
    # In a fresh interpreter: the test process has its own servers' threads running.
    done = subprocess.run([sys.executable, "-c", _ALONE_OR_NOT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused: gunicorn's master would fork with other threads running (heartbeat-web)" in done.stdout
    assert done.stdout.rstrip().endswith("alone: fine")


def test_heartbeat_reads_stats_only_of_modules_already_imported(settings):
    import buzon.inbound.pipeline as pipeline

    never = "tabnanny"  # a module that exists and that nothing here imports
    assert never not in sys.modules
    settings.PROCESS_STATS = {"steps": "buzon.inbound.pipeline.STEP_SECONDS", "other": f"{never}.STATS"}
    stats = Heartbeat("web", interval=60)._stats()
    assert never not in sys.modules  # not even tried: importing takes the module's lock in the heartbeat
    assert stats == {"steps": {str(k): float(v) for k, v in pipeline.STEP_SECONDS.items()}}


_WARM = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
django.setup()
from django.core.validators import EmailValidator
from django.db import connection
from django.utils.functional import empty
from buzon.core import forking
from buzon.core.management.commands import web
cold = [name for name in ("buzon.urls", "buzon.api.urls") if name in sys.modules]
web._warm()
print("cold:", cold)
print("imported:", "buzon.urls" in sys.modules and "buzon.api.urls" in sys.modules)
print("compiled:", EmailValidator.domain_regex._wrapped is not empty)
from django.conf import settings
from django.urls import get_resolver
print("reversed:", sorted(get_resolver()._reverse_dict) == sorted(code for code, _ in settings.LANGUAGES))
print("connected:", connection.connection is not None)
forking.before_fork("gunicorn's master")
print("may fork")
"""


def test_buzon_webs_master_warms_what_every_worker_needs_before_it_forks_them():
    # In a fresh interpreter: this test process imported the URLconf long ago.
    done = subprocess.run([sys.executable, "-c", _WARM], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:6] == ["cold: []", "imported: True", "compiled: True", "reversed: True",
                                           "connected: False", "may fork"]

"""The probe rate limit is one limit for all web processes: counted in the database, or in Redis
when REDIS_URL is set, never in one process's memory. Proven with two real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from buzon.core import redis_client
from buzon.mailboxes import guard
from buzon.mailboxes.models_guard import ProbeCount

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 6
CHILD = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
django.setup()
from buzon.mailboxes import guard
guard.REDIS_KEY = os.environ.get("PROBE_KEY", guard.REDIS_KEY)
allowed = 0
for _ in range(int(os.environ["TRIES"])):
    try:
        guard.take_probe_slot(int(os.environ["PROBE_USER"]))
    except guard.ProbeRateLimited:
        continue
    allowed += 1
print(allowed)
"""


def _same_minute() -> None:
    """Both processes must count in one window: start early enough in a minute."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def _two_processes(env: dict[str, str], tries: int = LIMIT) -> list[int]:
    base = {**os.environ, "BUZON_PROBE_RATE_PER_MINUTE": str(LIMIT), "PROBE_USER": "4242", "TRIES": str(tries),
            **env}
    _same_minute()
    children = [subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=base, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    allowed = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        allowed.append(int(out.strip().splitlines()[-1]))
    return allowed


@pytest.mark.django_db
def test_the_database_count_survives_a_fresh_process_memory(settings: Any):
    settings.PROBE_RATE_PER_MINUTE, settings.REDIS_URL = 3, ""
    for _ in range(3):
        guard.take_probe_slot(7)
        cache.clear()  # what another process (or a restart) starts with: nothing in memory
    with pytest.raises(guard.ProbeRateLimited) as limited:
        guard.take_probe_slot(7)
    assert 1 <= limited.value.retry_after <= 60
    guard.take_probe_slot(8)  # per user
    assert ProbeCount.objects.get(user_id=7).count == 4


@pytest.mark.django_db
def test_minutes_gone_by_are_swept(settings: Any):
    settings.PROBE_RATE_PER_MINUTE, settings.REDIS_URL = 3, ""
    ProbeCount.objects.create(user_id=7, window=int(time.time() // 60) - 5, count=99)
    guard.take_probe_slot(7)  # the old minute's 99 does not count now
    assert list(ProbeCount.objects.values_list("count", flat=True)) == [1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_web_processes_share_one_limit_in_postgresql(postgres_url: str):
    """Each process alone would allow LIMIT probes; together they are allowed LIMIT, not 2 × LIMIT."""
    test_db = connection.settings_dict["NAME"]
    url = postgres_url.rsplit("/", 1)[0] + f"/{test_db}"
    allowed = _two_processes({"DATABASE_URL": url, "REDIS_URL": ""})
    assert sum(allowed) == LIMIT, allowed
    assert ProbeCount.objects.get(user_id=4242).count == 2 * LIMIT


def test_two_web_processes_share_one_limit_in_redis(redis_url: str):
    key = f"buzon-test:{uuid.uuid4().hex}:probe:{{user}}:{{window}}"
    allowed = _two_processes({"REDIS_URL": redis_url, "PROBE_KEY": key})
    assert sum(allowed) == LIMIT, allowed


@pytest.mark.django_db
def test_the_limit_holds_in_the_database_while_redis_is_unreachable(settings: Any):
    settings.PROBE_RATE_PER_MINUTE, settings.REDIS_URL = 2, "redis://127.0.0.1:1/0"  # nothing listens there
    redis_client._clients.pop(settings.REDIS_URL, None)
    guard.take_probe_slot(9)
    guard.take_probe_slot(9)
    with pytest.raises(guard.ProbeRateLimited):
        guard.take_probe_slot(9)
    assert ProbeCount.objects.get(user_id=9).count == 3

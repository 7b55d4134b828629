"""/readyz of a real `buzon web`: ready only when the database answers a real read and has every
migration the code needs, 503 naming the database otherwise; ready again once that is fixed."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support import live_run
from tests.support.ports import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _readyz(port: int, want: int, within: float = 60) -> dict[str, object]:
    deadline, last = time.monotonic() + within, None
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            last = (response.status_code, response.text)
            if response.status_code == want:
                return dict(response.json())
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"/readyz never answered {want} within {within} s; last {last}")


def test_readyz_reads_the_database_and_wants_every_migration(tmp_path):
    env = live_run.run_env(tmp_path)
    live_run.prepare(env)
    database = sqlite3.connect(tmp_path / "buzon.sqlite3", isolation_level=None)
    app, name = database.execute("SELECT app, name FROM django_migrations ORDER BY id DESC LIMIT 1").fetchone()
    database.execute("DELETE FROM django_migrations WHERE app = ? AND name = ?", (app, name))  # code ahead of schema
    port = free_port()
    with open(tmp_path / "web.log", "ab") as log:
        web = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", "web", "--port", str(port), "--workers", "1"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        body = _readyz(port, 503)
        assert body["ready"] is False and body["checks"]["tasks"] == "ok"  # type: ignore[index]
        assert f"1 migration(s) not applied yet (first: {app}.{name})" in body["checks"]["database"]  # type: ignore[index]

        database.execute("INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, datetime('now'))",
                         (app, name))
        assert _readyz(port, 200, within=10) == {"ready": True, "checks": {"database": "ok", "tasks": "ok"}}

        database.execute("ALTER TABLE django_session RENAME TO django_session_away")  # a table a request reads
        assert "no such table: django_session" in _readyz(port, 503, within=10)["checks"]["database"]  # type: ignore[index]
        database.execute("ALTER TABLE django_session_away RENAME TO django_session")
        assert _readyz(port, 200, within=10)["ready"] is True
    finally:
        database.close()
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # gunicorn's workers too, if any is left
                os.killpg(web.pid, signal.SIGKILL)
            web.wait(10)

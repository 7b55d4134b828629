"""`buzon sync` as a real process, on a database the test and the process both see."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def buzon_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url, "BUZON_DATA_DIR": str(data_dir), "BUZON_TASKS": "db",
        "BUZON_SYNC_LEASE": "4", "BUZON_SYNC_REFRESH": "0.3", "BUZON_SYNC_BACKOFF_BASE": "0.3",
        "BUZON_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
    })
    from django.conf import settings

    # the same keys as this test process, so the passwords it stored can be read there
    env["BUZON_FERNET_KEYS"] = ",".join(settings.FERNET_KEYS)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(extra)
    return env


def buzon(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "buzon.core.cli", *args], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT)


def run_buzon(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "buzon.core.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Signal the process and wait for it; one still running after `timeout` is killed (so it can
    take no later test's work) and the wait's TimeoutExpired raised."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise

"""The data directory: one stable place whatever folder `buzon` runs from, named at start, and
private to its owner (0700 directory, 0600 files: the SQLite database and its -wal/-shm files,
the generated keys, stored files), including what an older version left readable."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from buzon.core import config
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(data: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "BUZON_"))}
    env.update({"BUZON_TASKS": "db", "BUZON_HEARTBEAT": "1", "PYTHONUNBUFFERED": "1"})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if data is not None:
        env["BUZON_DATA_DIR"] = str(data)
    return env


def _lax_umask() -> None:
    os.umask(0o022)  # what a login shell usually has: files 0644 unless Buzón says otherwise


def _buzon(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "buzon.core.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=_lax_umask)


def _modes(data: Path) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(data.stat().st_mode))}
    for path in data.rglob("*"):
        found[str(path.relative_to(data))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def _private(modes: dict[str, str], data: Path) -> dict[str, str]:
    """Entries whose mode is not the owner's alone (0700 for directories, 0600 for files)."""
    wrong = {}
    for name, mode in modes.items():
        wanted = "0o700" if (data / name).is_dir() else "0o600"
        if mode != wanted:
            wrong[name] = mode
    return wrong


def test_migrate_creates_a_private_data_directory_and_names_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _buzon(_env(data), "migrate", "-v", "0")
    assert done.returncode == 0, done.stderr
    assert f"data directory {data};" in done.stderr
    assert f"database SQLite {data / 'buzon.sqlite3'}" in done.stderr
    assert done.stdout == ""  # a command's own output stays clean
    modes = _modes(data)
    assert {"buzon.sqlite3", "secret_key", "fernet.keys"} <= set(modes)
    assert _private(modes, data) == {}, modes


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.mark.slow
def test_run_makes_files_an_older_version_left_readable_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _buzon(_env(data), "migrate", "-v", "0").returncode == 0
    (data / "media").mkdir()
    (data / "media" / "attachment.pdf").write_bytes(b"%PDF-1.4")
    for path in [data, *data.rglob("*")]:  # as an older Buzón (or a lax umask) left them
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = free_port()
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", "run", "--port", str(port)], cwd=ROOT,
                            env=_env(data), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_lax_umask)
    try:
        deadline = time.monotonic() + 120
        while not _healthy(port):
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.3)
        # The web process served a request and the worker polls: SQLite's WAL files are open now.
        deadline = time.monotonic() + 30
        while not {"buzon.sqlite3-wal", "buzon.sqlite3-shm"} <= set(os.listdir(data)):
            assert time.monotonic() < deadline, os.listdir(data)
            time.sleep(0.3)
        modes = _modes(data)
        assert {"buzon.sqlite3", "buzon.sqlite3-wal", "buzon.sqlite3-shm", "media/attachment.pdf"} <= set(modes)
        assert _private(modes, data) == {}, modes
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert output.count(f"data directory {data};") == 1  # said once, by `buzon run`, not by each child
    assert "private to their owner" in output


def test_the_default_data_directory_does_not_depend_on_the_current_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _buzon(_env(None), "check", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert f"data directory {ROOT / 'var'};" in done.stderr
    assert not (elsewhere / "var").exists()  # no second, empty database started here
    assert config.default_data_dir() == ROOT / "var"


def test_a_shared_directory_is_never_made_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "someone-else.txt").write_text("x")
    assert config.secure_data_dir(shared) == []
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777

"""`buzon run` as a person meets it: started, then signed in to, written to and read back through the
API, each step bounded in time, so a process that hangs shows up as a failed start instead of a
test that waits for ever.

Readiness here is what a user needs, not `/healthz` (which touches no database): `/readyz` reads the
database, the sign-in writes a session, and saving a customer's address runs the code that imports
the inbound pipeline (the first write that did so used to hang in a web worker forked while another
thread held the import lock or SQLite's mutex).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
USERNAME, PASSWORD, STORE = "ana", "ana-pass-7391", "Tienda Norte"

# An agent of one store: the least privileged user who saves customers.
_SETUP = f"""
from django.contrib.auth import get_user_model
from buzon.crm.models import Agent, Store
store, _ = Store.objects.get_or_create(name={STORE!r})
user, _ = get_user_model().objects.get_or_create(username={USERNAME!r})
user.set_password({PASSWORD!r}); user.save()
agent, _ = Agent.objects.get_or_create(user=user)
agent.stores.add(store)
print(store.pk)
"""


def run_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "REDIS_URL", "BUZON_", "DJANGO_SETTINGS_MODULE"))}
    env.update({"BUZON_DATA_DIR": str(data_dir), "BUZON_TASKS": "db", "BUZON_HEARTBEAT": "1",
                "PYTHONUNBUFFERED": "1", **extra})
    return env


_migrated: dict[Path, Path] = {}  # code checkout -> a data directory migrated once by this test process


def migrated(data_dir: Path, cwd: Path = ROOT) -> None:
    """Give ``data_dir`` a freshly migrated SQLite database (and its keys), as `buzon migrate` would.

    The migrations run once per test process, in a template directory, and each caller gets a copy:
    a migration run costs seconds of CPU, and many tests only need a migrated site to start. Tests of
    what `migrate` itself does to a data directory run it themselves."""
    template = _migrated.get(cwd)
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="buzon-migrated-"))
        done = subprocess.run([sys.executable, "-m", "buzon.core.cli", "migrate", "--no-input", "-v", "0"],
                              cwd=cwd, env=run_env(template), capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        _migrated[cwd] = template
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for item in template.iterdir():
        if item.is_file():
            shutil.copy2(item, data_dir / item.name)


def prepare(env: dict[str, str], cwd: Path = ROOT) -> int:
    """Migrate the data directory's database and make the agent; returns the store's id."""
    migrated(Path(env["BUZON_DATA_DIR"]), cwd)
    done = subprocess.run([sys.executable, "-m", "buzon.core.cli", "shell", "-c", _SETUP], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(done.stdout.split()[-1])


@contextmanager
def busy_cpus(count: int = 1) -> Iterator[None]:
    """Busy-loop processes while the block runs, so that start-up races become likely. One by default:
    `make test` runs other tests beside this one, some of them timed."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


@dataclass
class Start:
    ok: bool
    step: str  # the step that failed (or "served")
    detail: str = ""
    seconds: float = 0.0  # from the start to the end of the stop
    stop_seconds: float = 0.0


class StepFailed(Exception):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step, self.detail = step, detail


def _step(name: str, response: requests.Response, status: int) -> requests.Response:
    if response.status_code != status:
        raise StepFailed(name, f"HTTP {response.status_code}: {response.text[:300]}")
    return response


def serve_once(base: str, store: int, address: str, ready_within: float, timeout: float) -> None:
    """Wait for /readyz, sign in, save a customer with `address` and read it back; raise StepFailed."""
    deadline = time.monotonic() + ready_within
    while True:
        try:
            ready = requests.get(f"{base}/readyz", timeout=timeout)
            if ready.status_code == 200 and ready.json()["ready"] is True:
                break
            last = f"HTTP {ready.status_code}: {ready.text[:300]}"
        except requests.ConnectionError as exc:  # not listening yet
            last = str(exc)[:300]
        except requests.Timeout as exc:
            raise StepFailed("readyz", f"no answer in {timeout} s (hung)") from exc
        if time.monotonic() > deadline:
            raise StepFailed("readyz", f"not ready in {ready_within} s: {last}")
        time.sleep(0.2)
    session = requests.Session()
    step = "login form"
    try:
        _step(step, session.get(f"{base}/login/", timeout=timeout), 200)
        step = "sign in"
        signed_in = session.post(f"{base}/login/", timeout=timeout, allow_redirects=False, data={
            "username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        _step(step, signed_in, 302)
        step = "save customer"
        headers = {"X-CSRFToken": session.cookies["csrftoken"]}
        saved = _step(step, session.post(f"{base}/api/v1/customers/", timeout=timeout, headers=headers,
                                         json={"name": "Lucía Pérez", "emails": [address], "store": store}),
                      201).json()
        step = "read customer"
        back = _step(step, session.get(f"{base}/api/v1/customers/{saved['id']}/", timeout=timeout), 200).json()
    except requests.Timeout as exc:
        raise StepFailed(step, f"no answer in {timeout} s (hung)") from exc
    if back["emails"] != [address] or back["name"] != "Lucía Pérez" or back["store"] != store:
        raise StepFailed("read customer", f"read back {back}")


def start_and_serve(env: dict[str, str], store: int, address: str, port: int, log: Path, cwd: Path = ROOT,
                    ready_within: float = 60, timeout: float = 20) -> Start:
    """One `buzon run`: serve once (see serve_once), then stop it with SIGTERM (SIGKILL if stuck)."""
    began = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", "run", "--port", str(port)], cwd=cwd,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        serve_once(f"http://127.0.0.1:{port}", store, address, ready_within, timeout)
        outcome = Start(True, "served")
    except StepFailed as exc:
        outcome = Start(False, exc.step, exc.detail)
    finally:
        stopping = time.monotonic()
        stopped = _stop(proc)
    outcome.seconds, outcome.stop_seconds = time.monotonic() - began, time.monotonic() - stopping
    if outcome.ok and not stopped:
        return Start(False, "stop", "did not stop within 30 s of SIGTERM", outcome.seconds)
    return outcome


def _stop(proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
        return True
    except subprocess.TimeoutExpired:
        return False
    finally:
        try:  # whatever is left of the tree (the whole session: web, worker, sync and their children)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

"""Incoming sync: IDLE arrival latency, 1,000 accounts watched by one process.

Run: .venv/bin/python bench/bench_sync.py   (SQLite in a temp dir, a real Dovecot)
Parts: BENCH_SYNC_PARTS=idle,accounts (default both); BENCH_SYNC_ACCOUNTS=1000.
The first download is bench/bench_download.py: realistic mail until the API lists it, through the
processes a site runs, beside a pipelined floor and the peers (this file used to time raw storage
only, against a floor fetching one chunk at a time).

- IDLE: arrival-to-database p50 < 1 s, p99 < 3 s over 200 messages (bench/mailgen.py) delivered one by one;
- 1,000 accounts watched by one `buzon sync` process: each receives a message within 5 s; peak RSS.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DATA = Path(tempfile.mkdtemp(prefix="buzon-bench-sync-"))
os.environ["BUZON_DATA_DIR"] = str(DATA)
os.environ.setdefault("BUZON_TASKS", "db")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ["DJANGO_SETTINGS_MODULE"] = "buzon.settings"

ACCOUNTS = int(os.environ.get("BENCH_SYNC_ACCOUNTS", "1000"))
PARTS = set(os.environ.get("BENCH_SYNC_PARTS", "idle,accounts").split(","))
IDLE_MESSAGES = 200
rows: list[tuple] = []
notes: list[str] = []


def report(row: tuple) -> None:
    rows.append(row)
    print("  ", " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row), flush=True)


def peak_rss_mb(pid: int | None = None) -> float:
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def setup() -> tuple[object, object]:
    import django

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from tests.support.certs import make_certs
    from tests.support.dovecot import Dovecot

    call_command("migrate", verbosity=0, skip_checks=True)
    certs = make_certs(DATA / "certs")
    settings.TLS_CA_FILE = str(certs.ca_file)
    os.environ["BUZON_CA_FILE"] = str(certs.ca_file)
    return Dovecot(certs=certs).start(), certs


def account(dovecot, port: int, **fields):
    from buzon.mailboxes.models import EmailAccount

    login = fields.pop("login", "")
    address = fields.pop("address", None) or (f"bench-{time.monotonic_ns()}@example.test" if login else
                                                dovecot.add_user())
    acc = EmailAccount(email_address=address, login=login, incoming_enabled=True, incoming_protocol="imap",
                       incoming_host="localhost", incoming_port=port, incoming_security="ssl",
                       initial_sync_count=0, state="idle", **fields)
    acc.set_password("secret")
    acc.save()
    return acc


# ----------------------------------------------------------------------------------- IDLE latency
def idle_latency(dovecot) -> None:
    from bench.mailgen import message
    from buzon.sync.engine import Engine

    acc = account(dovecot, dovecot.imaps_port)
    loop = asyncio.new_event_loop()
    engine = Engine(only={acc.pk})
    thread = threading.Thread(target=lambda: loop.run_until_complete(engine.run()), daemon=True)
    thread.start()
    db = sqlite3.connect(DATA / "buzon.sqlite3", timeout=30)

    def count() -> int:
        return db.execute("SELECT COUNT(*) FROM sync_rawmessage WHERE account_id = ?", (acc.pk,)).fetchone()[0]

    def synced() -> bool:
        row = db.execute("SELECT last_synced_at FROM mailboxes_emailaccount WHERE id = ?", (acc.pk,)).fetchone()
        return row[0] is not None

    deadline = time.monotonic() + 30
    while not synced() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    latencies = []
    for index in range(IDLE_MESSAGES):
        start = time.perf_counter()
        dovecot.deliver(acc.email_address, message(100_000 + index))
        while count() <= index and time.perf_counter() - start < 10:
            time.sleep(0.002)
        latencies.append(time.perf_counter() - start)
    loop.call_soon_threadsafe(engine.stop)
    thread.join(30)
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    report(("IDLE arrival→DB", "loopback", f"Buzón, {IDLE_MESSAGES} messages one by one", IDLE_MESSAGES,
                 sum(latencies), p50, p99))


# ----------------------------------------------------------------------------------- 1,000 accounts
INOTIFY = {"max_user_instances": 8192, "max_user_watches": 1_048_576}


def raise_inotify_limits() -> str:
    """Dovecot learns of new mail for IDLE through inotify, one instance per idling mailbox; past
    the kernel's default of 128 instances per user it falls back to polling the mailbox. Raised
    here (root only) so the benchmark measures Buzón, not Dovecot's fallback."""
    said = []
    for name, wanted in INOTIFY.items():
        path = Path("/proc/sys/fs/inotify") / name
        try:
            current = int(path.read_text())
            if current < wanted:
                path.write_text(str(wanted))
            said.append(f"{name} {current} -> {int(path.read_text())}")
        except OSError as exc:
            said.append(f"{name} not raised ({exc.strerror})")
    return "inotify " + ", ".join(said)


def many_accounts(dovecot) -> None:
    from bench.mailgen import message
    from buzon.mailboxes.models import EmailAccount

    EmailAccount.objects.update(incoming_enabled=False)  # only these accounts, in this process
    notes.append(raise_inotify_limits())

    accounts = [account(dovecot, dovecot.imaps_port) for _ in range(ACCOUNTS)]
    ids = {acc.pk: acc.email_address for acc in accounts}
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="buzon.settings", BUZON_SYNC_CLAIM_BATCH="1000",
               BUZON_LOG_LEVEL="WARNING")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", "sync"], cwd=ROOT, env=env)
    db = sqlite3.connect(DATA / "buzon.sqlite3", timeout=30)
    marks = ",".join(str(pk) for pk in ids)
    try:
        while time.perf_counter() - started < 300:
            ready = db.execute(f"SELECT COUNT(*) FROM mailboxes_emailaccount WHERE id IN ({marks}) "  # noqa: S608
                               "AND last_synced_at IS NOT NULL").fetchone()[0]
            if ready == ACCOUNTS:
                break
            time.sleep(0.2)
        watching = time.perf_counter() - started
        time.sleep(2)  # every folder is in IDLE now
        sent: dict[int, float] = {}
        for pk, address in ids.items():
            dovecot.deliver(address, message(200_000 + pk))
            sent[pk] = time.time()
        arrived: dict[int, float] = {}
        deadline = time.perf_counter() + 30
        while len(arrived) < ACCOUNTS and time.perf_counter() < deadline:
            for pk, when in db.execute(
                f"SELECT account_id, MIN(received_at) FROM sync_rawmessage WHERE account_id IN ({marks}) "  # noqa: S608
                "GROUP BY account_id"
            ):
                if pk not in arrived:
                    arrived[pk] = _timestamp(when)
            time.sleep(0.1)
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    delays = sorted(arrived[pk] - sent[pk] for pk in arrived)
    within = sum(1 for d in delays if d <= 5)
    report((f"{ACCOUNTS} accounts, one process", "loopback",
                 f"all watched after {watching:.1f} s; {within}/{ACCOUNTS} got mail within 5 s", len(delays),
                 max(delays) if delays else float("nan"), statistics.median(delays) if delays else float("nan"),
                 rss))


def _timestamp(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace(" ", "T")).timestamp() if "+" in value or "Z" in value else \
        datetime.fromisoformat(value.replace(" ", "T") + "+00:00").timestamp()


# ----------------------------------------------------------------------------------- main
def main() -> None:
    dovecot, _certs = setup()
    try:
        if "idle" in PARTS:
            idle_latency(dovecot)
        if "accounts" in PARTS:
            many_accounts(dovecot)
    finally:
        dovecot.cleanup()
    print()
    print(f"{'benchmark':<28} {'network':<10} {'who':<48} {'msgs':>6} {'seconds':>8} {'p50 | worst':>12} "
          f"{'p99 | RSS':>20}")
    for name, where, who, count, seconds, rate, ratio in rows:
        print(f"{name:<28} {where:<10} {who:<48} {count:>6} {seconds:>8.2f} {rate:>12.3f} {ratio:>20.3f}")
    print("IDLE row: total seconds, then p50 and p99 arrival-to-database latency in seconds")
    print("accounts row: worst and median arrival-to-database seconds, then the sync process's peak RSS in MB")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()

"""Incoming sync: first download, IDLE arrival latency, 1,000 accounts watched by one process.

Run: .venv/bin/python bench/bench_sync.py [N]   (default 10000; SQLite in a temp dir, a real Dovecot)
Parts: BENCH_SYNC_PARTS=loopback,proxy,idle,accounts (default all); BENCH_SYNC_BASELINES=0 skips mbsync
and getmail; BENCH_SYNC_ACCOUNTS=1000.

Targets (issue 3), each measured in this run against baselines run on the same mailbox:
- first download of N messages (mixed plain/HTML, 10% with an attachment), stored and listable:
  >= 1,000 msg/s on loopback; through a 20 ms round-trip proxy >= half the floor, a bare imaplib
  loop fetching UID ranges in chunks into the same database. Also: mbsync (Debian isync) into a
  Maildir, and django-mailbox's `getmail` (one message per round trip, and it deletes what it
  reads) on a sample of GETMAIL_SAMPLE messages, since at ~50 msg/s all N would take minutes;
- IDLE: arrival-to-database p50 < 1 s, p99 < 3 s over 200 messages delivered one by one;
- 1,000 accounts watched by one `buzon sync` process: each receives a message within 5 s; peak RSS.
"""

from __future__ import annotations

import asyncio
import imaplib
import io
import os
import resource
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

DATA = Path(tempfile.mkdtemp(prefix="buzon-bench-sync-"))
os.environ["BUZON_DATA_DIR"] = str(DATA)
os.environ.setdefault("BUZON_TASKS", "db")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_bench_settings = types.ModuleType("bench_sync_settings")
exec("from buzon.settings import *  # noqa: F403", _bench_settings.__dict__)  # noqa: S102
_bench_settings.INSTALLED_APPS = [*_bench_settings.INSTALLED_APPS, "django_mailbox"]
sys.modules["bench_sync_settings"] = _bench_settings
os.environ["DJANGO_SETTINGS_MODULE"] = "bench_sync_settings"

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
ACCOUNTS = int(os.environ.get("BENCH_SYNC_ACCOUNTS", "1000"))
PARTS = set(os.environ.get("BENCH_SYNC_PARTS", "loopback,proxy,idle,accounts").split(","))
IDLE_MESSAGES = 200
GETMAIL_SAMPLE = {0.0: 1000, 0.020: 200}
CHUNK = 250
RTT_S = 0.020
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


def fill(dovecot, user: str, count: int) -> None:
    """Write `count` messages straight into the user's Maildir (as local delivery does), once."""
    from bench.mailgen import message

    new = dovecot.maildir(user) / "new"
    for index in range(count):
        path = new / f"{1_700_000_000 + index}.bench{index}.localhost"
        path.write_bytes(message(index))
        os.chown(path, dovecot.uid, dovecot.gid)
    dovecot.doveadm("index", "-u", user, "INBOX")  # a real server has its index already


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


# ----------------------------------------------------------------------------------- contenders
def run_buzon(acc) -> float:
    from buzon.sync.models import RawMessage
    from buzon.sync.once import sync_once

    start = time.perf_counter()
    asyncio.run(sync_once([acc.pk], io.StringIO()))
    elapsed = time.perf_counter() - start
    stored = RawMessage.objects.filter(account=acc).exclude(subject="").count()  # listable: headers parsed
    assert stored == N, f"buzon stored {stored} of {N}"
    return elapsed


def run_floor(user: str, port: int) -> float:
    """Bare imaplib: UID SEARCH, UID FETCH in ranges of CHUNK, bytes into the same database."""
    db = sqlite3.connect(DATA / "buzon.sqlite3", timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS bench_floor (owner TEXT, uid INTEGER, data BLOB)")
    start = time.perf_counter()
    imap = imaplib.IMAP4_SSL("localhost", port, ssl_context=ssl.create_default_context(
        cafile=os.environ["BUZON_CA_FILE"]))
    imap.login(user, "secret")
    imap.select("INBOX", readonly=True)
    uids = [int(u) for u in imap.uid("SEARCH", "ALL")[1][0].split()]
    stored = 0
    for i in range(0, len(uids), CHUNK):
        part = uids[i:i + CHUNK]
        _, data = imap.uid("FETCH", f"{part[0]}:{part[-1]}", "(UID BODY.PEEK[])")
        batch = [(user, 0, item[1]) for item in data if isinstance(item, tuple)]
        db.executemany("INSERT INTO bench_floor VALUES (?, ?, ?)", batch)
        db.commit()
        stored += len(batch)
    imap.logout()
    elapsed = time.perf_counter() - start
    assert stored == N, f"floor stored {stored}"
    return elapsed


def run_mbsync(user: str, port: int) -> float | None:
    if not Path("/usr/bin/mbsync").exists():
        return None
    box = DATA / f"mbsync-{port}-{user}"
    box.mkdir()
    conf = DATA / f"mbsyncrc-{port}-{user}"
    conf.write_text(f"""IMAPAccount bench
Host localhost
Port {port}
User {user}
Pass secret
SSLType IMAPS
CertificateFile {os.environ["BUZON_CA_FILE"]}

IMAPStore remote
Account bench

MaildirStore local
Path {box}/
Inbox {box}/INBOX

Channel bench
SyncState *
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
""")
    start = time.perf_counter()
    result = subprocess.run(["mbsync", "-q", "-c", str(conf), "bench"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print("mbsync failed:", result.stderr.strip()[:300])
        return None
    got = sum(1 for _ in (box / "INBOX" / "new").iterdir()) + sum(1 for _ in (box / "INBOX" / "cur").iterdir())
    assert got == N, f"mbsync got {got}"
    return elapsed


def run_getmail(user: str, port: int, sample: int) -> tuple[float, int]:
    from django_mailbox.models import Mailbox

    mailbox = Mailbox.objects.create(name=user, uri=f"imap+ssl://{user.replace('@', '%40')}:secret@localhost:{port}")
    start = time.perf_counter()
    got = 0
    while got < sample:
        got += sum(1 for _ in mailbox.get_new_mail())
    return time.perf_counter() - start, got


def first_download(dovecot, user: str, proxy_port: int | None, rtt: float) -> None:
    """Every contender reads the same mailbox, read-only (EXAMINE / readonly SELECT / pull)."""
    port = proxy_port or dovecot.imaps_port
    where = "loopback" if not proxy_port else f"{int(rtt * 1000)} ms RTT"
    floor = run_floor(user, port)
    report(("first download", where, f"imaplib floor (chunks of {CHUNK})", N, floor, N / floor, 1.0))
    buzon = run_buzon(account(dovecot, port, login=user))
    report(("first download", where, "Buzón", N, buzon, N / buzon, floor / buzon))
    if os.environ.get("BENCH_SYNC_BASELINES", "1") == "0":
        return
    mbsync = run_mbsync(user, port)
    if mbsync:
        report(("first download", where, "mbsync (isync)", N, mbsync, N / mbsync, floor / mbsync))
    getmail_user = dovecot.add_user()  # getmail deletes what it reads: a mailbox of its own
    fill(dovecot, getmail_user, GETMAIL_SAMPLE[rtt])
    getmail, got = run_getmail(getmail_user, port, GETMAIL_SAMPLE[rtt])
    report(("first download", where, "django-mailbox getmail", got, getmail, got / getmail,
            (got / getmail) / (N / floor)))


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


# ----------------------------------------------------------------------------------- proxy + main
def _proxy(target: int, rtt: float, ready: object) -> None:
    from tests.support.proxy import Proxy

    proxy = Proxy(target, latency_s=rtt).start()
    ready.put(proxy.port)  # type: ignore[attr-defined]
    threading.Event().wait()


def main() -> None:
    import multiprocessing

    dovecot, _certs = setup()
    try:
        user = dovecot.add_user()
        fill(dovecot, user, N)
        if "loopback" in PARTS:
            first_download(dovecot, user, None, 0.0)
        rss = peak_rss_mb()
        queue = multiprocessing.get_context("fork").Queue()
        proxy = multiprocessing.get_context("fork").Process(target=_proxy, args=(dovecot.imaps_port, RTT_S, queue),
                                                            daemon=True)
        proxy.start()
        try:
            if "proxy" in PARTS:
                first_download(dovecot, user, queue.get(timeout=10), RTT_S)
        finally:
            proxy.terminate()
        if "idle" in PARTS:
            idle_latency(dovecot)
        if "accounts" in PARTS:
            many_accounts(dovecot)
    finally:
        dovecot.cleanup()
    print()
    print(f"{'benchmark':<28} {'network':<10} {'who':<48} {'msgs':>6} {'seconds':>8} {'msg/s | p50':>12} "
          f"{'vs floor | p99 | RSS':>20}")
    for name, where, who, count, seconds, rate, ratio in rows:
        print(f"{name:<28} {where:<10} {who:<48} {count:>6} {seconds:>8.2f} {rate:>12.3f} {ratio:>20.3f}")
    from bench.mailgen import message

    average = statistics.mean(len(message(i)) for i in range(2000)) / 1024
    print(f"\nmailbox: mixed plain/HTML, 10% with a 5-60 KB attachment, {average:.1f} KB per message on average")
    print(f"first-download rows: msg/s and speed relative to the imaplib floor on the same network; "
          f"Buzón's process peak RSS after its loopback download: {rss:.0f} MB")
    print("IDLE row: total seconds, then p50 and p99 arrival-to-database latency in seconds")
    print("accounts row: worst and median arrival-to-database seconds, then the sync process's peak RSS in MB")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()

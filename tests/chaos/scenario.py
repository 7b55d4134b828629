"""One load-and-faults run, shared by tests/chaos (short, in CI) and bench/bench_load.py (full size).

Real servers only: a private Dovecot, a private PostgreSQL cluster (restarted mid-run), a private
Redis (when asked; restarted mid-run, losing its queue), an aiosmtpd sink in a process of its own, and
`buzon sync` / `buzon worker` processes that are killed with SIGKILL at random and restarted.
Afterwards every message is counted against what Dovecot and the SMTP sink hold.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.leases import CountingProxy
from tests.chaos.services import ROOT, Fleet, PrivatePostgres, PrivateRedis, cpu_s, host_cpu, rss_kb
from tests.chaos.sink import SinkProcess
from tests.support.certs import TestCerts
from tests.support.dovecot import Dovecot

SENDERS = 3  # processes queueing outgoing mail, each at a third of the rate


@dataclass
class Scenario:
    accounts: int = 20
    in_rate: float = 10.0  # messages delivered into Dovecot per second
    out_rate: float = 3.0  # messages queued for sending per second
    seconds: float = 40.0
    sync_procs: int = 2
    workers: int = 2
    kill_every: float = 5.0  # 0: no kills
    restart_dovecot: bool = True
    restart_postgres: bool = True
    restart_redis: bool = True
    redis: bool = False  # RQ on a private Redis instead of the database queue
    settle_timeout: float = 90.0
    seed: int = 6
    lease_s: int = 4  # short in CI so takeovers fit in the test; the bench uses a production-like one
    proxy: bool = True  # count connections per account through a proxy (False: straight to Dovecot, to time it)
    kill_kinds: tuple[str, ...] = ()  # only these kinds of process ("sync", "worker"); all by default
    stall_every: float = 0.0  # SIGSTOP a sync process this often (0: never), for lease_s + 2 s: takeovers
    mail: Callable[[str, int], bytes] | None = None  # (subject, n) -> raw incoming mail; a small one by default
    relay_delay_s: float = 0.0  # the SMTP sink answers each DATA this late (a slow relay)
    env: dict[str, str] = field(default_factory=dict)  # settings for the Buzón processes over the test's


@dataclass
class Outcome:
    delivered: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    report: dict[str, object] = field(default_factory=dict)
    sink_total: int = 0
    sink_distinct: int = 0
    sink_missing: int = 0
    kills: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    restarts: int = 0
    overlaps: list[str] = field(default_factory=list)
    proxy_connections: int = 0
    rss_start: dict[str, int] = field(default_factory=dict)
    rss_end: dict[str, int] = field(default_factory=dict)
    # CPU seconds each process used while the load ran (only processes that were never restarted),
    # and the share of the whole host's CPU that was busy then: saturation shows here.
    cpu_load: dict[str, float] = field(default_factory=dict)
    host_busy: float = 0.0
    settle_s: float = 0.0
    settled: bool = False
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    send_latencies: list[float] = field(default_factory=list)  # queued -> in the SMTP sink (s)
    unstored: dict[str, str] = field(default_factory=dict)  # delivered but no raw message: subject -> address


class SinkClock:
    """Queued -> in the sink, for each message, from the times the sink logged it received."""

    def __init__(self, sink: SinkProcess) -> None:
        self.sink, self.seen, self.latencies = sink, 0, []  # type: ignore[var-annotated]

    def poll(self) -> None:
        received = self.sink.received()
        for when, _message_id, subject in received[self.seen:]:
            parts = subject.split()
            if len(parts) == 3 and parts[0] == "out":
                self.latencies.append(when - float(parts[1]))
        self.seen = len(received)


def _agent(env: dict[str, str], *args: str, timeout: float = 120) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-m", "tests.chaos.agent", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"agent {args[0]} failed: {result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _mail(subject: str, n: int) -> bytes:
    return (f"From: Customer {n} <customer{n % 50}@example.test>\r\nTo: inbox@example.test\r\n"
            f"Subject: {subject}\r\nMessage-ID: <chaos-{n}-{time.time_ns()}@example.test>\r\n"
            f"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\n\r\nHello, this is incoming message {n}.\r\n").encode()


class Deliverer(threading.Thread):
    """Writes `rate` messages a second into random mailboxes, the way an MTA's local delivery does."""

    def __init__(self, dovecot: Dovecot, addresses: list[str], rate: float, seconds: float, rng: random.Random,
                 make: Callable[[str, int], bytes] | None = None):
        super().__init__(name="deliverer", daemon=True)
        self.dovecot, self.addresses, self.rate, self.seconds, self.rng = dovecot, addresses, rate, seconds, rng
        self.make = make or _mail
        self.subjects: list[str] = []
        self.mailbox: dict[str, str] = {}  # subject -> address it was delivered to

    def run(self) -> None:
        started = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - started) < self.seconds:
            while n < int(elapsed * self.rate):
                subject = f"in {time.time():.3f} {n}"
                address = self.rng.choice(self.addresses)
                self.dovecot.deliver(address, self.make(subject, n))
                self.mailbox[subject] = address
                self.subjects.append(subject)
                n += 1
            time.sleep(0.01)


def _settled(report: dict[str, object], delivered: int, queued: int, sink_distinct: int) -> bool:
    raw_status = dict(report["raw_status"])  # type: ignore[call-overload]
    outgoing = dict(report["outgoing"])  # type: ignore[call-overload]
    accounts = dict(report["accounts"])  # type: ignore[call-overload]
    return (report["message_subjects"] == delivered and raw_status.get("stored", 0) == 0
            and outgoing.get("sent", 0) >= queued and sink_distinct >= queued
            and set(accounts) == {"idle"})


def run(sc: Scenario, workdir: Path, certs: TestCerts, log: object = print) -> Outcome:
    rng = random.Random(sc.seed)
    outcome = Outcome()
    dovecot = Dovecot(certs=certs).start()  # its own world-readable temp dir (Dovecot drops privileges)
    pg_dir = Path(tempfile.mkdtemp(prefix="buzon-pg-"))
    pg_dir.chmod(0o755)
    pg = PrivatePostgres(pg_dir).start()
    redis = PrivateRedis().start() if sc.redis else None
    sink = SinkProcess(workdir, sc.relay_delay_s).start()
    fleet: Fleet | None = None
    proxy: CountingProxy | None = None
    try:
        addresses = [dovecot.add_user() for _ in range(sc.accounts)]
        proxy = CountingProxy(dovecot.imaps_port, addresses).start() if sc.proxy else None
        ports = proxy.ports if proxy is not None else dict.fromkeys(addresses, dovecot.imaps_port)
        env = _environment(workdir, pg.url, certs, redis.url if redis else "")
        env["BUZON_SYNC_LEASE"] = str(sc.lease_s)
        env.update(sc.env)
        subprocess.run([sys.executable, "-m", "buzon.core.cli", "migrate", "-v", "0"], cwd=ROOT, env=env,
                       check=True, timeout=300)
        (workdir / "addresses.json").write_text(json.dumps(ports))
        _agent(env, "setup", "--addresses", str(workdir / "addresses.json"), "--smtp-port", str(sink.port))
        fleet = Fleet(env, workdir / "logs")
        for i in range(sc.sync_procs):
            fleet.add(f"sync-{i + 1}", "sync")
        for i in range(sc.workers):
            fleet.add(f"worker-{i + 1}", "worker")
        _wait_ready(proxy, dovecot, fleet, sc)
        outcome.rss_start = {name: rss_kb(pid) for name, pid in fleet.pids().items()}
        pids_start = fleet.pids()
        cpu_start = {name: cpu_s(pid) for name, pid in pids_start.items()}
        host_start = host_cpu()
        # Several users queue mail at once (one process queues ~25/s on a busy 2-core host).
        senders = [subprocess.Popen([sys.executable, "-m", "tests.chaos.agent", "send", "--rate",
                                     str(sc.out_rate / SENDERS), "--seconds", str(sc.seconds),
                                     "--out", str(workdir / f"queued-{i}.json")],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=open(workdir / f"send-{i}.log", "wb"))  # noqa: SIM115
                   for i in range(SENDERS)]
        deliverer = Deliverer(dovecot, addresses, sc.in_rate, sc.seconds, rng, sc.mail)
        deliverer.start()
        clock = SinkClock(sink)
        _chaos(sc, fleet, dovecot, pg, redis, rng, outcome, log, clock)
        deliverer.join()
        for sender in senders:
            sender.wait(timeout=180)
        outcome.rss_end = {name: rss_kb(pid) for name, pid in fleet.pids().items()}
        outcome.cpu_load = {name: cpu_s(pid) - cpu_start[name] for name, pid in fleet.pids().items()
                            if pids_start.get(name) == pid}
        host_end = host_cpu()
        outcome.host_busy = (host_end[0] - host_start[0]) / max(host_end[1] - host_start[1], 1e-9)
        outcome.delivered = list(deliverer.subjects)
        outcome.queued = [m for i in range(SENDERS) for m in json.loads((workdir / f"queued-{i}.json").read_text())]
        log(f"load done: {len(outcome.delivered)} delivered, {len(outcome.queued)} queued; settling")
        started = time.monotonic()
        while True:
            fleet.keep_up()
            clock.poll()
            sink_ids = Counter(message_id for _, message_id, _ in sink.received())
            outcome.report = _agent(env, "report")
            if _settled(outcome.report, len(outcome.delivered), len(outcome.queued), len(sink_ids)):
                outcome.settled = True
                break
            if time.monotonic() - started > sc.settle_timeout:
                log(f"not settled: {outcome.report}, sink {len(sink_ids)}")  # type: ignore[operator]
                break
            time.sleep(1)
        outcome.settle_s = time.monotonic() - started
        time.sleep(1)  # anything still in flight would show now
        outcome.report = _agent(env, "report", "--subjects")
        stored = set(outcome.report["raw_subject_list"])  # type: ignore[call-overload]
        outcome.unstored = {s: deliverer.mailbox[s] for s in outcome.delivered if s not in stored}
        _diagnose(env, dovecot, outcome, log)
        sink_ids = Counter(message_id for _, message_id, _ in sink.received())
        clock.poll()
        outcome.send_latencies = clock.latencies
        outcome.sink_total = sum(sink_ids.values())
        outcome.sink_distinct = len(sink_ids)
        outcome.sink_missing = len(set(outcome.queued) - set(sink_ids))
        outcome.kills = [name for _t, name, _pid in fleet.kills]
        outcome.restarts = fleet.restarts
        if proxy is not None:
            outcome.overlaps = list(proxy.overlaps)
            outcome.proxy_connections = proxy.connections
    finally:
        if fleet is not None:
            outcome.exit_codes = fleet.stop()
        sink.stop()
        if proxy is not None:
            proxy.stop()
        if redis is not None:
            redis.stop()
        pg.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)
        dovecot.cleanup()
    return outcome


def _diagnose(env: dict[str, str], dovecot: Dovecot, outcome: Outcome, log: object) -> None:
    """For each message Dovecot holds but Buzón never stored: its UID there, and the account's
    cursor, lease and stored UIDs here, so a loss can be traced in the processes' logs."""
    for subject, address in sorted(outcome.unstored.items())[:20]:
        found = dovecot.doveadm("search", "-u", address, "mailbox", "INBOX", "header", "subject", subject)
        known = _agent(env, "account", "--address", address)
        log(f"NOT STORED {subject!r} in {address} (dovecot: {found.strip()}): {json.dumps(known)}")  # type: ignore[operator]


def _logged_in(dovecot: Dovecot) -> int:
    """Users with an IMAP session open, as Dovecot itself counts them."""
    return sum(1 for line in dovecot.doveadm("who").splitlines()[1:] if "imap" in line)


def _wait_ready(proxy: CountingProxy | None, dovecot: Dovecot, fleet: Fleet, sc: Scenario,
                timeout: float = 120) -> None:
    """Every account connected (IDLE) and every worker polling, so start-up is not measured as lag."""
    deadline = time.monotonic() + timeout
    markers = ("Starting worker", "started with PID")  # db_worker, rq
    while time.monotonic() < deadline:
        fleet.keep_up()
        connected = (sum(1 for n in proxy.open.values() if n) if proxy is not None else _logged_in(dovecot)) \
            == sc.accounts
        logs = [(fleet.logs / f"worker-{i + 1}.log") for i in range(sc.workers)]
        polling = all(p.exists() and any(m in p.read_text(errors="replace") for m in markers) for p in logs)
        if connected and polling:
            time.sleep(1)
            return
        time.sleep(0.3)
    raise TimeoutError("the Buzón processes did not come up")


def _chaos(sc: Scenario, fleet: Fleet, dovecot: Dovecot, pg: PrivatePostgres, redis: PrivateRedis | None,
           rng: random.Random, outcome: Outcome, log: object, clock: SinkClock) -> None:
    started = time.monotonic()
    faults: list[tuple[float, str]] = []
    if sc.restart_dovecot:
        faults.append((0.3, "dovecot"))
    if sc.restart_redis and redis is not None:
        faults.append((0.5, "redis"))
    if sc.restart_postgres:
        faults.append((0.7, "postgres"))
    next_kill = started + sc.kill_every if sc.kill_every else float("inf")
    next_stall = started + sc.stall_every if sc.stall_every else float("inf")
    while (elapsed := time.monotonic() - started) < sc.seconds:
        fleet.keep_up()
        clock.poll()
        if faults and elapsed >= faults[0][0] * sc.seconds:
            _at, what = faults.pop(0)
            {"dovecot": dovecot.restart, "redis": lambda: redis and redis.restart(), "postgres": pg.restart}[what]()
            outcome.events.append(f"{elapsed:.0f}s restart {what}")
            log(f"{elapsed:5.1f}s restarted {what}")  # type: ignore[operator]
        if time.monotonic() >= next_kill:
            name = fleet.kill_random(rng, sc.kill_kinds)
            outcome.events.append(f"{elapsed:.0f}s kill -9 {name}")
            log(f"{elapsed:5.1f}s kill -9 {name}")  # type: ignore[operator]
            next_kill += sc.kill_every
        if time.monotonic() >= next_stall:
            name = fleet.stall(rng, sc.lease_s + 2)
            outcome.events.append(f"{elapsed:.0f}s SIGSTOP {name} for {sc.lease_s + 2} s")
            log(f"{elapsed:5.1f}s SIGSTOP {name}")  # type: ignore[operator]
            next_stall += sc.stall_every
        time.sleep(0.2)


def _environment(workdir: Path, database_url: str, certs: TestCerts, redis_url: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUZON_", "DJANGO_", "DATABASE_", "REDIS_"))}
    env.update({
        "DATABASE_URL": database_url, "BUZON_DATA_DIR": str(workdir / "data"), "BUZON_CA_FILE": str(certs.ca_file),
        "BUZON_TASKS": "rq" if redis_url else "db", "PYTHONUNBUFFERED": "1", "BUZON_LOG_LEVEL": "INFO",
        # short leases, heartbeats and sweeps, so recoveries happen within a two-minute test
        "BUZON_SYNC_LEASE": "4", "BUZON_SYNC_REFRESH": "0.3", "BUZON_SYNC_BACKOFF_BASE": "0.5",
        "BUZON_SYNC_BACKOFF_MAX": "3", "BUZON_SYNC_TIMEOUT": "10", "BUZON_HEARTBEAT": "1",
        "BUZON_INBOUND_SWEEP": "3", "BUZON_INBOUND_REQUEUE_AFTER": "10", "BUZON_OUTBOUND_SWEEP": "3",
        "BUZON_OUTBOUND_CLAIM_LEASE": "8", "BUZON_OUTBOUND_RETRY_BASE": "1", "BUZON_OUTBOUND_RETRY_MAX": "5",
        "BUZON_OUTBOUND_SMTP_TIMEOUT": "10",
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env

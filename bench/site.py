"""A Buzón site for the end-to-end benches: a data directory, its processes (`buzon web`,
`buzon worker`, `buzon sync`) started as a site runs them, an API token, and the API read the way
an integrator reads it. Also where every bench writes its figures (JSON, joined by bench/report.py).
"""

from __future__ import annotations

import compileall
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from buzon.core import run_plan  # noqa: E402
from tests.support.live_run import run_env  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

RESULTS = Path(os.environ.get("BENCH_RESULTS", ROOT / "var" / "bench"))
_TEMPLATE: Path | None = None  # one migrated data directory, copied for each fresh site


def stop_on_term() -> None:
    """SIGTERM (a `timeout`, a `kill`) ends a bench as Ctrl-C does, through its `finally` blocks, which
    stop its sites' processes, its sink and its private PostgreSQL cluster; by default SIGTERM ends
    Python at once and leaves them running (a cluster under /tmp/buzon-bench-*, holding its port)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def full() -> bool:
    """Full size when BENCH_FULL=1 (or --full); quick, small defaults otherwise."""
    return os.environ.get("BENCH_FULL", "") in {"1", "true", "yes"} or "--full" in sys.argv


def machine() -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, load average {load} (shared machine)"


def write_results(bench: str, rows: list[dict[str, Any]], notes: list[str]) -> Path:
    """rows: {"figure", "value", "unit", "floor", "floor_value", "peer", "peer_value", "note"}."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.json"
    path.write_text(json.dumps({"bench": bench, "mode": "full" if full() else "quick", "machine": machine(),
                                "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows,
                                "notes": notes}, indent=1, ensure_ascii=False))
    return path


def private_postgres(work: Path) -> Any:
    """A private PostgreSQL cluster for a bench (tests.chaos.services.PrivatePostgres), started, as
    crash-safe as SQLite in WAL mode with synchronous=NORMAL: fsync and full-page writes on, commits
    not waiting for their WAL flush (synchronous_commit off). Its `url` names the cluster; give it
    to Site as DATABASE_URL. Stop it with .stop()."""
    from tests.chaos.services import PrivatePostgres

    work.chmod(0o755)  # the cluster runs as the postgres user
    postgres = PrivatePostgres(work / "postgres")
    with (postgres.dir / "postgresql.conf").open("a") as conf:  # the last line wins
        conf.write("fsync = on\nfull_page_writes = on\n")
        if _statements():  # statements inside the triggers' functions too
            conf.write("shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
                       "pg_stat_statements.track_planning = on\n")
    return postgres.start()


def _statements() -> int:
    """BENCH_PG_STATEMENTS=N: each PostgreSQL site prints, when it stops, its N statements that took
    the most server time (pg_stat_statements; a statement run by a trigger is counted on its own and
    within the statement that fired it)."""
    return int(os.environ.get("BENCH_PG_STATEMENTS") or 0)


def pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True)


def with_database(url: str, name: str) -> str:
    return f"{url.rsplit('/', 1)[0]}/{name}"


class Site:
    """One data directory (SQLite, WAL, synchronous=NORMAL as shipped) and its processes.

    With DATABASE_URL (a PostgreSQL cluster's URL), each site gets a database of its own on that
    cluster, cloned from one migrated for the bench run (CREATE DATABASE … TEMPLATE), as a fresh
    SQLite file is copied: sites of the same run do not see each other's rows."""

    _sites = 0

    def __init__(self, **extra_env: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="buzon-bench-site-"))
        cluster = extra_env.pop("DATABASE_URL", "")
        self.env = run_env(self.dir / "data", BUZON_LOG_LEVEL="WARNING", **extra_env)
        # The heartbeat as a site has it (every 10 s), not the tests' 1 s: each beat opens a
        # connection of its own, and on PostgreSQL a second's beats from every process were four
        # new sessions a second, a tax on the timed run that no installed site pays.
        if "BUZON_HEARTBEAT" not in extra_env:
            self.env.pop("BUZON_HEARTBEAT", None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.base = ""
        self.token = ""
        self._clients = threading.local()  # post_json's connection, one per client thread
        global _TEMPLATE
        if _TEMPLATE is None:  # migrate once per bench run, copy after
            # Bytecode, as an installed site has it (pip compiles what it installs): the first site
            # of a fresh checkout would otherwise compile every module it imports inside the timed run.
            compileall.compile_dir(ROOT / "buzon", quiet=1)
            _TEMPLATE = Path(tempfile.mkdtemp(prefix="buzon-bench-template-"))
            template_env = dict(self.env, BUZON_DATA_DIR=str(_TEMPLATE / "data"))
            if cluster:
                with pg_connect(cluster) as db:
                    db.execute("DROP DATABASE IF EXISTS bench_template")
                    db.execute("CREATE DATABASE bench_template")
                if _statements():
                    with pg_connect(with_database(cluster, "bench_template")) as db:
                        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                template_env["DATABASE_URL"] = with_database(cluster, "bench_template")
            self._manage(template_env, "migrate", "--no-input", "-v", "0")
        shutil.copytree(_TEMPLATE / "data", self.dir / "data")
        self.db_path = self.dir / "data" / "buzon.sqlite3"
        if cluster:
            Site._sites += 1
            name = f"bench_site_{Site._sites}"
            with pg_connect(cluster) as db:
                db.execute(f"DROP DATABASE IF EXISTS {name}")
                db.execute(f"CREATE DATABASE {name} TEMPLATE bench_template")
            self.env["DATABASE_URL"] = with_database(cluster, name)

    @staticmethod
    def _manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
        done = subprocess.run([sys.executable, "-m", "buzon.core.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"buzon {' '.join(args[:2])} failed: {done.stderr[-3000:]}")
        return done.stdout

    def manage(self, *args: str, timeout: float = 600) -> str:
        return self._manage(self.env, *args, timeout=timeout)

    def shell(self, code: str) -> str:
        return self.manage("shell", "-v", "0", "-c", code)

    def admin(self) -> str:
        """An administrator and an API token for it, as `buzon token` makes one."""
        self.shell("from django.contrib.auth import get_user_model\n"
                   "get_user_model().objects.create_superuser('bench', 'bench@example.test', 'bench-pass-1')")
        self.token = self.manage("token", "bench").strip().splitlines()[-1]
        return self.token

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", *args], cwd=ROOT, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def web(self) -> str:
        port = free_port()
        # gunicorn workers as `buzon run` gives them (buzon.core.run_plan: BUZON_WEB_WORKERS, or per core)
        self.start("web", "web", "--port", str(port))
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/readyz", timeout=5).status_code == 200:
                    return self.base
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"buzon web did not get ready: {self.log('web')[-2000:]}")

    def workers(self) -> list[subprocess.Popen[bytes]]:
        """The workers `buzon run` starts (buzon.core.run_plan): one for every queue, and one for the
        pipeline and delivery per further core (BUZON_INBOUND_WORKERS)."""
        return [self.worker(*args[1:], name=name) for name, args in run_plan.children("127.0.0.1", 0)
                if args[0] == "worker"]

    def worker(self, *args: str, name: str = "worker") -> subprocess.Popen[bytes]:
        """`buzon worker` as the site runs it; waits for its first heartbeat (then it polls its queue)."""
        proc = self.start(name, "worker", *args)
        deadline = time.monotonic() + 90
        while not self.query("SELECT COUNT(*) FROM core_processheartbeat WHERE kind = 'worker' AND pid = ?",
                             (proc.pid,))[0][0]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"buzon worker did not start: {self.log(name)[-2000:]}")
            time.sleep(0.1)
        return proc

    def log(self, name: str) -> str:
        path = self.dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"buzon {name} exited ({proc.returncode}): {self.log(name)[-2000:]}")

    @property
    def postgres(self) -> bool:
        return bool(self.env.get("DATABASE_URL"))

    def epoch(self, column: str) -> str:
        """SQL for a datetime column as seconds since the epoch, on this site's database."""
        return f"EXTRACT(EPOCH FROM {column})" if self.postgres else f"(julianday({column}) - 2440587.5) * 86400"

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read-only look at the database, as a monitoring script would take it (`?` marks parameters)."""
        url = self.env.get("DATABASE_URL")
        if url:  # PostgreSQL
            with pg_connect(url) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[no-any-return]
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def print_statements(self, top: int) -> None:
        rows = self.query(
            "SELECT round(total_exec_time + total_plan_time)::int, round(total_plan_time)::int, calls, rows, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 160) "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY total_exec_time + total_plan_time DESC LIMIT ?", (top,))
        print(f"  server time by statement ({self.env['DATABASE_URL'].rsplit('/', 1)[1]}): ms (of which planning), "
              "calls, rows", flush=True)
        for ms, planning, calls, count, text in rows:
            print(f"    {ms:7d} ({planning:5d}) {calls:6d} {count:7d}  {text}", flush=True)

    def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        """POST `body` as JSON with the site's token, over this thread's kept-alive connection (as an
        integrator's HTTP client keeps one): (status, decoded JSON answer). Lighter than `api`
        (requests builds a session and a connection per call: ~2 ms of CPU on the cores the site
        uses), so the load generator takes less of the machine it measures."""
        local = self._clients
        if getattr(local, "base", None) != self.base:
            host, port = self.base.removeprefix("http://").rsplit(":", 1)
            local.base, local.conn = self.base, http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        for attempt in (1, 2):
            try:
                local.conn.request("POST", path, json.dumps(body).encode(), headers)
                answer = local.conn.getresponse()
                data = answer.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                local.conn.close()  # the server closed a kept-alive connection: once more, on a new one
                if attempt == 2:
                    raise
        if answer.getheader("Connection", "").lower() == "close":
            local.conn.close()
        return answer.status, json.loads(data) if data else None

    def api(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(kwargs.pop("method", "GET"), f"{self.base}{path}", headers=headers, timeout=120,
                                **kwargs)

    def listed(self, account_ids: list[int]) -> int:
        """Incoming messages the API lists for these accounts, every page walked (1,000 a page)."""
        total = 0
        for account in account_ids:
            url: str | None = f"/api/v1/messages/?account={account}&limit=1000"
            while url:
                answer = self.api(url)
                answer.raise_for_status()
                page = answer.json()
                total += sum(1 for m in page["results"] if m["direction"] == "in")
                url = page["next"].removeprefix(self.base) if page.get("next") else None
        return total

    def stop(self, name: str | None = None) -> None:
        for key in [name] if name else list(self.procs):
            proc = self.procs.pop(key, None)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def cleanup(self) -> None:
        self.stop()
        if self.postgres and _statements():
            self.print_statements(_statements())
        if os.environ.get("BENCH_KEEP_LOGS"):  # the processes' logs, for a look after the bench
            kept = Path(os.environ["BENCH_KEEP_LOGS"]) / self.dir.name
            shutil.copytree(self.dir / "logs", kept, dirs_exist_ok=True)
            print(f"logs kept in {kept}", flush=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def cleanup_template() -> None:
    if _TEMPLATE is not None:
        shutil.rmtree(_TEMPLATE, ignore_errors=True)

"""Servers of our own for the chaos test and the load bench: a private PostgreSQL cluster and a
private Redis on free ports, so restarting them never disturbs anyone else's tests, and the Buzón
processes themselves (`buzon sync`, `buzon worker`) with kill -9 and restart."""

from __future__ import annotations

import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} (Debian package postgresql)")
    return found[-1]


def postgres_available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _as_postgres(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs)  # type: ignore[call-overload]


class PrivatePostgres:
    """A throw-away cluster under `directory`: fsync off (its data dies with the test), trust auth."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory / "pgdata"
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        _as_postgres([_pg_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync"])
        with (self.dir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n"
                       "shared_buffers = 128MB\n")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PrivatePostgres:
        _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log"), "-w", "start"])
        wait_for_port(self.port)
        return self

    def restart(self) -> None:
        # -l: the server must not inherit our pipes, or waiting for pg_ctl's output never ends
        _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.dir), "-l", str(self.dir / "log"), "-m", "fast", "-w",
                      "restart"])
        wait_for_port(self.port)

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", str(self.dir), "-m",
                        "immediate", "-w", "stop"] if os.geteuid() == 0 else
                       [_pg_bin("pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop"],
                       capture_output=True, check=False)


class PrivateRedis:
    """redis-server without persistence: a restart empties it, the worst case Buzón must survive."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


class Fleet:
    """Named `buzon …` processes, restarted whenever they exit (as systemd's Restart=always would)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.specs: dict[str, list[str]] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: list[tuple[float, str, int]] = []
        self.stalls: list[tuple[float, str, int]] = []
        self._frozen: list[tuple[float, subprocess.Popen[bytes]]] = []  # (resume at, process) under SIGSTOP
        self.restarts = 0
        logs.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, *args: str) -> None:
        self.specs[name] = list(args)
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", *self.specs[name]], cwd=ROOT,
                                            env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def keep_up(self) -> None:
        self._thaw(time.monotonic())
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                self.restarts += 1
                self._spawn(name)

    def kill_random(self, rng: random.Random, kinds: tuple[str, ...] = ()) -> str:
        """Alternate the kind killed (sync, worker, ...; only `kinds` if given), a random process of it."""
        kinds = tuple(sorted(kinds or {name.split("-")[0] for name in self.procs}))
        kind = kinds[len(self.kills) % len(kinds)]
        name = rng.choice(sorted(n for n in self.procs if n.startswith(kind)))
        proc = self.procs[name]
        self.kills.append((time.monotonic(), name, proc.pid))
        self._frozen = [(at, p) for at, p in self._frozen if p is not proc]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self._spawn(name)
        return name

    def stall(self, rng: random.Random, seconds: float, kind: str = "sync") -> str:
        """SIGSTOP a random running process of `kind` for `seconds` (a CPU-starved or swapped-out host):
        it keeps its sockets and wakes up believing it still holds what it held."""
        frozen = {proc.pid for _at, proc in self._frozen}
        name = rng.choice(sorted(n for n, p in self.procs.items() if n.startswith(kind) and p.pid not in frozen))
        proc = self.procs[name]
        proc.send_signal(signal.SIGSTOP)
        self.stalls.append((time.monotonic(), name, proc.pid))
        self._frozen.append((time.monotonic() + seconds, proc))
        return name

    def _thaw(self, now: float) -> None:
        for item in list(self._frozen):
            resume_at, proc = item
            if now >= resume_at:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                self._frozen.remove(item)

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def stop(self) -> dict[str, int | None]:
        self._thaw(float("inf"))
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = None
        return codes


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick

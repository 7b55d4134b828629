"""Peers in their best documented configuration, with Buzón's durability (no fsync per message:
Buzón's SQLite runs WAL with synchronous=NORMAL, which syncs at checkpoints, not at each commit).

- mbsync (Debian's isync): `FSync no`, pipelining at its default (unlimited commands in flight),
  one process per account at once (mbsync runs the channels of one process one after another).
- getmail6 (PyPI, installed into its own venv under /tmp, never into Buzón's): IMAPS into a Maildir,
  read_all, one process per account at once (as an ordinary user: it will not deliver as root; it
  forks a delivery process per message, as it always does); getmail fsyncs every message it delivers and has no
  option against it, so it runs under eatmydata (Debian) when that is installed.
- django-post-office is set up by bench_send.py (Django settings of its own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PEERS_VENV = Path("/tmp/buzon-bench-peers")


def _maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def _count(path: Path) -> int:
    return sum(1 for sub in ("cur", "new") for _ in (path / sub).iterdir())


def mbsync(users: list[str], port: int, cafile: str, work: Path) -> tuple[float, int, str] | None:
    if not shutil.which("mbsync"):
        return None
    procs, boxes = [], []
    started = time.perf_counter()
    for n, user in enumerate(users):
        box = work / f"mbsync-{port}-{n}"
        box.mkdir(parents=True, exist_ok=True)
        conf = work / f"mbsyncrc-{port}-{n}"
        conf.write_text(f"""FSync no

IMAPAccount bench
Host localhost
Port {port}
User {user}
Pass secret
SSLType IMAPS
CertificateFile {cafile}

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
        boxes.append(box / "INBOX")
        procs.append(subprocess.Popen(["mbsync", "-q", "-c", str(conf), "bench"], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
    for proc in procs:
        out = proc.communicate()[0]
        if proc.returncode != 0:
            print("mbsync failed:", out.decode(errors="replace")[-500:], file=sys.stderr)
            return None
    elapsed = time.perf_counter() - started
    return elapsed, sum(_count(b) for b in boxes), "FSync no, a process per account"


def _getmail_bin() -> Path | None:
    binary = PEERS_VENV / "bin" / "getmail"
    if not binary.exists():
        # Debian's python: the venv must run as an ordinary user too
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(PEERS_VENV)], check=False, capture_output=True)
        subprocess.run([str(PEERS_VENV / "bin" / "pip"), "install", "-q", "getmail6"], check=False,
                       capture_output=True)
    return binary if binary.exists() else None


def getmail(users: list[str], port: int, cafile: str, work: Path) -> tuple[float, int, str] | None:
    binary = _getmail_bin()
    if binary is None:
        return None
    wrap = ["eatmydata"] if shutil.which("eatmydata") else []
    # getmail refuses to deliver as root: run it as a user does (the bench runs as root here)
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    procs, boxes = [], []
    started = time.perf_counter()
    for n, user in enumerate(users):
        home = work / f"getmail-{port}-{n}"
        box = _maildir(home / "Maildir")
        shutil.chown(home, "nobody")
        for path in home.rglob("*"):
            shutil.chown(path, "nobody")
        (home / "rc").write_text(f"""[retriever]
type = SimpleIMAPSSLRetriever
server = localhost
port = {port}
username = {user}
password = secret
mailboxes = ("INBOX",)
ca_certs = {cafile}

[destination]
type = Maildir
path = {box}/

[options]
read_all = true
delete = false
verbose = 0
message_log_verbose = false
""")
        boxes.append(box)
        argv = [*as_user, *wrap, str(binary), "--rcfile", str(home / "rc"), "--getmaildir", str(home)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for proc in procs:
        out = proc.communicate()[0]
        if proc.returncode != 0:
            print("getmail failed:", out.decode(errors="replace")[-500:], file=sys.stderr)
            return None
    elapsed = time.perf_counter() - started
    how = "under eatmydata" if wrap else "fsync per message: eatmydata missing"
    return elapsed, sum(_count(b) for b in boxes), f"{how}, a process per account"


def post_office(port: int, n: int, threads: int, text: str) -> tuple[float, int, str] | None:
    python = PEERS_VENV / "bin" / "python"
    if _getmail_bin() is None or not python.exists():
        return None
    probe = subprocess.run([str(python), "-c", "import post_office"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(PEERS_VENV / "bin" / "pip"), "install", "-q", "django>=5.2,<5.3", "django-post-office"],
                       check=False, capture_output=True)
    done = subprocess.run([str(python), str(Path(__file__).with_name("peer_post_office.py")), str(port), str(n),
                           str(threads)], input=text, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        print("django-post-office failed:", done.stderr[-800:], file=sys.stderr)
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["sent"], f"{threads} threads, no DKIM"

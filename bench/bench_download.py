"""First download, as a user waits for it: realistic mail in Dovecot (several accounts) → every
message listed as a record by the API (/api/v1/messages/ with a token), on the wall clock.

Run: .venv/bin/python bench/bench_download.py [--full] [--accounts 2] [--per-account 400] [--max-mb 2]
     [--corpus] [--no-proxy] [--postgres]
Quick (default): 2 accounts × 400 messages, attachments capped at 2 MB, loopback and 20 ms RTT.
Full (--full or BENCH_FULL=1): 4 accounts × 10,000 messages, uncapped (≈ 13 GB of mail).

Buzón runs as a site does: `buzon web`, `buzon worker` and then `buzon sync` (the clock starts
when `buzon sync` is started), each a process of its own, on SQLite (WAL, synchronous=NORMAL), or
with --postgres on a private PostgreSQL cluster (fsync on, synchronous_commit off: the same
durability), a fresh database for each site and each floor. The
clock stops when the API has listed every message: a read-only look at the database every 0.25 s
says when the last record is committed, then the API's pages are walked and must list them all
(the walk is inside the time). In the same run, on the same mailboxes, at the same network:
- floor "fetch": a pipelined UID FETCH downloader (bench/floors.py) storing the raw bytes into
  the same database with Buzón's durability, all accounts at once, 3 chunks on the wire per account;
- floor "fetch+parse": the same, also parsing each message with `email` policy.default and
  inserting a row (the simplest correct pipeline), in one process;
- peers: mbsync and getmail6 (bench/peers.py).
And `buzon sync` alone, no worker running, until the raw bytes are stored: what the sync costs when
the pipeline does not share the CPU with it.
Through the proxy (tests/support/proxy.py, 20 ms round trip, in a process of its own) too.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import floors, peers  # noqa: E402
from bench.mailgen import MailGen, corpus_messages, distribution  # noqa: E402
from bench.site import (  # noqa: E402
    Site,
    cleanup_template,
    full,
    machine,
    pg_connect,
    private_postgres,
    stop_on_term,
    with_database,
    write_results,
)
from buzon.core import run_plan  # noqa: E402
from tests.support.certs import make_certs  # noqa: E402
from tests.support.dovecot import Dovecot  # noqa: E402

RTT_S = 0.020


def fill(dovecot: Dovecot, accounts: int, per_account: int, args: argparse.Namespace) -> tuple[list[str], str]:
    """Each account's own mail (distinct messages), written as local delivery does, then indexed."""
    gen = None if args.corpus else MailGen(max_bytes=int(args.max_mb * 1024 * 1024) if args.max_mb else None)
    users, sizes, attached = [], [], 0
    for n in range(accounts):
        user = dovecot.add_user()
        new = dovecot.maildir(user) / "new"
        source = corpus_messages(per_account, n * per_account) if gen is None else \
            gen.messages(per_account, n * per_account)
        for i, data in enumerate(source):
            path = new / f"{1_700_000_000 + i}.M{n}x{i}.bench"
            path.write_bytes(data)
            os.chown(path, dovecot.uid, dovecot.gid)
            sizes.append(len(data))
            attached += b"Content-Disposition: attachment" in data
        dovecot.doveadm("index", "-u", user, "INBOX")  # a real server has its index already
        users.append(user)
    return users, distribution(sizes, attached)


def _proxy(target: int, rtt: float, ready: Any) -> None:
    from tests.support.proxy import Proxy

    ready.put(Proxy(target, latency_s=rtt).start().port)
    threading.Event().wait()


def _accounts(site: Site, users: list[str], port: int) -> list[int]:
    code = ("from buzon.mailboxes.models import EmailAccount\n"
            f"for address in {users!r}:\n"
            "    a = EmailAccount(email_address=address, login=address, incoming_enabled=True,\n"
            f"        incoming_protocol='imap', incoming_host='localhost', incoming_port={port},\n"
            "        incoming_security='ssl', initial_sync_count=0, state='idle')\n"
            "    a.set_password('secret'); a.save(); print(a.pk)\n")
    return [int(x) for x in site.shell(code).split()]


def sync_alone(users: list[str], port: int, cafile: str, expected: int, timeout: float, cluster: str) -> float:
    """`buzon sync` with no worker running: how fast it stores raw mail when nothing else wants the CPU."""
    site = Site(BUZON_CA_FILE=cafile, **({"DATABASE_URL": cluster} if cluster else {}))
    try:
        marks = ",".join(str(i) for i in _accounts(site, users, port))
        started = time.perf_counter()
        site.start("sync", "sync")
        while site.query(f"SELECT COUNT(*) FROM sync_rawmessage WHERE account_id IN ({marks})")[0][0] < expected:  # noqa: S608
            site.alive()
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"buzon sync alone did not store {expected} in {timeout:.0f} s")
            time.sleep(0.1)
        return time.perf_counter() - started
    finally:
        site.cleanup()


def buzon(users: list[str], port: int, cafile: str, expected: int, timeout: float,
          corpus: bool = False, cluster: str = "") -> dict[str, float]:
    site = Site(BUZON_CA_FILE=cafile, **({"DATABASE_URL": cluster} if cluster else {}))
    try:
        site.admin()
        ids = _accounts(site, users, port)
        site.web()
        site.workers()  # as `buzon run` starts them: a pipeline process per core
        marks = ",".join(str(i) for i in ids)
        started, epoch = time.perf_counter(), time.time()
        site.start("sync", "sync")
        # Done when every message is in and none waits for the pipeline (the corpus has mail the
        # pipeline keeps without a record, marked with its reason; mailgen's must all be records).
        stored, waiting = 0, 1
        while stored < expected or waiting:
            site.alive()
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{stored} of {expected} stored, {waiting} unprocessed after {timeout:.0f} s")
            time.sleep(0.25)
            stored, waiting = site.query("SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'stored' THEN 1 "  # noqa: S608
                                         "ELSE 0 END), 0) "
                                         f"FROM sync_rawmessage WHERE account_id IN ({marks})")[0]
        committed = time.perf_counter() - started
        records = site.query("SELECT COUNT(*) FROM messages_app_message WHERE direction = 'in' "  # noqa: S608
                             f"AND account_id IN ({marks})")[0][0]
        listed = site.listed(ids)
        api_done = time.perf_counter() - started
        if listed != records or (not corpus and records != expected):
            raise RuntimeError(f"the API lists {listed} of {records} records, {expected} messages")
        first, last = site.query(f"SELECT {site.epoch('MIN(received_at)')}, {site.epoch('MAX(received_at)')} "  # noqa: S608
                                 f"FROM sync_rawmessage WHERE account_id IN ({marks})")[0]
        first, last = float(first), float(last)
        # when an agent could open the first message: the first record the pipeline committed
        first_record = float(site.query(f"SELECT {site.epoch('MIN(created_at)')} FROM messages_app_message "  # noqa: S608
                                        f"WHERE direction = 'in' AND account_id IN ({marks})")[0][0])
        # SQLite has one writer: the processes wait for it (busy_timeout), and a wait that ran out is logged
        locked = sum(site.log(name).count("database is locked") for name in site.procs)
        # a pipeline chunk whose bulk transaction failed went one message at a time (logged)
        one_by_one = sum(site.log(name).count("bulk processing failed") for name in site.procs)
        return {"seconds": api_done, "committed": committed, "records": records, "walk": api_done - committed,
                "raw_done": last - epoch, "raw_span": last - first,
                "first_record": first_record - epoch, "locked": locked, "one_by_one": one_by_one,
                "pipeline_processes": len([name for name in site.procs if name.startswith(("worker", "inbound"))])}
    finally:
        site.cleanup()


def floor(users: list[str], port: int, cafile: str, work: Path, parse: bool, expected: int, cluster: str) -> float:
    """The floor into a fresh SQLite file, or a fresh database on the cluster (dropped after)."""
    db: Path | str = work / f"floor-{port}-{int(parse)}.sqlite3"
    if cluster:
        admin = pg_connect(cluster)
        admin.execute("DROP DATABASE IF EXISTS bench_floor")
        admin.execute("CREATE DATABASE bench_floor")
        db = with_database(cluster, "bench_floor")
    started = time.perf_counter()
    stored = floors.download(users, port, cafile, db, parse)
    elapsed = time.perf_counter() - started
    if cluster:
        admin.execute("DROP DATABASE bench_floor")
        admin.close()
    else:
        for path in work.glob(f"{Path(db).name}*"):
            path.unlink()
    if stored != expected:
        raise RuntimeError(f"floor stored {stored} of {expected}")
    return elapsed


def one_network(where: str, users: list[str], port: int, cafile: str, work: Path, n: int,
                timeout: float, corpus: bool, cluster: str) -> list[dict[str, Any]]:
    print(f"\n== {where}", flush=True)
    raw = floor(users, port, cafile, work, False, n, cluster)
    print(f"  floor fetch: {n / raw:.0f} msg/s ({raw:.1f} s)", flush=True)
    parsed = floor(users, port, cafile, work, True, n, cluster)
    print(f"  floor fetch+parse+insert: {n / parsed:.0f} msg/s ({parsed:.1f} s)", flush=True)
    b = buzon(users, port, cafile, n, timeout, corpus, cluster)
    print(f"  Buzón to the API: {n / b['seconds']:.0f} msg/s ({b['seconds']:.1f} s; first record at "
          f"{b['first_record']:.1f} s, all committed at "
          f"{b['committed']:.1f} s, API walk {b['walk']:.1f} s; last raw bytes stored at {b['raw_done']:.1f} s, "
          f"{b['raw_span']:.1f} s after the first; {b['records']:.0f} records; {b['pipeline_processes']:.0f} worker "
          f"processes; 'database is locked' {b['locked']:.0f} times in the logs; {b['one_by_one']:.0f} chunks "
          "one by one)",
          flush=True)
    alone = sync_alone(users, port, cafile, n, timeout, cluster)
    database = "PostgreSQL" if cluster else "SQLite"
    print(f"  buzon sync alone (no worker), raw bytes stored: {n / alone:.0f} msg/s ({alone:.1f} s)", flush=True)
    rows = [
        {"figure": f"first download → API lists records, {where}", "value": n / b["seconds"], "unit": "msg/s",
         "floor": "fetch+parse+insert (1 process)", "floor_value": n / parsed,
         "note": f"the first record {b['first_record']:.1f} s after buzon sync started"},
        {"figure": f"first download, raw bytes stored (buzon sync start → last committed), {where}",
         "value": n / b["raw_done"], "unit": "msg/s", "floor": f"pipelined UID FETCH → {database}",
         "floor_value": n / raw, "note": f"from the first raw message to the last: {n / b['raw_span']:.0f} msg/s"},
        {"figure": f"first download, raw bytes stored by buzon sync alone (no worker running), {where}",
         "value": n / alone, "unit": "msg/s", "floor": f"pipelined UID FETCH → {database}", "floor_value": n / raw},
    ]
    for name, run in (("mbsync", peers.mbsync), ("getmail6", peers.getmail)):
        got = run(users, port, cafile, work)
        if got is None:
            print(f"  {name}: not available", flush=True)
            continue
        seconds, count, how = got
        print(f"  {name}: {count / seconds:.0f} msg/s ({seconds:.1f} s, {count} messages; {how})", flush=True)
        rows[1].setdefault("peers", []).append({"peer": f"{name} ({how})", "peer_value": count / seconds})
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o755)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--accounts", type=int, default=4 if full() else 2)
    parser.add_argument("--per-account", type=int, default=10_000 if full() else 400)
    parser.add_argument("--max-mb", type=float, default=None if full() else 2.0)
    parser.add_argument("--corpus", action="store_true", help="replay ../shared/corpus instead of mailgen")
    parser.add_argument("--no-proxy", action="store_true")
    parser.add_argument("--postgres", action="store_true",
                        help="the sites and the floors on a private PostgreSQL cluster instead of SQLite")
    args = parser.parse_args()
    stop_on_term()
    n = args.accounts * args.per_account
    timeout = 600 + n * 0.2
    work = Path(tempfile.mkdtemp(prefix="buzon-bench-download-"))
    work.chmod(0o755)  # getmail runs as an ordinary user
    certs = make_certs(work / "certs")
    (work / "certs").chmod(0o755)
    certs.ca_file.chmod(0o644)
    dovecot = Dovecot(certs=certs).start()
    cafile = str(certs.ca_file)
    peers_dir = work / "peers"
    peers_dir.mkdir(mode=0o755)
    rows: list[dict[str, Any]] = []
    postgres = private_postgres(work) if args.postgres else None
    cluster = postgres.url if postgres else ""
    try:
        started = time.perf_counter()
        users, described = fill(dovecot, args.accounts, args.per_account, args)
        print(f"mail: {described} ({'corpus replay' if args.corpus else 'mailgen'}); "
              f"{args.accounts} accounts, written in {time.perf_counter() - started:.0f} s", flush=True)
        rows += one_network("loopback", users, dovecot.imaps_port, cafile, peers_dir, n, timeout, args.corpus,
                            cluster)
        if not args.no_proxy:
            context = multiprocessing.get_context("fork")
            ready = context.Queue()
            proxy = context.Process(target=_proxy, args=(dovecot.imaps_port, RTT_S, ready), daemon=True)
            proxy.start()
            try:
                rows += one_network(f"{RTT_S * 1000:.0f} ms RTT", users, ready.get(timeout=20), cafile, peers_dir,
                                    n, timeout, args.corpus, cluster)
            finally:
                proxy.terminate()
    finally:
        dovecot.cleanup()
        cleanup_template()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    notes = [f"mail: {described}", f"Buzón as `buzon run` starts it: buzon web ({run_plan.web_workers()} workers), "
             f"{run_plan.inbound_workers()} buzon worker processes (one for every queue, the others the pipeline "
             "and delivery), buzon sync; " + ("PostgreSQL, fsync on, synchronous_commit off" if postgres
                                                  else "SQLite WAL synchronous=NORMAL")]
    for row in rows if postgres else []:
        row["figure"] += ", PostgreSQL"
    print("\n" + "\n".join(notes))
    print(f"machine: {machine()}")
    name = "download-corpus" if args.corpus else "download"
    print(f"results: {write_results(name + ('-postgres' if postgres else ''), rows, notes)}")


if __name__ == "__main__":
    main()

"""The inbound pipeline alone, on the wall clock: raw rows → records, realistic mail.

Run: .venv/bin/python bench/bench_pipeline.py [--full] [-n 600] [--max-mb 2] [--corpus]
Quick (default): 600 messages from bench/mailgen.py, attachments capped at 2 MB. Full: 5,000, uncapped.

The rows are stored as the sync engine stores them (buzon.sync.store.store_batch, chunks of 250,
each enqueueing its task), all in one transaction, while `buzon worker` (a process of its own, as a
site runs it, database queue) waits; the clock starts when that transaction commits and stops when
the last record is committed (polled every 0.1 s). One run, no best-of, no CPU time.
Floor in the same run, on the same rows in the same database: one process reads the raw rows,
parses each with `email` policy.default (headers, text or HTML body, attachment names) and inserts a
row, a transaction per 250 (bench/floors.py; Buzón's durability).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import floors  # noqa: E402
from bench.mailgen import MailGen, corpus_messages, distribution  # noqa: E402
from bench.site import Site, cleanup_template, full, machine, stop_on_term, write_results  # noqa: E402

CHUNK = 250


def _cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all threads) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor(db_path: Path, account_id: int, n: int) -> float:
    db = floors.open_db(db_path)
    reader = sqlite3.connect(db_path)
    started = time.perf_counter()
    rows = reader.execute("SELECT r.id, c.data FROM sync_rawmessage r JOIN sync_rawcontent c ON c.raw_id = r.id "
                          "WHERE r.account_id = ? ORDER BY r.id", (account_id,))
    done = 0
    while batch := rows.fetchmany(CHUNK):
        db.execute("BEGIN")
        for raw_id, data in batch:
            db.execute("INSERT INTO message (raw_id, message_id, sender, sender_name, subject, date, in_reply_to, "
                       "body, attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (raw_id, *floors.parse(bytes(data))))
        db.execute("COMMIT")
        done += len(batch)
    elapsed = time.perf_counter() - started
    assert done == n, f"floor parsed {done} of {n}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("-n", type=int, default=5_000 if full() else 600)
    parser.add_argument("--max-mb", type=float, default=None if full() else 2.0)
    parser.add_argument("--corpus", action="store_true")
    args = parser.parse_args()
    stop_on_term()
    site = Site()
    os.environ.update(site.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "buzon.settings"
    import django

    django.setup()
    from django.db import transaction

    from buzon.mailboxes.models import EmailAccount
    from buzon.sync.store import Incoming, Mailbox, store_batch

    try:
        account = EmailAccount.objects.create(email_address="ventas@tienda-norte.example")
        source = corpus_messages(args.n) if args.corpus else MailGen(
            max_bytes=int(args.max_mb * 1024 * 1024) if args.max_mb else None).messages(args.n)
        items = [Incoming(data=data, uid=i + 1) for i, data in enumerate(source)]
        described = distribution([len(i.data) for i in items],
                                 sum(b"Content-Disposition: attachment" in i.data for i in items))
        print(f"mail: {described}", flush=True)
        site.worker()
        time.sleep(2)  # the worker's start (imports, checks) is not the pipeline's CPU
        cpu_before = _cpu_seconds(site.procs["worker"].pid)
        box = Mailbox(account_id=account.pk, address=account.email_address, folder="INBOX", uidvalidity=1)
        with transaction.atomic():
            for start in range(0, len(items), CHUNK):
                store_batch(box, items[start:start + CHUNK])
        started = time.perf_counter()
        waiting = args.n
        while waiting:
            site.alive()
            time.sleep(0.1)
            waiting = site.query("SELECT COUNT(*) FROM sync_rawmessage WHERE account_id = ? AND status = 'stored'",
                                 (account.pk,))[0][0]
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(site.procs["worker"].pid) - cpu_before
        statuses = dict(site.query("SELECT status, COUNT(*) FROM sync_rawmessage WHERE account_id = ? "
                                   "GROUP BY status", (account.pk,)))
        records = site.query("SELECT COUNT(*) FROM messages_app_message WHERE account_id = ? AND direction = 'in'",
                             (account.pk,))[0][0]
        site.stop("worker")
        print(f"Buzón: {args.n / elapsed:.0f} msg/s ({elapsed:.1f} s; {records} records; raw rows {statuses}; "
              f"the worker used {cpu:.1f} s of CPU, {1000 * cpu / args.n:.1f} ms a message)", flush=True)
        floor_s = floor(site.db_path, account.pk, args.n)
        print(f"floor (parse with policy.default + insert, one process): {args.n / floor_s:.0f} msg/s "
              f"({floor_s:.1f} s)", flush=True)
    finally:
        site.cleanup()
        cleanup_template()
    notes = [f"pipeline mail: {described}", "Buzón: one `buzon worker` process (database queue), as `buzon run` starts"]
    rows = [{"figure": "pipeline alone, raw rows → records (one buzon worker)", "value": records / elapsed,
             "unit": "msg/s", "floor": "parse (policy.default) + insert, 1 process", "floor_value": args.n / floor_s}]
    print(f"machine: {machine()}")
    print(f"results: {write_results('pipeline', rows, notes)}")


if __name__ == "__main__":
    main()

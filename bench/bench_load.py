"""Load (and optionally chaos) on a multi-process deployment: N Dovecot accounts, `buzon sync` and
`buzon worker` processes on a private PostgreSQL (+ a private Redis with --redis), mail delivered
into Dovecot and queued for sending at fixed rates; afterwards every message is counted against
what Dovecot and the SMTP sink hold.

Quick (default):       .venv/bin/python bench/bench_load.py   (100 accounts, 10 in/s, 3 out/s, 60 s)
Full run of issue 6:   .venv/bin/python bench/bench_load.py --full [--redis]   (1,000 accounts, 100 in/s,
                           30 out/s, 300 s)
Chaos on top:          add --chaos (kill -9 a random process every 10 s, restart Dovecot, Redis, PostgreSQL)

Incoming mail is bench/mailgen.py's realistic mail (capped at 2 MB in the quick run; --small-mail for
one-line messages), its subject stamped with the time it was delivered. Then the same load again
with a relay that takes 30 s per message (--slow-relay S; 0 skips it): arrival → record p99 must not
move while outbound waits on the relay.

Prints one table: accounted exactly once, arrival->record and queue->SMTP p50/p99, how long the
backlog took to drain after the load stopped (the queue lag bound), RSS of each process at start and end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mailgen import MailGen  # noqa: E402
from bench.site import full, machine, stop_on_term, write_results  # noqa: E402
from tests.chaos.scenario import Outcome, Scenario, run  # noqa: E402
from tests.support.certs import make_certs  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def table(sc: Scenario, out: Outcome, wall: float, load_start: tuple[float, ...] = ()) -> str:
    r = out.report
    lost_in = len(set(out.delivered)) - int(r["message_subjects"])  # type: ignore[call-overload]
    rows = [
        ("accounts / sync processes / workers", f"{sc.accounts} / {sc.sync_procs} / {sc.workers}"),
        ("task backend / sync lease", ("rq (Redis)" if sc.redis else "database") + f" / {sc.lease_s} s"),
        ("load", f"{sc.in_rate:g} in/s, {sc.out_rate:g} out/s for {sc.seconds:g} s"),
        ("faults", "; ".join(out.events) or "none"),
        ("incoming delivered (rate achieved)", f"{len(out.delivered)} ({len(out.delivered) / sc.seconds:.1f}/s)"),
        ("  recorded exactly once / not recorded / duplicated",
         f"{r['message_subjects']} / {lost_in} / {int(r['message_duplicates']) + int(r['raw_duplicates'])}"),  # type: ignore[call-overload]
        ("  raw messages by status", str(r["raw_status"])),
        ("  arrival -> record p50 / p99 / max (s)",
         f"{r['latency_p50']:.2f} / {r['latency_p99']:.2f} / {r['latency_max']:.2f}"),
        ("    stage: arrival -> raw stored (sync) p50 / p99 (s)",
         f"{r.get('sync_p50', 0):.2f} / {r.get('sync_p99', 0):.2f}"),
        ("    stage: raw stored -> record (pipeline) p50 / p99 (s)",
         f"{r.get('pipeline_p50', 0):.2f} / {r.get('pipeline_p99', 0):.2f}"),
        ("outgoing queued (rate achieved)", f"{len(out.queued)} ({len(out.queued) / sc.seconds:.1f}/s)"),
        ("  in the SMTP sink exactly once / missing / resent",
         f"{out.sink_distinct} / {out.sink_missing} / {out.sink_total - out.sink_distinct}"),
        ("  queued -> SMTP p50 / p99 (s)",
         f"{_pct(out.send_latencies, 0.5):.2f} / {_pct(out.send_latencies, 0.99):.2f}"),
        ("backlog drained after load stopped (s)", f"{out.settle_s:.1f}" + ("" if out.settled else " (NOT settled)")),
        ("accounts by state at the end", str(r["accounts"])),
        ("IMAP connections / overlapping on one account",
         f"{out.proxy_connections} / {len(out.overlaps)}" if sc.proxy else "not counted (--no-proxy)"),
        ("processes killed / restarted after exiting", f"{len(out.kills)} / {out.restarts}"),
    ]
    for name in sorted(out.rss_end):
        rows.append((f"RSS {name} start -> end (MB)",
                     f"{out.rss_start.get(name, 0) / 1024:.0f} -> {out.rss_end[name] / 1024:.0f}"))
    for name in sorted(out.cpu_load):
        rows.append((f"CPU {name} during the load (s, share of one core)",
                     f"{out.cpu_load[name]:.0f} ({out.cpu_load[name] / sc.seconds:.0%})"))
    rows.append((f"host CPU busy during the load (all {os.cpu_count()} cores)", f"{out.host_busy:.0%}"))
    rows.append(("wall time (s)", f"{wall:.0f}"))
    # the host is shared: figures measured under another load are floors, so print it beside them
    rows.append(("host load average 1/5/15 min, at start -> at end",
                 " ".join(f"{x:.1f}" for x in load_start) + " -> " + " ".join(f"{x:.1f}" for x in os.getloadavg())))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _mail(max_mb: float | None) -> object:
    """Realistic mail (bench/mailgen.py) with the delivery time stamped in its subject."""
    gen = MailGen(max_bytes=int(max_mb * 1024 * 1024) if max_mb else None)
    return lambda subject, n: gen.message(n, subject=subject)


def one_run(sc: Scenario, label: str) -> Outcome:
    stop_on_term()  # so the servers are cleaned up
    work = Path(tempfile.mkdtemp(prefix="buzon-load-"))
    started, load_start = time.monotonic(), os.getloadavg()
    print(f"== {label}", flush=True)
    out = run(sc, work, make_certs(work / "certs"), log=lambda line: print(line, flush=True))
    print(table(sc, out, time.monotonic() - started, load_start))
    print(f"logs: {work / 'logs'}")
    if out.send_latencies:
        print(f"(mean queued -> SMTP {statistics.fmean(out.send_latencies):.2f} s)")
    return out


def main() -> None:
    big = full()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="issue 6's size: 1,000 accounts, 100 in/s, 30 out/s, 300 s")
    parser.add_argument("--accounts", type=int, default=1000 if big else 100)
    parser.add_argument("--in-rate", type=float, default=100 if big else 10)
    parser.add_argument("--out-rate", type=float, default=30 if big else 3)
    parser.add_argument("--seconds", type=float, default=300 if big else 60)
    parser.add_argument("--sync", type=int, default=2, help="buzon sync processes")
    parser.add_argument("--workers", type=int, default=2, help="buzon worker processes")
    parser.add_argument("--redis", action="store_true", help="RQ on a private redis-server (else the database queue)")
    parser.add_argument("--chaos", action="store_true", help="kill -9 every 10 s; restart Dovecot, Redis, PostgreSQL")
    parser.add_argument("--kill-every", type=float, default=10)
    parser.add_argument("--lease", type=int, default=30, help="BUZON_SYNC_LEASE for the sync processes (s)")
    parser.add_argument("--no-proxy", action="store_true",
                        help="IMAP straight to Dovecot, not through the counting proxy (times the sync stage "
                             "without it; overlapping connections are then not counted)")
    parser.add_argument("--settle", type=float, default=300 if big else 120,
                        help="seconds to wait for the backlog to drain")
    parser.add_argument("--small-mail", action="store_true", help="one-line test mail instead of bench/mailgen.py's")
    parser.add_argument("--max-mb", type=float, default=None if big else 2.0, help="cap realistic mail at this size")
    parser.add_argument("--slow-relay", type=float, default=30, metavar="S",
                        help="then the same load again with a relay that takes S s per message (0: skip)")
    args = parser.parse_args()
    base = Scenario(accounts=args.accounts, in_rate=args.in_rate, out_rate=args.out_rate, seconds=args.seconds,
                    sync_procs=args.sync, workers=args.workers, redis=args.redis,
                    kill_every=args.kill_every if args.chaos else 0, restart_dovecot=args.chaos,
                    restart_postgres=args.chaos, restart_redis=args.chaos, settle_timeout=args.settle,
                    lease_s=args.lease, proxy=not args.no_proxy,
                    mail=None if args.small_mail else _mail(args.max_mb))  # type: ignore[arg-type]
    if not args.chaos:  # production's send timeout and claim lease, not the chaos test's short ones
        base.env = {"BUZON_OUTBOUND_SMTP_TIMEOUT": "60", "BUZON_OUTBOUND_CLAIM_LEASE": "300"}
    mail = "one-line test mail" if args.small_mail else \
        f"bench/mailgen.py mail{f' capped at {args.max_mb:g} MB' if args.max_mb else ''}"
    what = f"{args.accounts} accounts, {args.in_rate:g} in/s + {args.out_rate:g} out/s for {args.seconds:g} s, {mail}"
    fast = one_run(base, f"{what}, relay answers at once")
    r = fast.report
    rows = [{"figure": f"load: arrival → record p99, {args.accounts} accounts ({args.in_rate:g} in/s)",
             "value": float(r["latency_p99"]), "unit": "s",  # type: ignore[arg-type]
             "note": f"p50 {r['latency_p50']:.2f} s; target p99 < 2 s; {what}"}]
    if args.slow_relay:
        slow = one_run(dataclasses.replace(base, relay_delay_s=args.slow_relay, settle_timeout=min(args.settle, 60)),
                       f"{what}, relay takes {args.slow_relay:g} s per message")
        s = slow.report
        rows.append({"figure": f"load: arrival → record p99 while the relay takes {args.slow_relay:g} s per message",
                     "value": float(s["latency_p99"]), "unit": "s",  # type: ignore[arg-type]
                     "floor": "the same load, relay answering at once", "floor_value": float(r["latency_p99"]),  # type: ignore[arg-type]
                     "lower_is_better": True,
                     "note": f"p50 {s['latency_p50']:.2f} s; queued → SMTP p50 "
                             f"{_pct(slow.send_latencies, 0.5):.0f} s"})
    notes = [f"load: {what}; {args.sync} buzon sync and {args.workers} buzon worker processes on PostgreSQL"]
    print(f"machine: {machine()}")
    print(f"results: {write_results('load', rows, notes)}")


if __name__ == "__main__":
    main()

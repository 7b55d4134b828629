"""Chaos, short version (CI): load plus kill -9 of random Buzón processes, a Dovecot, PostgreSQL and
(with REDIS_URL set) Redis restart; afterwards nothing lost, nothing duplicated, every account idle,
and no account ever synced over two connections at once. bench/bench_load.py runs the full size."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

from tests.chaos.scenario import Outcome, Scenario, run
from tests.chaos.services import postgres_available
from tests.support import dovecot as dovecot_support
from tests.support.services import require

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def summary(sc: Scenario, out: Outcome) -> str:
    report = out.report
    rows = [
        ("accounts / sync procs / workers", f"{sc.accounts} / {sc.sync_procs} / {sc.workers}"),
        ("task backend", "rq (private Redis)" if sc.redis else "database"),
        ("faults", "; ".join(out.events)),
        ("processes restarted after exit", str(out.restarts)),
        ("incoming delivered to Dovecot", str(len(out.delivered))),
        ("  stored once / duplicates", f"{report['raw_subjects']} / {report['raw_duplicates']}"),
        ("  recorded once / duplicates", f"{report['message_subjects']} / {report['message_duplicates']}"),
        ("  raw messages by status", str(report["raw_status"])),
        ("  arrival->record p50 / p99 / max (s)",
         f"{report['latency_p50']:.2f} / {report['latency_p99']:.2f} / {report['latency_max']:.2f}"),
        ("outgoing queued", str(len(out.queued))),
        ("  in the SMTP sink: distinct / missing", f"{out.sink_distinct} / {out.sink_missing}"),
        ("  resent after a kill (same Message-ID)", str(out.sink_total - out.sink_distinct)),
        ("accounts by state at the end", str(report["accounts"])),
        ("connections / overlapping per account", f"{out.proxy_connections} / {len(out.overlaps)}"),
        ("settled after load (s)", f"{out.settle_s:.1f}"),
        ("RSS start -> end (MB)", ", ".join(f"{k} {out.rss_start.get(k, 0) / 1024:.0f}->{v / 1024:.0f}"
                                            for k, v in sorted(out.rss_end.items()))),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def test_chaos_nothing_lost_nothing_duplicated(test_certs, tmp_path, postgres_url):
    require(dovecot_support.available(), "Dovecot")
    require(postgres_available(), "PostgreSQL server binaries (initdb)")
    redis = bool(os.environ.get("REDIS_URL"))
    if redis:
        require(shutil.which("redis-server") is not None, "redis-server")
    sc = Scenario(accounts=10, in_rate=3, out_rate=1, seconds=30, kill_every=4, redis=redis, settle_timeout=60)
    out = run(sc, tmp_path, test_certs)
    print("\n" + summary(sc, out))
    report = out.report
    assert len(out.kills) >= 6
    assert out.settled, summary(sc, out)
    delivered = set(out.delivered)
    assert report["raw_subjects"] == len(delivered) and report["raw_duplicates"] == 0
    assert report["message_subjects"] == len(delivered) and report["message_duplicates"] == 0
    assert set(report["received_subjects"]) == delivered
    # every message committed to the queue reached the sink once (by Message-ID); the sender saw
    # its queue_outgoing() fail only when the database itself was restarting under it
    assert out.sink_missing == 0 and out.sink_distinct == sum(dict(report["outgoing"]).values())
    assert dict(report["outgoing"]) == {"sent": out.sink_distinct}
    # A resend is the SMTP window no client can close (RFC 1047: the server accepted, the worker died
    # before committing it): at most the one message in flight per connection of a killed worker,
    # with the same Message-ID. Nothing else is ever sent twice.
    worker_kills = sum(1 for kill in out.kills if "worker" in kill)
    assert out.sink_total - out.sink_distinct <= worker_kills * settings.OUTBOUND_CONNECTIONS_PER_ACCOUNT
    assert report["accounts"] == {"idle": sc.accounts}
    assert out.overlaps == []

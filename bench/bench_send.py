"""Outgoing throughput: 5,000 messages through the whole queue (claim, compose, DKIM sign, send).

Run: .venv/bin/python bench/bench_send.py [N]   (default 5000; SQLite in a temp dir)

Targets (issue 5): at least 500 msg/s on loopback, at least 100 msg/s through a 20 ms round-trip proxy.
Side by side in the same run, on the same messages to the same sink:
- Django's `send_mail()` in a loop (one connection per message, as `send_mail` does),
- django-post-office: `mail.send_many()` then the `send_queued_mail` command.
Through the proxy the two baselines send a sample (BASELINE_SAMPLE) and their rate is reported for
it: at ~7-12 msg/s, 5,000 messages would take ten minutes each. Neither baseline signs with DKIM.
The SMTP sink (aiosmtpd) and the latency proxy run in their own processes, as a real server would.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import types
from typing import Any

os.environ.setdefault("BUZON_DATA_DIR", tempfile.mkdtemp(prefix="buzon-bench-send-"))
os.environ.setdefault("BUZON_TASKS", "dummy")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Settings for this run: Buzón's, plus django-post-office for the baseline.
_bench_settings = types.ModuleType("bench_send_settings")
exec("from buzon.settings import *  # noqa: F403", _bench_settings.__dict__)  # noqa: S102
_bench_settings.INSTALLED_APPS = [*_bench_settings.INSTALLED_APPS, "post_office"]
_bench_settings.POST_OFFICE = {"BATCH_SIZE": 1000, "THREADS_PER_PROCESS": 5, "LOG_LEVEL": 0,
                               "MESSAGE_ID_ENABLED": True}
_bench_settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
sys.modules["bench_send_settings"] = _bench_settings
os.environ["DJANGO_SETTINGS_MODULE"] = "bench_send_settings"

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
BASELINE_SAMPLE = 200
RTT_S = 0.020
CONNECTIONS = 32  # per account, split across the worker processes
WORKERS = 2  # task worker processes (this machine has 2 cores)


# -------------------------------------------------------------------------- sink and proxy (own processes)
def _sink(port_out: Any) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                              responses: list[str]) -> list[str]:
            # As Postfix, Exim, Exchange and Gmail do (aiosmtpd reads pipelined commands in order).
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    port_out.put(port)
    while True:
        time.sleep(3600)


def _proxy(target_port: int, port_out: Any) -> None:
    """Forward TCP to the sink, delaying every chunk by half the round trip in each direction."""
    delay = RTT_S / 2

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                break
        await sender

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(client_reader, server_writer), pump(server_reader, client_writer),
                             return_exceptions=True)

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def start(target: Any, *args: Any) -> tuple[multiprocessing.Process, int]:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=target, args=(*args, queue), daemon=True)
    process.start()
    return process, int(queue.get(timeout=20))


# -------------------------------------------------------------------------- the runs
def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def subject(i: int) -> str:
    return f"Your order {i} has shipped"


def text(i: int) -> str:
    return f"Hello,\n\nYour order {i} is on its way. Track it in your account.\n\nThanks,\nThe shop\n" * 3


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _worker(commits: Any) -> None:
    """One task worker: what `deliver_outgoing` runs, with its own pooled connections."""
    from buzon.outbound.sender import deliver_due
    from buzon.outbound.smtp import SMTPPool

    pool = SMTPPool(per_account=CONNECTIONS // WORKERS, timeout=30)
    commits.put(deliver_due(pool=pool, batch=100).commits)
    pool.shutdown()


def run_buzon(port: int, n: int, label: str, dkim: bool = True) -> dict[str, Any]:
    from django.db import connections
    from django.utils import timezone

    from buzon.mailboxes.models import EmailAccount, EmailDomain
    from buzon.messages.models import Message
    from buzon.messages.outbox import queue_outgoing
    from buzon.outbound import confirm, signing
    from buzon.outbound.models import DkimKey, OutgoingEmail

    OutgoingEmail.objects.all().delete()
    Message.objects.all().delete()
    domain, _ = EmailDomain.objects.get_or_create(domain_name="shop.test")
    if dkim:
        signing.generate(domain)
    else:
        DkimKey.objects.filter(domain=domain).delete()
    account, _ = EmailAccount.objects.update_or_create(email_address="orders@shop.test", defaults={
        "domain": domain, "outgoing_enabled": True, "smtp_host": "127.0.0.1", "smtp_port": port,
        "smtp_security": "none", "smtp_auth": False, "add_signature": True, "signature": "The shop",
        "tls_verify": False})
    confirm.mark_confirmed(account)
    t0 = time.perf_counter()
    for i in range(n):
        queue_outgoing(to=[f"customer{i}@example.test"], subject=subject(i), text=text(i), account=account)
    queued_s = time.perf_counter() - t0
    start_at = timezone.now()
    connections.close_all()  # each worker process opens its own
    t0 = time.perf_counter()
    cpu0 = _children_cpu()
    commits: Any = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_worker, args=(commits,)) for _ in range(WORKERS)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    elapsed = time.perf_counter() - t0
    transactions = sum(commits.get(timeout=5) for _ in workers)
    cpu_ms = (_children_cpu() - cpu0) / n * 1000
    sent = OutgoingEmail.objects.filter(state="sent").count()
    assert sent == n, f"sent {sent} of {n}"
    latencies = [(o.sent_at - start_at).total_seconds() for o in OutgoingEmail.objects.only("sent_at")]
    first = OutgoingEmail.objects.first()
    assert first is not None and bytes(first.mime or b"").startswith(b"DKIM-Signature:") == dkim
    return {"label": label, "n": n, "load": os.getloadavg()[0], "seconds": elapsed, "latencies": latencies,
            "note": f"{WORKERS} workers x {CONNECTIONS // WORKERS} conns; {'DKIM' if dkim else 'no DKIM'}; "
                    f"{cpu_ms:.2f} ms CPU/msg; "
                    f"{n / transactions:.1f} msg/commit; queueing {n / queued_s:.0f} msg/s"}


def run_send_mail(port: int, n: int, label: str) -> dict[str, Any]:
    from django.conf import settings
    from django.core.mail import send_mail

    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    latencies = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        send_mail(subject(i), text(i), "orders@shop.test", [f"customer{i}@example.test"])
        latencies.append(time.perf_counter() - s)
    return {"label": label, "n": n, "load": os.getloadavg()[0], "seconds": time.perf_counter() - t0,
            "latencies": latencies, "note": "1 connection per message; no DKIM"}


def run_post_office(port: int, n: int, label: str) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command
    from post_office import mail
    from post_office.models import Email

    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    Email.objects.all().delete()
    mail.send_many([{"sender": "orders@shop.test", "recipients": [f"customer{i}@example.test"],
                     "subject": subject(i), "message": text(i)} for i in range(n)])
    t0 = time.perf_counter()
    call_command("send_queued_mail", processes=1, verbosity=0)
    elapsed = time.perf_counter() - t0
    sent = Email.objects.filter(status=0).count()
    assert sent == n, f"post_office sent {sent} of {n}"
    return {"label": label, "n": n, "load": os.getloadavg()[0], "seconds": elapsed, "latencies": [],
            "note": "send_queued_mail, 5 threads; no DKIM"}


def row(result: dict[str, Any], base: float | None) -> str:
    rate = result["n"] / result["seconds"]
    lat = sorted(result["latencies"])
    pct = (f"{statistics.quantiles(lat, n=100)[49] * 1000:8.0f} {statistics.quantiles(lat, n=100)[94] * 1000:8.0f}"
           f" {statistics.quantiles(lat, n=100)[98] * 1000:8.0f}") if len(lat) > 2 else f"{'-':>8} {'-':>8} {'-':>8}"
    ratio = f"{rate / base:7.1f}x" if base else f"{'1.0x':>8}"
    return (f"{result['label']:<34} {result['n']:>6} {rate:9.1f} {pct} {ratio}  load {result['load']:4.1f}; "
            f"{result['note']}")


def main() -> int:
    multiprocessing.set_start_method("fork")
    sink, sink_port = start(_sink)
    proxy, proxy_port = start(_proxy, sink_port)
    setup_django()
    results: list[tuple[str, list[dict[str, Any]], float]] = []
    try:
        for where, port, sample, target in (("loopback", sink_port, N, 500.0),
                                            (f"{RTT_S * 1000:.0f} ms RTT proxy", proxy_port, BASELINE_SAMPLE, 100.0)):
            runs = [run_send_mail(port, min(N, sample if where != "loopback" else 1000), "Django send_mail loop"),
                    run_post_office(port, min(N, sample), "django-post-office send_queued_mail"),
                    *([run_buzon(port, N, "Buzón queue, no DKIM (as the others)", dkim=False)]
                      if where == "loopback" else []),
                    run_buzon(port, N, "Buzón queue (claim+compose+DKIM+send)")]
            results.append((where, runs, target))
    finally:
        sink.terminate()
        proxy.terminate()
    rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"\nOutgoing mail, {N} messages per Buzón run; peak RSS {rss // 1024} MB; load {os.getloadavg()[0]:.1f}")
    ok = True
    for where, runs, target in results:
        print(f"\n== {where} (target for Buzón: {target:.0f} msg/s)")
        print(f"{'run':<34} {'msgs':>6} {'msg/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'vs send_mail':>8}")
        base = runs[0]["n"] / runs[0]["seconds"]
        for result in runs:
            print(row(result, base if result is not runs[0] else None))
        buzon_rate = runs[-1]["n"] / runs[-1]["seconds"]
        ok = ok and buzon_rate >= target
        print(f"Buzón: {buzon_rate:.0f} msg/s — {'meets' if buzon_rate >= target else 'MISSES'} the target")
    print("\nLatency for Buzón is from the start of the sending run to each message's sent time (queue wait "
          "included); for send_mail it is each call.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

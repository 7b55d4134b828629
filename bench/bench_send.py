"""Sending, as a user waits for it, on the wall clock, through `buzon web` and `buzon worker`.

Run: .venv/bin/python bench/bench_send.py [--full] [-n 500] [--clients 8] [--batch 100] [--postgres]
Quick (default): 500 messages per figure. Full (--full or BENCH_FULL=1): 5,000.

- API send: `POST /api/v1/messages/send/` (an API token, `--clients` threads at once, as an
  integrator's shop would call it) → accepted by the SMTP sink, first POST to last message in the sink;
  on loopback and through the 20 ms round-trip proxy (an account whose relay is across a network);
- API batch send: the same N messages through `POST /api/v1/messages/send/batch/`, `--batch` to a
  request (0 skips it), up to `--clients` requests at once, first POST to the last message in the sink;
- queue drain: N messages queued in one transaction (as a bulk reply would), drained by the running
  `buzon worker` processes with DKIM on, commit to the last message in the sink; on loopback and
  through a 20 ms round-trip proxy (tests/support/proxy.py, a process of its own).
Buzón runs the worker processes `buzon run` starts (buzon.core.run_plan: on 2 cores, two serve
outbound), which share BUZON_OUTBOUND_CONNECTIONS (16) connections to an account (8 each).
Floor in the same run, before Buzón's figures and again after them (each ratio against the mean):
aiosmtplib with as many connections as those processes open to one account together: the same text
as text and HTML, each message built from one template and signed (dkimpy's canonicalization,
2048-bit RSA in `cryptography`, as Buzón) inside the timed run, at each network.
Peer: django-post-office (bench/peer_post_office.py).
The sink (bench/sink.py: aiosmtpd announcing PIPELINING, as real servers do) runs in its own process.
"""

from __future__ import annotations

import argparse
import binascii
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import format_datetime, make_msgid
from html import escape
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import floors, peers  # noqa: E402
from bench.mailtext import ANSWERS, legal, paragraphs, signature  # noqa: E402
from bench.sink import Sink  # noqa: E402
from bench.site import (  # noqa: E402
    Site,
    cleanup_template,
    full,
    machine,
    private_postgres,
    stop_on_term,
    write_results,
)
from buzon.core import run_plan  # noqa: E402

RTT_S = 0.020
#: Connections to one account, all the workers `buzon run` starts together (run_plan shares them out).
CONNECTIONS = run_plan.connections_per_worker() * run_plan.inbound_workers()
DOMAIN = "tienda-norte.example"


def reply_text() -> str:
    import random

    rng = random.Random(5)
    return "\n\n".join(["Hola Lucía:", *paragraphs(rng, "es", 3, ANSWERS), "\n".join(signature(
        "es", "Marta Ruiz", "Tienda Norte", 123)), legal("es", "Tienda Norte")])


def _proxy(target: int, rtt: float, ready: Any) -> None:
    from tests.support.proxy import Proxy

    ready.put(Proxy(target, latency_s=rtt).start().port)
    threading.Event().wait()


def wait_sink(sink: Sink, prefix: str, n: int, timeout: float) -> float:
    """The time (epoch) the sink received the last of the n messages whose subject starts with prefix."""
    deadline = time.monotonic() + timeout
    while True:
        got = [when for when, _mid, subject in sink.received() if subject.startswith(prefix)]
        if len(got) >= n:
            return max(got)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(got)} of {n} '{prefix}' messages reached the sink in {timeout:.0f} s")
        time.sleep(0.1)


def floor(port: int, n: int, text: str, key: Any) -> float:
    text_qp = binascii.b2a_qp(text.replace("\n", "\r\n").encode(), istext=True)
    html = "".join(f"<p>{escape(p)}</p>\r\n" for p in text.split("\n\n"))
    html_qp = binascii.b2a_qp(html.encode(), istext=True)

    def build(i: int) -> tuple[str, list[str], bytes]:
        """The message as one template (no email.message object: the cheapest correct MIME), signed."""
        boundary = f"b{i:08d}{os.getpid()}"
        data = (f"From: Tienda Norte <pedidos@{DOMAIN}>\r\nTo: cliente{i}@example.test\r\nSubject: floor {i}\r\n"
                f"Date: {format_datetime(time_now())}\r\nMessage-ID: {make_msgid(domain=DOMAIN)}\r\n"
                f"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
                f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + text_qp + (
                f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + html_qp + \
            f"\r\n--{boundary}--\r\n".encode()
        return f"pedidos@{DOMAIN}", [f"cliente{i}@example.test"], \
            floors.dkim_sign(data, b"buzon", DOMAIN.encode(), key) + data

    started = time.perf_counter()
    sent = floors.send(port, [build(i) for i in range(n)], CONNECTIONS)
    assert sent == n
    return time.perf_counter() - started


def floor_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def time_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("-n", type=int, default=5_000 if full() else 500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="messages per batch request (0: no batch figure)")
    parser.add_argument("--postgres", action="store_true",
                        help="the site on a private PostgreSQL cluster (synchronous_commit off: SQLite's "
                             "synchronous=NORMAL, no fsync per commit) instead of SQLite")
    parser.add_argument("--no-single", action="store_true",
                        help="skip the one-message-a-request figures (to profile the batch and the drain); "
                             "the figures go to send(-postgres)-partial.json, which bench/report.py leaves out")
    args = parser.parse_args()
    stop_on_term()
    n, text = args.n, reply_text()
    work = Path(tempfile.mkdtemp(prefix="buzon-bench-send-"))
    postgres = None
    if args.postgres:
        postgres = private_postgres(work)
    sink = Sink(work).start()
    context = multiprocessing.get_context("fork")
    ready = context.Queue()
    proxy = context.Process(target=_proxy, args=(sink.port, RTT_S, ready), daemon=True)
    proxy.start()
    proxy_port = ready.get(timeout=20)
    site = Site(**({"DATABASE_URL": postgres.url} if postgres else {}))
    os.environ.update(site.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "buzon.settings"
    import django

    django.setup()
    from django.db import transaction

    from buzon.mailboxes.models import EmailAccount, EmailDomain
    from buzon.messages.outbox import queue_many
    from buzon.outbound import confirm, signing

    rows: list[dict[str, Any]] = []
    timeout = 300 + n
    try:
        domain = EmailDomain.objects.create(domain_name=DOMAIN)
        signing.generate(domain)
        key = floor_key()
        accounts = {}
        for name, port in (("pedidos", sink.port), ("pedidos-lejos", proxy_port)):
            account = EmailAccount.objects.create(
                email_address=f"{name}@{DOMAIN}", domain=domain, outgoing_enabled=True, smtp_host="127.0.0.1",
                smtp_port=port, smtp_security="none", smtp_auth=False, add_signature=False, tls_verify=False,
                default_outgoing=name == "pedidos")
            confirm.mark_confirmed(account)
            accounts[name] = account
        # The floor runs before Buzón's figures and again after them, with no Buzón process running;
        # each ratio is taken against the mean of the two: on a shared machine whose speed drifts
        # within minutes, a floor timed once, after, can flatter or sink every ratio of the run.
        far = f"{RTT_S * 1000:.0f} ms RTT"
        floor_runs: dict[str, list[float]] = {"loopback": [floor(sink.port, n, text, key)],
                                              far: [floor(proxy_port, n, text, key)]}
        site.admin()
        site.web()
        site.workers()  # as `buzon run` starts them

        def api_send(name: str, prefix: str) -> tuple[float, float]:
            """n single sends through `name`'s account: (seconds to the last at the sink, to the last 202)."""
            def post(i: int) -> None:
                status, answer = site.post_json("/api/v1/messages/send/", {
                    "to": [f"cliente{i}@example.test"], "subject": f"{prefix}{i}", "text": text,
                    "account": accounts[name].pk})
                if status != 202:
                    raise RuntimeError(f"send refused: {status} {str(answer)[:300]}")

            started, t0 = time.perf_counter(), time.time()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(post, range(n)))
            accepted = time.perf_counter() - started
            return wait_sink(sink, prefix, n, timeout) - t0, accepted

        api_s = accepted = far_s = far_accepted = 0.0
        if not args.no_single:
            api_s, accepted = api_send("pedidos", "api ")
            print(f"API send → sink: {n / api_s:.0f} msg/s ({api_s:.1f} s; the API accepted {n / accepted:.0f}/s)",
                  flush=True)
            far_s, far_accepted = api_send("pedidos-lejos", "api-lejos ")
            print(f"API send → sink, {RTT_S * 1000:.0f} ms RTT: {n / far_s:.0f} msg/s ({far_s:.1f} s; the API "
                  f"accepted {n / far_accepted:.0f}/s)", flush=True)
        batch_s = batch_accepted = 0.0
        if args.batch > 0:
            def post_batch(first: int) -> None:
                status, answer = site.post_json("/api/v1/messages/send/batch/", [
                    {"to": [f"cliente{i}@example.test"], "subject": f"lote {i}", "text": text,
                     "account": accounts["pedidos"].pk} for i in range(first, min(first + args.batch, n))])
                if status != 200 or any(r["status"] != "queued" for r in answer):
                    raise RuntimeError(f"batch refused: {status} {str(answer)[:300]}")

            started, t0 = time.perf_counter(), time.time()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(post_batch, range(0, n, args.batch)))
            batch_accepted = time.perf_counter() - started
            batch_s = wait_sink(sink, "lote ", n, timeout) - t0
            print(f"API batch send ({args.batch} a request) → sink: {n / batch_s:.0f} msg/s ({batch_s:.1f} s; "
                  f"the API accepted {n / batch_accepted:.0f}/s)"
                  + (f"; {api_s / batch_s:.1f}× the single send" if api_s else ""), flush=True)
        drains = {}
        for where, name in (("loopback", "pedidos"), (f"{RTT_S * 1000:.0f} ms RTT", "pedidos-lejos")):
            with transaction.atomic():
                # As the batch API queues them (100 a call): one delivery task a call, asked for after
                # the commit. Queued one by one, this process would ask the task queue once a message
                # (on_commit) while the clock runs, taking CPU from the worker it times.
                for first in range(0, n, 100):
                    queued = queue_many([{"to": [f"cliente{i}@example.test"], "subject": f"{name} {i}",
                                          "text": text, "account": accounts[name]}
                                         for i in range(first, min(first + 100, n))])
                    if not all(hasattr(m, "pk") for m in queued):
                        raise RuntimeError(f"queueing refused: {queued}")
                # The clock starts at the commit, next: the worker may start sending then.
                t0 = time.time()
            drains[where] = wait_sink(sink, f"{name} ", n, timeout) - t0
            print(f"queue drain, DKIM, {where}: {n / drains[where]:.0f} msg/s ({drains[where]:.1f} s)", flush=True)
        site.stop()
        floor_runs["loopback"].append(floor(sink.port, n, text, key))
        floor_runs[far].append(floor(proxy_port, n, text, key))
        floor_s = {where: sum(runs) / len(runs) for where, runs in floor_runs.items()}

        def spread(where: str) -> str:
            return f"the floor {n / floor_runs[where][0]:.0f} msg/s before Buzón, {n / floor_runs[where][1]:.0f} after"
        for where, runs in floor_runs.items():
            print(f"floor aiosmtplib, {CONNECTIONS} connections, DKIM, {where}: {n / floor_s[where]:.0f} msg/s "
                  f"(before Buzón {n / runs[0]:.0f}, after {n / runs[1]:.0f})", flush=True)
        office = {where: peers.post_office(port, n, CONNECTIONS, text)
                  for where, port in (("loopback", sink.port), (f"{RTT_S * 1000:.0f} ms RTT", proxy_port))}
        for where, got in office.items():
            if got:
                print(f"django-post-office, {where}: {got[1] / got[0]:.0f} msg/s ({got[2]})", flush=True)
        if api_s:
            rows.append({"figure": "send: POST /api/v1/messages/send/ → accepted by the SMTP server, loopback",
                         "value": n / api_s, "unit": "msg/s", "floor": f"aiosmtplib, {CONNECTIONS} connections, DKIM",
                         "floor_value": n / floor_s["loopback"],
                         "note": f"{args.clients} API clients at once; the API accepted {n / accepted:.0f}/s; "
                                 + spread("loopback")})
            rows.append({"figure": f"send: POST /api/v1/messages/send/ → accepted by the SMTP server, {far}",
                         "value": n / far_s, "unit": "msg/s", "floor": f"aiosmtplib, {CONNECTIONS} connections, DKIM",
                         "floor_value": n / floor_s[far],
                         "note": f"{args.clients} API clients at once; the API accepted {n / far_accepted:.0f}/s; "
                                 + spread(far)})
        if batch_s:
            rows.append({"figure": f"send: POST /api/v1/messages/send/batch/ ({args.batch} a request) → accepted by "
                                   "the SMTP server, loopback",
                         "value": n / batch_s, "unit": "msg/s", "floor": f"aiosmtplib, {CONNECTIONS} connections, DKIM",
                         "floor_value": n / floor_s["loopback"],
                         "note": f"{min(args.clients, -(-n // args.batch))} API clients at once; "
                                 f"the API accepted {n / batch_accepted:.0f}/s"
                                 + (f"; {api_s / batch_s:.1f}× the single send in this run" if api_s else "")
                                 + "; " + spread("loopback")})
        for where, seconds in drains.items():
            got = office.get(where)
            rows.append({"figure": f"send: queue drained by buzon worker, DKIM, {where}", "value": n / seconds,
                         "unit": "msg/s", "floor": f"aiosmtplib, {CONNECTIONS} connections, DKIM",
                         "floor_value": n / floor_s[where],
                         "note": spread(where),
                         "peers": [{"peer": f"django-post-office ({got[2]})", "peer_value": got[1] / got[0]}]
                         if got else []})
    finally:
        site.cleanup()
        cleanup_template()
        sink.stop()
        proxy.terminate()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)  # the cluster's files: about 300 MB a run
    notes = [f"send: {n} messages per figure, a {len(text.encode())}-byte reply (text; Buzón adds its HTML)",
             f"Buzón as `buzon run` starts it: buzon web ({run_plan.web_workers()} workers, 4 threads each) and "
             f"{run_plan.inbound_workers()} buzon worker processes, each delivering through up to "
             f"{CONNECTIONS // run_plan.inbound_workers()} connections an account; "
             f"{'PostgreSQL' if postgres else 'SQLite'}"]
    for row in rows if postgres else []:
        row["figure"] += ", PostgreSQL"
    print(f"machine: {machine()}")
    name = "send-postgres" if postgres else "send"
    if args.no_single or args.batch <= 0:  # a partial run does not replace the full one's figures
        name += "-partial"
    print(f"results: {write_results(name, rows, notes)}")


if __name__ == "__main__":
    main()

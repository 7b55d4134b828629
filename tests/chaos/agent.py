"""The chaos test's and load bench's hands inside Buzón, run as a separate process on the database
under test (`python -m tests.chaos.agent setup|send|report`, DATABASE_URL in the environment), so
the test process itself never holds a connection to the private PostgreSQL it restarts.

Incoming test mail carries its delivery time in the subject ("in <epoch> <n>"), so `report` can
measure arrival (written into Dovecot) to record (the Message row committed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
    import django

    django.setup()


def setup(args: argparse.Namespace) -> dict[str, object]:
    from buzon.mailboxes.models import AccountState, EmailAccount
    from buzon.outbound import confirm

    ports: dict[str, int] = json.loads(Path(args.addresses).read_text())  # address -> port (counting proxy)
    accounts = []
    for address, port in ports.items():
        account = EmailAccount(
            email_address=address, incoming_enabled=True, incoming_protocol="imap", incoming_host="localhost",
            incoming_port=port, incoming_security="ssl", state=AccountState.IDLE, initial_sync_count=0,
            create_customer_if_not_found=True)
        account.set_password("secret")
        accounts.append(account)
    EmailAccount.objects.bulk_create(accounts, batch_size=500)
    sender = EmailAccount(email_address="sender@example.test", outgoing_enabled=True, smtp_host="127.0.0.1",
                          smtp_port=args.smtp_port, smtp_security="none", smtp_auth=False, default_outgoing=True,
                          display_name="Chaos")
    sender.set_password("unused")
    sender.save()
    confirm.mark_confirmed(sender)
    return {"incoming": len(accounts), "sender": sender.pk}


def send(args: argparse.Namespace) -> dict[str, object]:
    """Queue `rate` messages a second for `seconds`; the list of Message-IDs goes to `--out`."""
    from buzon.mailboxes.models import EmailAccount
    from buzon.messages.outbox import queue_outgoing

    sender = EmailAccount.objects.get(email_address="sender@example.test")
    queued: list[str] = []
    started = time.monotonic()
    failures = 0
    n = 0
    out = Path(args.out)
    while time.monotonic() - started < args.seconds:
        due = int((time.monotonic() - started) * args.rate)
        # a queue slower than the rate must not keep this loop going past the end of the run
        while n < due and time.monotonic() - started < args.seconds:
            try:
                message = queue_outgoing(to=[f"rcpt{n}@example.test"], subject=f"out {time.time():.3f} {n}",
                                         text=f"Outgoing test message {n}.", account=sender)
                queued.append(message.message_id)
            except Exception as exc:  # the database was restarted under us: count it, retry this one
                failures += 1
                print(f"queue failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                from django import db

                db.close_old_connections()
                for conn in db.connections.all():
                    conn.close_if_unusable_or_obsolete()
                time.sleep(0.5)
                continue
            n += 1
        out.write_text(json.dumps(queued))
        time.sleep(0.02)
    out.write_text(json.dumps(queued))
    return {"queued": len(queued), "queue_failures": failures}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(args: argparse.Namespace) -> dict[str, object]:
    from django.db.models import Count

    from buzon.mailboxes.models import EmailAccount
    from buzon.messages.models import Direction, Message
    from buzon.outbound.models import OutgoingEmail
    from buzon.sync.models import RawMessage, SyncLease

    raws = Counter(RawMessage.objects.filter(subject__startswith="in ").values_list("subject", flat=True))
    raw_status = dict(RawMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
    incoming = list(Message.objects.filter(direction=Direction.INCOMING, subject__startswith="in ")
                    .values_list("subject", "created_at"))
    per_subject = Counter(subject for subject, _ in incoming)
    latencies = [created.timestamp() - float(subject.split()[1]) for subject, created in incoming]
    # the two stages: written into Dovecot -> raw bytes committed (sync), committed -> Message (pipeline)
    stages = list(Message.objects.filter(direction=Direction.INCOMING, subject__startswith="in ", raw__isnull=False)
                  .values_list("subject", "raw__received_at", "created_at"))
    sync_s = [stored.timestamp() - float(subject.split()[1]) for subject, stored, _ in stages]
    pipeline_s = [(created - stored).total_seconds() for _, stored, created in stages]
    out_states = dict(OutgoingEmail.objects.values_list("state").annotate(n=Count("pk")).order_by())
    oldest_wait = [o.next_attempt_at.timestamp() for o in OutgoingEmail.objects.filter(state="pending")]
    accounts = dict(EmailAccount.objects.filter(incoming_enabled=True).values_list("state")
                    .annotate(n=Count("pk")).order_by())
    return {
        "raw_subjects": len(raws), "raw_duplicates": sum(n - 1 for n in raws.values() if n > 1),
        "raw_status": raw_status,
        "message_subjects": len(per_subject), "message_duplicates": sum(n - 1 for n in per_subject.values() if n > 1),
        "received_subjects": sorted(per_subject) if args.subjects else [],
        "raw_subject_list": sorted(raws) if args.subjects else [],
        "latency_p50": _percentile(latencies, 0.5), "latency_p99": _percentile(latencies, 0.99),
        "latency_max": max(latencies, default=0.0),
        "latency_mean": statistics.fmean(latencies) if latencies else 0.0,
        "sync_p50": _percentile(sync_s, 0.5), "sync_p99": _percentile(sync_s, 0.99),
        "pipeline_p50": _percentile(pipeline_s, 0.5), "pipeline_p99": _percentile(pipeline_s, 0.99),
        "outgoing": out_states, "outgoing_due_oldest_s": time.time() - min(oldest_wait) if oldest_wait else 0.0,
        "accounts": accounts,
        "leases_held": SyncLease.objects.exclude(owner="").count(),
    }


def account(args: argparse.Namespace) -> dict[str, object]:
    """What Buzón knows of one account: folder cursors, lease, and the UIDs it stored."""
    from buzon.mailboxes.models import EmailAccount
    from buzon.sync.models import FolderCursor, RawMessage, SyncLease

    acc = EmailAccount.objects.get(email_address=args.address)
    lease = SyncLease.objects.filter(account=acc).first()
    return {
        "id": acc.pk, "state": acc.state, "last_error": acc.last_error,
        "cursors": list(FolderCursor.objects.filter(account=acc).values("folder", "uidvalidity", "last_uid",
                                                                          "initial_done")),
        "lease": {"owner": lease.owner, "expires_at": str(lease.expires_at), "taken_at": str(lease.taken_at)}
        if lease else None,
        "uids": sorted(RawMessage.objects.filter(account=acc).values_list("uid", flat=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--addresses", required=True)
    p.add_argument("--smtp-port", type=int, required=True)
    p = sub.add_parser("send")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--subjects", action="store_true")
    p = sub.add_parser("account")
    p.add_argument("--address", required=True)
    args = parser.parse_args()
    _setup_django()
    result = {"setup": setup, "send": send, "report": report, "account": account}[args.command](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

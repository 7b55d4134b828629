"""A sending worker killed with SIGKILL mid-run, then restarted: nothing lost, at most the in-flight one twice.

The worker is a real process (`buzon send_queued --watch`) on PostgreSQL, sending to an aiosmtpd sink
that keeps each message and then waits a little before its 250, as a real server does while it
writes the mail to disk. That wait is the window in which a crash leaves a message delivered but
not recorded, so the kill usually lands in it and the duplicate the design allows really happens.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import connection

from buzon.mailboxes.models import EmailAccount
from buzon.messages.outbox import queue_outgoing
from buzon.outbound import confirm
from buzon.outbound.models import AttemptOutcome, DeliveryAttempt, OutgoingEmail, QueueState
from tests.support.certs import TestCerts
from tests.support.smtpd import SinkHandler, SMTPServer
from tests.sync.helpers import wait_for
from tests.sync.procs import buzon, buzon_env, stop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.slow]

MESSAGES = 60
LEASE_S = 3


class SlowToAnswer(SinkHandler):
    """Keeps the message, then takes 40 ms to say 250."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(0.04)
        return reply


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.parametrize("connections", [1, 3])
def test_kill_9_mid_sending_loses_nothing_and_resends_only_the_in_flight(
        test_certs: TestCerts, postgres_url: str, tmp_path: Path, connections: int) -> None:
    sink = SMTPServer(test_certs, mode="plain", require_auth=False)
    sink.handler = sink.controller.handler = SlowToAnswer()
    sink.start()
    try:
        account = EmailAccount(email_address="sender@example.test", outgoing_enabled=True, smtp_host="127.0.0.1",
                               smtp_port=sink.port, smtp_security="none", smtp_auth=False)
        account.save()
        confirm.mark_confirmed(account)
        queued = {queue_outgoing(to=[f"c{n}@example.org"], subject=f"n{n}", text="x", account=account).message_id
                  for n in range(MESSAGES)}
        env = buzon_env(_database_url(), tmp_path, BUZON_OUTBOUND_CONNECTIONS=str(connections),
                        BUZON_OUTBOUND_CLAIM_LEASE=str(LEASE_S), BUZON_OUTBOUND_BATCH="10")
        log = tmp_path / "worker.log"
        first = buzon(env, "send_queued", "--watch", "--interval", "0.3", log=log)
        wait_for(lambda: len(sink.messages) >= MESSAGES // 4, 60)
        stop(first, signal.SIGKILL)
        received_at_kill = len(sink.messages)
        assert received_at_kill < MESSAGES, "the worker finished before it could be killed"

        second = buzon(env, "send_queued", "--watch", "--interval", "0.3", log=log)
        try:
            wait_for(lambda: OutgoingEmail.objects.filter(state=QueueState.SENT).count() == MESSAGES, 90)
        finally:
            assert stop(second) == 0, log.read_text()[-3000:]

        counts: Counter[str] = Counter(str(m.message["Message-ID"]) for m in sink.messages)
        assert set(counts) == queued  # nothing lost
        twice = {mid for mid, n in counts.items() if n > 1}
        assert max(counts.values()) <= 2
        maybe_sent = set(DeliveryAttempt.objects.filter(outcome=AttemptOutcome.UNKNOWN)
                         .values_list("outgoing__message__message_id", flat=True))
        # Only a message in flight when the worker died may arrive twice, and each such one is logged.
        assert twice <= maybe_sent
        assert len(maybe_sent) <= connections
        assert not OutgoingEmail.objects.exclude(state=QueueState.SENT).exists()
    finally:
        sink.stop()


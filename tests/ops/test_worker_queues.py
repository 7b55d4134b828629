"""`buzon worker` (a real process) runs inbound, outbound and housekeeping tasks on slots of their own:
while a relay takes 8 s to accept a message, mail stored meanwhile becomes a record at once; a
worker pointed at the outbound queue never runs the pipeline; the worker processes `buzon run`
starts drain a big outgoing queue together, each message once; mail sent a message at a time shares
one delivery task that lingers, and still leaves at once. On both task backends: the database
queue (SQLite, as a trial site runs) and RQ on Redis."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection
from django.utils.module_loading import import_string
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from buzon.core import run_plan
from buzon.core.models import ProcessHeartbeat
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Message
from buzon.messages.outbox import queue_many, queue_outgoing
from buzon.outbound import confirm
from buzon.outbound.models import OutgoingEmail
from buzon.sync.models import RawMessage
from tests.support.smtpd import SlowHandler, SMTPServer
from tests.sync.helpers import make_mail, wait_for
from tests.sync.procs import buzon, buzon_env, stop

# The Redis cases use Redis databases 10 to 14, one a test, each emptied first (a worker left over
# from one test could never take another's tasks): one xdist worker runs them all.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("redis-dbs-10-14")]

RELAY_S = 8.0  # the slow relay's time per message
RECORD_WITHIN_S = 2.0  # stored → record, while the relay holds outbound
BACKENDS = ["db", pytest.param("rq", marks=pytest.mark.redis)]


@pytest.fixture
def slow_relay(test_certs) -> Iterator[SMTPServer]:
    server = SMTPServer(test_certs, mode="plain", users={"sender@example.test": "smtp-secret"},
                        handler=SlowHandler(delay_s=RELAY_S)).start()
    yield server
    server.stop()


REDIS_DBS = {"test_a_slow_relay_does_not_hold_up_incoming_mail": 10,
             "test_a_worker_on_the_outbound_queue_never_runs_the_pipeline": 11,
             "test_the_workers_buzon_run_starts_drain_a_big_queue_together_each_message_once": 12,
             "test_mail_sent_a_message_at_a_time_shares_a_lingering_task_and_leaves_at_once": 13,
             "test_on_redis_steady_sending_never_piles_up_delivery_tasks_behind_a_lingering_one": 14}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a worker on this test's database, with this process queueing where it reads."""
    name = connection.settings_dict["NAME"]
    assert connection.vendor == "sqlite" and Path(name).is_file(), "a database file both processes open"
    extra = {"BUZON_HEARTBEAT": "1", "BUZON_TASKS": request.param}
    if request.param == "rq":
        # each test its own Redis database, that no other test of the suite uses
        number = REDIS_DBS[request.node.originalname]
        url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + f"/{number}"
        redis.Redis.from_url(url).flushdb()
        extra["REDIS_URL"] = url
        settings.TASK_BACKEND_NAME, settings.REDIS_URL = "rq", url
        settings.RQ_QUEUES = {q: {"URL": url, "DEFAULT_TIMEOUT": 600} for q in settings.TASK_QUEUES}
        settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": settings.TASK_QUEUES}}
    yield buzon_env(f"sqlite:///{name}", tmp_path, **extra)
    if request.param == "rq":
        redis.Redis.from_url(extra["REDIS_URL"]).flushdb()


def _account(port: int) -> EmailAccount:
    account = EmailAccount(email_address="sender@example.test", incoming_enabled=True, incoming_host="localhost",
                           outgoing_enabled=True, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                           smtp_auth=True, create_customer_if_not_found=True)
    account.set_password("smtp-secret")
    account.save()
    confirm.mark_confirmed(account)
    return account


def _arrives(account: EmailAccount, n: int) -> RawMessage:
    """Mail stored by the sync engine, and its pipeline task queued."""
    data = make_mail(n, subject=f"arrival {n}", message_id=f"<arrival-{n}@example.test>")
    raw = RawMessage.objects.create(account=account, account_address=account.email_address, folder="INBOX",
                                    uidvalidity=1, uid=n, data=data, size=len(data), subject=f"arrival {n}",
                                    sha256=hashlib.sha256(data).hexdigest(), message_id=f"<arrival-{n}@example.test>")
    raw.task_result = import_string("buzon.inbound.tasks.process_raw_messages").enqueue([raw.pk])  # type: ignore[attr-defined]
    return raw


def _started(worker: Any, log: Path) -> dict[str, float]:
    """Wait for the worker's heartbeat; returns its slots per queue."""
    def slots() -> dict[str, float] | None:
        assert worker.poll() is None, log.read_text()[-3000:]
        row = ProcessHeartbeat.objects.filter(pid=worker.pid, kind="worker").first()
        return (row.stats or {}).get("worker_slots") if row else None
    return wait_for(slots, 60)


def test_a_slow_relay_does_not_hold_up_incoming_mail(backend, slow_relay, tmp_path):
    account = _account(slow_relay.port)
    log = tmp_path / "worker.log"
    worker = buzon(backend, "worker", log=log)
    try:
        assert _started(worker, log)["inbound"] >= 1
        sent = queue_outgoing(to=["customer@example.test"], subject="Your order", text="On its way.", account=account)
        assert slow_relay.handler.receiving.wait(30), log.read_text()[-3000:]  # the relay holds it now
        raw = _arrives(account, 1)
        began = time.monotonic()
        record = wait_for(lambda: Message.objects.filter(message_id="<arrival-1@example.test>").first(), RELAY_S)
        took = time.monotonic() - began
        assert record.subject == "arrival 1" and not slow_relay.messages, "the relay was still holding outbound"
        assert took < RECORD_WITHIN_S, f"stored → record took {took:.2f} s while the relay held outbound"
        assert RawMessage.objects.get(pk=raw.pk).status == "processed"
        # and outbound, on its own slot, gets through once the relay answers
        wait_for(lambda: any(m.message["Message-ID"] == sent.message_id for m in slow_relay.messages), RELAY_S + 20)
    finally:
        code = stop(worker, timeout=RELAY_S + 20)
    assert code == 0, log.read_text()[-3000:]


def test_a_worker_on_the_outbound_queue_never_runs_the_pipeline(backend, smtp_plain, settings, tmp_path):
    account = _account(smtp_plain.port)
    log = tmp_path / "worker.log"
    worker = buzon(backend, "worker", "--queue", "outbound", "--concurrency", "2", "--no-periodic", log=log)
    try:
        assert _started(worker, log) == {"outbound": 2}
        raw = _arrives(account, 2)
        sent = queue_outgoing(to=["customer@example.test"], subject="Invoice", text="Attached.", account=account)
        wait_for(lambda: any(m.message["Message-ID"] == sent.message_id for m in smtp_plain.messages), 30)
        time.sleep(1)  # more than a poll interval after it went out: time enough to take the inbound task too
    finally:
        code = stop(worker)
    assert code == 0, log.read_text()[-3000:]
    assert RawMessage.objects.get(pk=raw.pk).status == "stored"
    assert not Message.objects.filter(message_id="<arrival-2@example.test>").exists()
    # still waiting in its queue, as the backend that queued it tells
    queued = raw.task_result
    assert queued.task.get_backend().get_result(queued.id).status == TaskResultStatus.READY
    if settings.TASK_BACKEND_NAME == "db":
        assert DBTaskResult.objects.get(queue_name="inbound").status == TaskResultStatus.READY


@dataclass
class CountingRelay(SlowHandler):
    """A relay that takes `delay_s` per message and counts how many it holds at once, at most."""

    holding: int = 0
    most: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.holding += 1
        self.most = max(self.most, self.holding)
        try:
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.holding -= 1


def test_the_workers_buzon_run_starts_drain_a_big_queue_together_each_message_once(backend, test_certs, tmp_path,
                                                                                    monkeypatch):
    """Two connections to the relay shared by the two processes, one each: two messages held at once
    means both processes send. The first worker gets the 3 slots of a 2-core machine whatever this
    one has (spare slots would run the helper task in the same process)."""
    relay = SMTPServer(test_certs, mode="plain", users={"sender@example.test": "smtp-secret"},
                       handler=CountingRelay(delay_s=0.3)).start()
    monkeypatch.setenv("BUZON_INBOUND_WORKERS", "2")  # as on a 2-core machine
    monkeypatch.setenv("BUZON_OUTBOUND_CONNECTIONS", "2")
    env = {**backend, "BUZON_OUTBOUND_BATCH": "3"}
    account = _account(relay.port)
    plan = [(name, args + (["--concurrency", "3"] if "--concurrency" not in args else []))
            for name, args in run_plan.children("127.0.0.1", 0) if args[0] == "worker"]
    assert all(args[args.index("--connections") + 1] == "1" for _name, args in plan)
    workers = {name: buzon(env, *args, log=tmp_path / f"{name}.log") for name, args in plan}
    try:
        assert len(workers) == 2
        served = sorted((_started(w, tmp_path / f"{name}.log") for name, w in workers.items()), key=len)
        assert served == [{"inbound": 1.0, "outbound": 1.0}, {"inbound": 1.0, "outbound": 1.0, "housekeeping": 1.0}]
        queued = queue_many([{"to": [f"customer{n}@example.test"], "subject": f"Offer {n}", "text": "Hello.",
                              "account": account} for n in range(12)])  # one delivery task for the twelve
        try:
            wait_for(lambda: len(relay.messages) >= 12 or None, 60)
            late = ""
        except AssertionError:  # kept with the queue's rows and the workers' logs, read once they stop
            late = (f"{len(relay.messages)} of 12 at the relay after 60 s; queue: "
                    f"{list(OutgoingEmail.objects.values_list('message_id', 'state', 'attempts', 'claimed_by'))}; "
                    f"tasks: {list(DBTaskResult.objects.values_list('queue_name', 'status'))}")
        time.sleep(1)  # time enough for a second copy of any of them to arrive
    finally:
        codes = {name: stop(w) for name, w in workers.items()}
        relay.stop()
    logs = {n: (tmp_path / f"{n}.log").read_text()[-3000:] for n in workers}
    assert not late, (late, logs)
    assert codes == {name: 0 for name in workers}, logs
    arrived = Counter(m.message["Message-ID"] for m in relay.messages)
    assert arrived == Counter({m.message_id: 1 for m in queued})
    assert relay.handler.most == 2, "only one worker process sent: the other was never asked to help"


def test_mail_sent_a_message_at_a_time_shares_a_lingering_task_and_leaves_at_once(backend, smtp_plain, settings,
                                                                                   tmp_path):
    account = _account(smtp_plain.port)
    log = tmp_path / "worker.log"
    worker = buzon(backend, "worker", "--concurrency", "3", log=log)  # outbound's slot its own, no spare
    took = []
    try:
        _started(worker, log)
        for n in range(10):  # an agent's replies, or an integration calling the API, one at a time
            sent = queue_outgoing(to=[f"customer{n}@example.test"], subject=f"Reply {n}", text="Thanks.",
                                  account=account)
            began = time.monotonic()
            wait_for(lambda: any(m.message["Message-ID"] == sent.message_id for m in smtp_plain.messages), 10,
                     interval=0.01)
            took.append(time.monotonic() - began)
            time.sleep(0.1)
    finally:
        code = stop(worker)
    assert code == 0, log.read_text()[-3000:]
    assert len(smtp_plain.messages) == 10
    assert max(took) < 2.0, f"queued → at the relay took {max(took):.2f} s"  # a claim every 0.2 s
    if settings.TASK_BACKEND_NAME != "rq":
        # the first task delivers them all; the one the next message queued meanwhile finds nothing
        tasks = DBTaskResult.objects.filter(task_path=settings.OUTBOUND_TASK).count()
        assert tasks <= 3, f"{tasks} delivery tasks for 10 messages"


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["rq"], indirect=True)
def test_on_redis_steady_sending_never_piles_up_delivery_tasks_behind_a_lingering_one(backend, smtp_plain, settings,
                                                                                      tmp_path):
    """The task a send queues waits behind the lingering one; its Redis mark lasts that long, so the
    sends after it join it instead of each queueing one more once a shorter mark expired."""
    from django_tasks.signals import task_enqueued

    settings.OUTBOUND_COALESCE_S, settings.OUTBOUND_LINGER_MAX_S = 1, 3
    account = _account(smtp_plain.port)
    log = tmp_path / "worker.log"
    worker = buzon({**backend, "BUZON_OUTBOUND_LINGER_MAX": "3"}, "worker", "--no-periodic", "--concurrency", "3",
                   log=log)
    queued: list[Any] = []

    def count(sender: Any, task_result: Any, **kwargs: Any) -> None:
        if task_result.task.module_path == settings.OUTBOUND_TASK:
            queued.append(task_result.id)

    task_enqueued.connect(count)
    sent = []
    try:
        _started(worker, log)
        began = time.monotonic()
        for n in range(48):  # a message every 0.25 s for 12 s
            sent.append(queue_outgoing(to=[f"customer{n}@example.test"], subject=f"Reply {n}", text="Thanks.",
                                       account=account).message_id)
            time.sleep(0.25)
        took = time.monotonic() - began
        wait_for(lambda: len(smtp_plain.messages) >= 48 or None, 30)
    finally:
        task_enqueued.disconnect(count)
        code = stop(worker)
    assert code == 0, log.read_text()[-3000:]
    assert Counter(m.message["Message-ID"] for m in smtp_plain.messages) == Counter(sent)
    # one task per lingering stretch (3 s) or so; a 1 s mark would have let a send queue one each second
    assert len(queued) <= took / 3 + 3, f"{len(queued)} delivery tasks queued for 48 messages in {took:.1f} s"

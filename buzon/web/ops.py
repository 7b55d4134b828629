"""Operations: /healthz, /readyz, /metrics (Prometheus) and the processes page.

/metrics reads the database at scrape time (a custom collector), so whichever web process
answers, the figures are the deployment's, not that process's. Accounts are labelled by id only:
the endpoint is often scraped without a login, and addresses are personal data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import pgettext_lazy
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from buzon.core import redis_client
from buzon.core.models import ProcessHeartbeat
from buzon.core.queues import ALL_QUEUES, LEGACY, waiting_by_queue
from buzon.mailboxes.models import EmailAccount
from buzon.outbound.models import DeliveryAttempt, OutgoingEmail, QueueState
from buzon.sync.models import RawMessage, SyncLease
from buzon.web.access import staff_required


# ---------------------------------------------------------------------------------------- health
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Alive: the process answers. Nothing else is checked (a restart would not fix a database)."""
    return HttpResponse("ok\n", content_type="text/plain")


_schema_current = False  # once this process saw every migration applied (a new release is a new process)


def _check_database() -> None:
    """A real read, not `SELECT 1`: the tables a signed-in request reads (users, sessions) answer a query,
    and the database has every migration this code needs (a web process started before `buzon
    migrate` is not ready: its pages would fail on missing columns)."""
    global _schema_current
    get_user_model().objects.order_by().values_list("pk").first()
    Session.objects.order_by().values_list("expire_date").first()
    if not _schema_current:
        executor = MigrationExecutor(connection)
        missing = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if missing:
            raise RuntimeError(f"{len(missing)} migration(s) not applied yet (first: {missing[0][0]}); "
                               "run buzon migrate")
        _schema_current = True


def _check_redis() -> None:
    # the process's client, kept (a probe every few seconds reuses its connection), with short
    # timeouts: a Redis that does not answer fails the probe in 2 s
    redis_client.client(settings.REDIS_URL or "redis://127.0.0.1:6379/0", timeout=2).ping()


def _check_task_backend() -> None:
    if settings.TASK_BACKEND_NAME == "db":
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.exists()
    elif settings.TASK_BACKEND_NAME == "rq":
        _check_redis()


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """Ready to serve: 200, or 503 naming each failing part (database, task backend, Redis).
    docs/operations.md ("Health and readiness") says what each check means."""
    checks = {"database": _check_database, "tasks": _check_task_backend}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis
    failed: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure of that part: name it, never crash the probe
            failed[name] = f"{type(exc).__name__}: {exc}"[:300]
    body = {"ready": not failed, "checks": {name: failed.get(name, "ok") for name in checks}}
    return JsonResponse(body, status=503 if failed else 200)


# --------------------------------------------------------------------------------------- metrics
def _age(then: object, now: object) -> float:
    return max(0.0, (now - then).total_seconds()) if then else 0.0  # type: ignore[operator]


class BuzonCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._accounts(now)
        yield from self._messages(now)
        yield from self._failures()
        yield from self._processes(now)

    def _accounts(self, now: object) -> Iterator[Metric]:
        state = GaugeMetricFamily("buzon_account_state", "1 for the state each account is in",
                                  labels=["account", "state"])
        lag = GaugeMetricFamily("buzon_account_sync_lag_seconds",
                                "Seconds since the sync engine last heard from the account's server",
                                labels=["account"])
        held = GaugeMetricFamily("buzon_account_lease_held", "1 if a sync process holds the account",
                                 labels=["account"])
        leased = set(SyncLease.objects.filter(expires_at__gt=now).values_list("account_id", flat=True))
        for pk, account_state, contact in EmailAccount.objects.filter(incoming_enabled=True).values_list(
                "pk", "state", "last_contact_at"):
            state.add_metric([str(pk), account_state], 1)
            if contact is not None:
                lag.add_metric([str(pk)], _age(contact, now))
            held.add_metric([str(pk)], 1 if pk in leased else 0)
        yield from (state, lag, held)

    def _messages(self, now: object) -> Iterator[Metric]:
        by_status = dict(RawMessage.objects.values_list("status").annotate(n=Count("id")).order_by())
        yield CounterMetricFamily("buzon_messages_fetched", "Messages stored by the sync engine",
                                  value=sum(by_status.values()))
        processed = CounterMetricFamily("buzon_messages_processed", "Messages through the pipeline, by outcome",
                                        labels=["outcome"])
        for status in (RawMessage.Status.PROCESSED, RawMessage.Status.SKIPPED, RawMessage.Status.FAILED):
            processed.add_metric([status], by_status.get(status, 0))
        yield processed
        queue = dict(OutgoingEmail.objects.values_list("state").annotate(n=Count("pk")).order_by())
        yield CounterMetricFamily("buzon_messages_sent", "Messages accepted by an SMTP server",
                                  value=queue.get(QueueState.SENT, 0))
        outgoing = GaugeMetricFamily("buzon_outgoing_messages", "Outgoing queue by state", labels=["state"])
        for state in QueueState.values:
            outgoing.add_metric([state], queue.get(state, 0))
        yield outgoing
        waiting = _waiting_tasks()
        depth = GaugeMetricFamily("buzon_queue_depth", "Work waiting, by queue", labels=["queue"])
        depth.add_metric(["tasks"], float(sum(waiting.values())))
        depth.add_metric(["inbound"], by_status.get(RawMessage.Status.STORED, 0))
        depth.add_metric(["outgoing"], OutgoingEmail.objects.filter(
            state=QueueState.PENDING, next_attempt_at__lte=now).count())
        yield depth
        lag = GaugeMetricFamily("buzon_queue_lag_seconds", "Age of the oldest waiting item", labels=["queue"])
        oldest_raw = RawMessage.objects.filter(status=RawMessage.Status.STORED).aggregate(at=Min("received_at"))["at"]
        oldest_out = OutgoingEmail.objects.filter(state=QueueState.PENDING, next_attempt_at__lte=now).aggregate(
            at=Min("next_attempt_at"))["at"]
        lag.add_metric(["inbound"], _age(oldest_raw, now))
        lag.add_metric(["outgoing"], _age(oldest_out, now))
        yield lag
        tasks = GaugeMetricFamily("buzon_tasks_waiting", "Tasks queued and not started, by task queue",
                                  labels=["queue"])
        for name, count in waiting.items():
            tasks.add_metric([name], float(count))
        yield tasks

    def _failures(self) -> Iterator[Metric]:
        sync = GaugeMetricFamily("buzon_sync_failures", "Accounts whose sync is failing, by reason", labels=["reason"])
        for code, n in (EmailAccount.objects.filter(state="error").values_list("last_error_code")
                        .annotate(n=Count("pk")).order_by()):
            sync.add_metric([code or "unknown"], n)
        yield sync
        steps: Counter[str] = Counter()
        for reason in RawMessage.objects.filter(status=RawMessage.Status.FAILED).values_list(
                "status_reason", flat=True).iterator():
            steps[reason.split(":", 1)[0][:40] or "unknown"] += 1
        pipeline = CounterMetricFamily("buzon_pipeline_failures", "Quarantined messages, by failing step",
                                       labels=["step"])
        for step, n in steps.items():
            pipeline.add_metric([step], n)
        yield pipeline
        sending = CounterMetricFamily("buzon_delivery_attempts", "SMTP delivery attempts, by outcome and reply code",
                                      labels=["outcome", "code"])
        for outcome, code, n in (DeliveryAttempt.objects.values_list("outcome", "code")
                                 .annotate(n=Count("id")).order_by()):
            sending.add_metric([outcome, str(code or "")], n)
        yield sending

    def _processes(self, now: object) -> Iterator[Metric]:
        rows = list(ProcessHeartbeat.objects.all())
        up = GaugeMetricFamily("buzon_processes", "Processes by kind and liveness", labels=["kind", "alive"])
        tasks = CounterMetricFamily("buzon_tasks", "Tasks run by workers (every process ever)", labels=["kind"])
        rate = GaugeMetricFamily("buzon_tasks_per_minute", "Tasks in the last minute, live processes", labels=["kind"])
        counts: Counter[tuple[str, str]] = Counter()
        totals: Counter[str] = Counter()
        rates: defaultdict[str, float] = defaultdict(float)
        step_seconds: defaultdict[str, float] = defaultdict(float)
        stage_seconds: defaultdict[str, float] = defaultdict(float)
        for row in rows:
            alive = row.is_alive
            counts[(row.kind, "1" if alive else "0")] += 1
            totals[row.kind] += row.tasks_total
            if alive:
                rates[row.kind] += row.tasks_per_minute
            for step, seconds in (row.stats or {}).get("pipeline_step_seconds", {}).items():
                step_seconds[step] += seconds
            for stage, seconds in (row.stats or {}).get("pipeline_batch_stage_seconds", {}).items():
                stage_seconds[stage] += seconds
        for (kind, alive_label), n in counts.items():
            up.add_metric([kind, alive_label], n)
        for kind, n in totals.items():
            tasks.add_metric([kind], n)
        for kind, per_minute in rates.items():
            rate.add_metric([kind], per_minute)
        steps = CounterMetricFamily("buzon_pipeline_step_seconds", "Seconds spent in each pipeline step",
                                    labels=["step"])
        for step, seconds in step_seconds.items():
            steps.add_metric([step], seconds)
        stages = CounterMetricFamily("buzon_pipeline_batch_stage_seconds",
                                     "Seconds spent in each stage of the pipeline's bulk path", labels=["stage"])
        for stage, seconds in stage_seconds.items():
            stages.add_metric([stage], seconds)
        yield from (up, tasks, rate, steps, stages)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token and request.headers.get("Authorization", "") != f"Bearer {token}":
        return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BuzonCollector())
    try:
        body = generate_latest(registry)
    except DatabaseError as exc:
        return HttpResponse(f"database unreachable: {type(exc).__name__}\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)  # what every Prometheus reads


def _waiting_tasks() -> dict[str, int]:
    """Tasks waiting per task queue; nothing when the queue cannot be read (Redis down: /readyz says so)."""
    try:
        return waiting_by_queue()
    except DatabaseError:
        raise  # the whole scrape is a 503
    except Exception:  # Redis unreachable: the other figures still count
        return {}


# ------------------------------------------------------------------------------ processes page
QUEUE_LABELS = {"inbound": pgettext_lazy("task queue", "Incoming mail"),
                "outbound": pgettext_lazy("task queue", "Sending"),
                "housekeeping": pgettext_lazy("task queue", "Housekeeping"),
                LEGACY: pgettext_lazy("task queue", "Queued before the update")}


def queue_rows() -> list[dict[str, object]] | None:
    """The task queues with their waiting tasks (None: the queue could not be read); the legacy
    queue only while it holds something."""
    waiting = _waiting_tasks()
    if not waiting and settings.TASK_BACKEND_NAME in {"db", "rq"}:
        return None
    return [{"name": name, "label": QUEUE_LABELS[name], "waiting": waiting.get(name, 0)} for name in ALL_QUEUES
            if name != LEGACY or waiting.get(name)]


def slots_of(row: ProcessHeartbeat) -> list[tuple[object, int]]:
    """A worker's slots per queue, from its heartbeat (buzon.core.slots.SERVED)."""
    served = (row.stats or {}).get("worker_slots", {})
    return [(QUEUE_LABELS[name], int(served[name])) for name in ALL_QUEUES if served.get(name)]


def leases_by_process(rows: list[ProcessHeartbeat]) -> dict[str, int]:
    """How many unexpired sync leases each process holds (lease owners are host:pid:random)."""
    owners = Counter(SyncLease.objects.filter(expires_at__gt=timezone.now()).exclude(owner="")
                     .values_list("owner", flat=True))
    held: dict[str, int] = {}
    for row in rows:
        held[row.id] = sum(n for owner, n in owners.items() if owner.startswith(row.lease_prefix))
    return held


@staff_required
def processes(request: HttpRequest) -> HttpResponse:
    since = timezone.now() - timedelta(hours=24)
    rows = list(ProcessHeartbeat.objects.filter(beat_at__gte=since).order_by("kind", "-started_at"))
    held = leases_by_process(rows)
    items = [{"row": row, "alive": row.is_alive, "accounts": held.get(row.id, 0), "slots": slots_of(row)}
             for row in rows]
    return render(request, "web/ops/processes.html", {"items": items, "heartbeat_s": settings.HEARTBEAT_S,
                                                      "queues": queue_rows()})

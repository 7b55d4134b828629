"""What the operator sees of a deployment: which processes run, and the periodic jobs they share."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ProcessKind(models.TextChoices):
    WEB = "web", _("Web")
    WORKER = "worker", _("Task worker")
    SYNC = "sync", _("Sync engine")


class ProcessHeartbeat(models.Model):
    """One row per process start. The process rewrites `beat_at` every HEARTBEAT_S seconds; a row
    whose beat is older than three intervals and that never said goodbye (`stopped_at`) is dead.

    `stats` holds the process's own counters (tasks run, pipeline step seconds), so /metrics can
    sum them across every process, past and present, at scrape time.
    """

    id = models.CharField(primary_key=True, max_length=80)
    kind = models.CharField(_("kind"), max_length=10, choices=ProcessKind.choices)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    beat_at = models.DateTimeField(_("last heartbeat"), default=timezone.now, db_index=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    tasks_total = models.PositiveBigIntegerField(_("tasks run"), default=0)
    tasks_per_minute = models.FloatField(_("tasks per minute"), default=0.0)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["kind", "host", "pid"]

    def __str__(self) -> str:
        return f"{self.kind} {self.host}:{self.pid}"

    @property
    def lease_prefix(self) -> str:
        """How this process's sync leases are named (buzon.sync.lease.new_owner: host:pid:random)."""
        return f"{self.host}:{self.pid}:"

    @property
    def is_alive(self) -> bool:
        limit = timezone.now() - timedelta(seconds=settings.HEARTBEAT_S * 3)
        return self.stopped_at is None and self.beat_at >= limit

    @classmethod
    def alive(cls) -> models.QuerySet[ProcessHeartbeat]:
        limit = timezone.now() - timedelta(seconds=settings.HEARTBEAT_S * 3)
        return cls.objects.filter(stopped_at__isnull=True, beat_at__gte=limit)


class PeriodicJob(models.Model):
    """A job every worker could run but only one should, each interval: whoever claims the row
    (SELECT ... FOR UPDATE SKIP LOCKED) when it falls due enqueues its task and moves it on."""

    name = models.CharField(primary_key=True, max_length=100)
    next_run_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_owner = models.CharField(max_length=80, blank=True)

    def __str__(self) -> str:
        return f"{self.name} next at {self.next_run_at}"


# People using Buzón: their own settings, and where they are signed in (buzon.crm.presence).


class UserPreferences(models.Model):
    """What a user chose for themselves. No row, or a blank value, means the site's default
    (``language`` blank: settings.LANGUAGE_CODE, whatever it is at the time)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences")
    # Not choices=settings.LANGUAGES: the site's languages are a setting, not a schema change.
    language = models.CharField(_("language"), max_length=10, blank=True)
    # Invited, not yet signed in: no page or API answers them until they set their own password through
    # the invitation link (buzon.core.invitations). ``invited_at`` is the latest invitation's: a new one
    # makes the links sent before it stop working.
    must_set_password = models.BooleanField(_("must set a password"), default=False)
    invited_at = models.DateTimeField(_("invited at"), null=True, blank=True)
    # The inbox's view and filters as the user last chose them ({"view": "mine", "store": "3", ...}).
    inbox_filters = models.JSONField(_("inbox filters"), default=dict, blank=True)

    class Meta:
        verbose_name = _("user preferences")
        verbose_name_plural = _("user preferences")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language}"


class SignedInSession(models.Model):
    """One browser session a user signed in with, until they sign out, it expires, or it goes idle.

    Written at sign-in, removed at sign-out, and touched (``last_seen_at``) at most once a minute
    while the browser is in use; the presence sweep removes the expired and idle ones. A user is
    signed in ("online") while at least one row is live (buzon.crm.presence).
    """

    session_key = models.CharField(max_length=40, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signed_in_sessions")
    signed_in_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.user_id} seen {self.last_seen_at}"

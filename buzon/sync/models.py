"""What the sync engine keeps: the exact bytes of every message, and where it read them from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from buzon.core import pg_binary
from buzon.mailboxes.models import EmailAccount


class RawMessage(models.Model):
    """A message exactly as the server gave it, committed before anything else happens to it.

    Its key on the server is (account, folder, uidvalidity, uid) for IMAP or (account, uidl) for
    POP3; the unique constraints make storing it twice impossible. Deleting a message in Buzón
    keeps the row as a tombstone (`deleted_at`) so a resync never brings it back.

    `on_server` is what the account's "delete downloaded messages" option did with the server's
    copy (buzon.sync.deletion): the pipeline marks an imported message `delete`, and the sync
    engine deletes it from the server on its next pass over the folder, then marks it `deleted`.
    """

    class Status(models.TextChoices):
        STORED = "stored", _("Stored")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        # Only the server key is kept (so it is never fetched again), not the message: never processed.
        DUPLICATE = "duplicate", _("Duplicate")  # the same bytes as a message already held in the folder
        # Left out by a POP3 account's first pass: older than the initial sync count, or already there
        # when the account brings only mail received from then on.
        NOT_DOWNLOADED = "unfetched", _("Not downloaded")

    class OnServer(models.TextChoices):
        KEPT = "", _("Kept on the mail server")
        DELETE = "delete", _("Imported; to be deleted from the mail server")
        DELETED = "deleted", _("Deleted from the mail server")
        FLAGGED = "flagged", _("Marked deleted on the mail server (it offers no UID EXPUNGE)")
        NEVER = "never", _("Kept on the mail server: its folder is never emptied by Buzón")

    account = models.ForeignKey(EmailAccount, null=True, on_delete=models.SET_NULL, related_name="raw_messages")
    account_address = models.CharField(max_length=320)
    folder = models.CharField(max_length=512, blank=True)
    uidvalidity = models.BigIntegerField(null=True)
    uid = models.BigIntegerField(null=True)
    uidl = models.CharField(max_length=512, null=True)  # noqa: DJ001 (NULL keeps IMAP rows out of the POP3 key)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    from_header = models.TextField(blank=True)
    to_header = models.TextField(blank=True)
    subject = models.TextField(blank=True)
    date = models.DateTimeField(null=True)
    flags = models.JSONField(default=list, blank=True)
    truncated = models.BooleanField(default=False, help_text=_("Oversized attachments were left out."))
    truncation_note = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STORED, db_index=True)
    status_reason = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    on_server = models.CharField(max_length=8, choices=OnServer.choices, default=OnServer.KEPT, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "folder", "uidvalidity", "uid"], name="raw_unique_imap_key",
                condition=models.Q(uid__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["account", "uidl"], name="raw_unique_pop3_key", condition=models.Q(uidl__isnull=False)
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-received_at"]),
            # the duplicate check of every stored batch: (folder, content) lookups within an account
            models.Index(fields=["account", "folder", "sha256"], name="raw_content_key"),
            # the messages waiting to be deleted from the server: only those rows are in it
            models.Index(fields=["account", "folder", "id"], name="raw_delete_waiting",
                         condition=models.Q(on_server="delete")),
        ]

    def __str__(self) -> str:
        return f"{self.account_address} {self.folder} {self.uid or self.uidl}: {self.subject[:60]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        if self.__dict__.pop("_data_unsaved", False):
            RawContent.objects.update_or_create(raw_id=self.pk, defaults={"data": self.data})

    @property
    def data(self) -> bytes:
        """The message's bytes (RawContent), read when first asked for; b"" for a row that holds only
        a server key (a duplicate, mail not downloaded)."""
        held = self.__dict__.get("_data")
        if held is None:
            found = RawContent.objects.filter(raw_id=self.pk).values_list("data", flat=True).first() \
                if self.pk is not None else None
            held = self.__dict__["_data"] = bytes(found) if found is not None else b""
        return held

    @data.setter
    def data(self, value: bytes) -> None:
        self.__dict__["_data"] = bytes(value)
        self.__dict__["_data_unsaved"] = True

    def hold_data(self, data: bytes | memoryview | None) -> None:
        """``data``: the bytes as read from RawContent with other rows' (None: forget them, freeing
        the memory); either way nothing to write."""
        if data is None:
            self.__dict__.pop("_data", None)
        else:
            self.__dict__["_data"] = bytes(data)
        self.__dict__.pop("_data_unsaved", None)


class RawContent(models.Model):
    """The bytes of a RawMessage, in a table of their own.

    The row they belong to changes as the pipeline works on it (status, on_server), and SQLite
    rewrites a whole row on any UPDATE, blob included: kept inline, every message's bytes were
    written twice (0.5 ms and 200 KB of write-ahead log for a 200 KB message, under the database's
    one write lock), and every read of a column stored after them walked their overflow pages.
    Never changed once written; deleted with the row (buzon.sync.store writes both together)."""

    raw = models.OneToOneField(RawMessage, primary_key=True, on_delete=models.CASCADE, related_name="+")
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"{self.raw_id}: {len(self.data)} bytes"

    @staticmethod
    def stream(raw_ids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """(raw id, bytes) of those of ``raw_ids`` that have bytes, one row in memory at a time; on
        PostgreSQL the bytes come as bytes, not hex text (buzon.core.pg_binary)."""
        if not raw_ids:
            return iter(())
        query = RawContent.objects.filter(raw_id__in=list(raw_ids)).values_list("raw_id", "data").query
        return pg_binary.stream(*query.sql_with_params())


#: Rows holding a server key and no message: nothing the pipeline may run (they would read as empty).
KEY_ONLY = (RawMessage.Status.DUPLICATE, RawMessage.Status.NOT_DOWNLOADED)


class FolderCursor(models.Model):
    """How far one IMAP folder has been read: the UID, never the \\Seen flag, is the cursor.

    `last_uid` only moves forward, in the same transaction that stores the messages it covers,
    so a crash resumes exactly after the last committed message.
    """

    account = models.ForeignKey(EmailAccount, on_delete=models.CASCADE, related_name="folder_cursors")
    folder = models.CharField(max_length=512)
    uidvalidity = models.BigIntegerField(null=True)
    last_uid = models.BigIntegerField(default=0)
    highest_modseq = models.BigIntegerField(null=True)
    initial_done = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "folder"], name="cursor_unique_folder")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.folder} {self.uidvalidity}:{self.last_uid}"


class SyncLease(models.Model):
    """One account is synced by one worker at a time: whoever holds an unexpired lease.

    The holder renews `expires_at` on a heartbeat; a worker that dies stops renewing and any
    other worker takes the account over once the lease has expired.
    """

    account = models.OneToOneField(EmailAccount, on_delete=models.CASCADE, related_name="sync_lease")
    owner = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, db_index=True)
    taken_at = models.DateTimeField(null=True)
    epoch = models.PositiveBigIntegerField(default=0)  # +1 on every claim: the fencing token (lease.check)

    def __str__(self) -> str:
        return f"{self.account_id} held by {self.owner or '-'} until {self.expires_at}"


class SyncState(models.Model):
    """The engine's bookkeeping for one account: retries, requests and first-download progress."""

    account = models.OneToOneField(EmailAccount, on_delete=models.CASCADE, related_name="sync_state")
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True)
    sync_requested_at = models.DateTimeField(null=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_started_at = models.DateTimeField(null=True)
    # The account's "delete downloaded messages" option as the engine last saw it: turning it on
    # marks every message imported before then too (deletion.follow_option), once.
    delete_seen_on = models.BooleanField(default=False)
    # What the last deletion on an IMAP server could do: False when the server offers no UID
    # EXPUNGE, so messages were only marked \Deleted (the account's status says so); None: none yet.
    delete_expunged = models.BooleanField(null=True)
    # When a POP3 pass first listed the mailbox (even an empty one): what the first pass does (the
    # initial sync count, "only mail received from now on") is never done again after it.
    pop3_first_listed_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.progress_done}/{self.progress_total}, {self.failures} failures"

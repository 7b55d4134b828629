""""Delete downloaded messages" (seed 002) against the real Dovecot, through `buzon sync`'s code path.

Only mail Buzón imported leaves the server: an account that creates no customers keeps an unknown
sender's mail there (and never downloads it again); IMAP deletes with UID STORE + UID EXPUNGE of its
own UIDs only, so another client's \\Deleted messages are not expunged; the Sent folder is never
emptied; a failure between the import and the deletion leaves the mail on the server and the next
pass deletes it, once. What is on the server is read with a separate imaplib / poplib connection.
"""

from __future__ import annotations

import imaplib
import poplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client

from buzon.crm import records
from buzon.mailboxes.models import EmailAccount
from buzon.sync import deletion
from buzon.sync.imap_conn import ImapConnection
from buzon.sync.models import RawMessage, SyncState
from tests.support.dovecot import Dovecot
from tests.sync.helpers import EngineThread, make_account, make_mail, on_db, run_pipeline_tasks, sync, wait_for

pytestmark = pytest.mark.django_db
CUSTOMER = "sender1@example.test"  # make_mail(1)'s sender; make_mail(2)'s is not a customer


@pytest.fixture(autouse=True)
def _database_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}


def _account(dovecot, **fields) -> EmailAccount:
    fields.setdefault("create_customer_if_not_found", False)
    account = make_account(dovecot, delete_after_download=True, **fields)
    records.get_or_create_customer(CUSTOMER, store=account.store)
    return account


@contextmanager
def imap(dovecot, address: str, folder: str = "INBOX") -> Iterator[imaplib.IMAP4_SSL]:
    """Another mail client, on its own connection."""
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with imaplib.IMAP4_SSL("localhost", dovecot.imaps_port, ssl_context=context) as client:
        client.login(address, dovecot.users[address])
        client.select(f'"{folder}"')
        yield client


def on_server(dovecot, address: str, folder: str = "INBOX") -> dict[str, str]:
    """Subject -> flags of every message in the folder (UID SEARCH ALL, then UID FETCH)."""
    with imap(dovecot, address, folder) as client:
        _, found = client.uid("SEARCH", "ALL")
        uids = found[0].decode().split()
        if not uids:
            return {}
        _, data = client.uid("FETCH", ",".join(uids), "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            flags = item[0].decode()
            subject = item[1].decode().split(":", 1)[1].strip()
            out[subject] = flags[flags.index("FLAGS (") + 7:flags.index(")", flags.index("FLAGS ("))]
    return out


def pop3_subjects(dovecot, address: str) -> list[str]:
    client = poplib.POP3_SSL("localhost", dovecot.pop3s_port,
                             context=ssl.create_default_context(cafile=str(dovecot.ca_file)))
    try:
        client.user(address)
        client.pass_(dovecot.users[address])
        count, _ = client.stat()
        subjects = []
        for number in range(1, count + 1):
            try:
                _, lines, _ = client.top(number, 0)
            except poplib.error_proto as error:  # Buzón's own POP3 session deleted it meanwhile: gone
                if b"expunged" not in error.args[0]:
                    raise
                continue
            subjects += [line.decode().split(":", 1)[1].strip() for line in lines if line.startswith(b"Subject:")]
        return sorted(subjects)
    finally:
        client.quit()


def rows(account) -> dict[str, tuple[str, str]]:
    return {row.subject: (row.status, row.on_server) for row in RawMessage.objects.filter(account=account)}


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imap_deletes_only_imported_mail_and_never_another_clients_deleted_mail(dovecot, security):
    account = _account(dovecot, security=security)
    address = account.email_address
    dovecot.deliver(address, make_mail(1, subject="customer a"))
    dovecot.deliver(address, make_mail(2, subject="stranger"))  # not a customer: not imported
    dovecot.deliver(address, make_mail(1, subject="customer b"))
    dovecot.deliver(address, make_mail(3, subject="theirs"))  # another client deletes it, without EXPUNGE
    with imap(dovecot, address) as other:
        _, found = other.uid("SEARCH", "SUBJECT", "theirs")
        other.uid("STORE", found[0].decode(), "+FLAGS", "(\\Deleted)")
    sync(account)
    assert len(on_server(dovecot, address)) == 4  # stored, nothing imported yet: nothing deleted
    assert run_pipeline_tasks() >= 1
    assert rows(account) == {"customer a": ("processed", "delete"), "customer b": ("processed", "delete"),
                             "stranger": ("skipped", ""), "theirs": ("skipped", "")}

    sync(account)
    left = on_server(dovecot, address)
    assert sorted(left) == ["stranger", "theirs"]  # not imported: stays; another client's \Deleted: stays
    assert "\\Deleted" in left["theirs"] and "\\Deleted" not in left["stranger"]
    assert dovecot.message_count(address) == 2
    assert sorted(RawMessage.objects.filter(account=account).values_list("status", "on_server")) == [
        ("processed", "deleted"), ("processed", "deleted"), ("skipped", ""), ("skipped", "")]
    assert SyncState.objects.get(account=account).delete_expunged is True

    sync(account)  # what stays is not downloaded again, nor handed to the pipeline again
    assert RawMessage.objects.filter(account=account).count() == 4 and run_pipeline_tasks() == 0
    assert sorted(on_server(dovecot, address)) == ["stranger", "theirs"]

    # The folder's cursors still work: another client's flag change (CONDSTORE/QRESYNC) and new mail.
    with imap(dovecot, address) as other:
        _, found = other.uid("SEARCH", "SUBJECT", "stranger")
        other.uid("STORE", found[0].decode(), "+FLAGS", "(\\Flagged)")
    dovecot.deliver(address, make_mail(1, subject="customer c"))
    sync(account)
    assert "\\Flagged" in RawMessage.objects.get(account=account, subject="stranger").flags
    assert RawMessage.objects.filter(account=account).count() == 5


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_pop3_deletes_only_imported_mail(dovecot, security):
    account = _account(dovecot, protocol="pop3", security=security)
    address = account.email_address
    dovecot.deliver(address, make_mail(1))
    dovecot.deliver(address, make_mail(2))  # from a sender who is not a customer: not imported
    sync(account)
    assert pop3_subjects(dovecot, address) == ["Message 1", "Message 2"]  # stored, not imported yet
    run_pipeline_tasks()
    assert rows(account) == {"Message 1": ("processed", "delete"), "Message 2": ("skipped", "")}

    sync(account)
    assert pop3_subjects(dovecot, address) == ["Message 2"]
    assert rows(account) == {"Message 1": ("processed", "deleted"), "Message 2": ("skipped", "")}
    for _ in range(2):  # stays on the server, and is never downloaded again
        sync(account)
    assert RawMessage.objects.filter(account=account).count() == 2 and run_pipeline_tasks() == 0
    assert pop3_subjects(dovecot, address) == ["Message 2"]


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_failure_between_import_and_delete_leaves_the_mail_and_the_next_pass_deletes_it_once(
        dovecot, protocol, monkeypatch):
    account = _account(dovecot, protocol=protocol)
    address = account.email_address
    dovecot.deliver(address, make_mail(1))
    sync(account)
    run_pipeline_tasks()

    # The pass dies right after the import was committed, before the server's copy is touched.
    def refuse(*args, **kwargs):
        raise OSError("connection reset")

    target = (ImapConnection, "delete_uids") if protocol == "imap" else (poplib.POP3, "dele")
    monkeypatch.setattr(*target, refuse)
    with pytest.raises(Exception):  # noqa: B017 - what the one-off pass reports does not matter here
        sync(account)
    monkeypatch.undo()
    assert dovecot.message_count(address) == 1
    assert rows(account) == {"Message 1": ("processed", "delete")}

    # The server deletes it, then the pass dies before writing so: the next pass finds it gone.
    real_mark = deletion.mark

    def lost(ids, state):
        raise OSError("database gone")

    monkeypatch.setattr(deletion, "mark", lost)
    with pytest.raises(Exception):  # noqa: B017
        sync(account)
    monkeypatch.setattr(deletion, "mark", real_mark)
    assert dovecot.message_count(address) == 0
    assert rows(account) == {"Message 1": ("processed", "delete")}

    calls = []
    if protocol == "imap":
        real_delete = ImapConnection.delete_uids

        async def counted(self, uids):
            calls.append(list(uids))
            return await real_delete(self, uids)

        monkeypatch.setattr(ImapConnection, "delete_uids", counted)
    sync(account)
    assert rows(account) == {"Message 1": ("processed", "deleted")}
    sync(account)  # nothing waits any more: no command is sent again
    assert len(calls) == (1 if protocol == "imap" else 0)
    assert dovecot.message_count(address) == 0 and RawMessage.objects.filter(account=account).count() == 1


def test_sent_and_drafts_folders_are_never_emptied(dovecot):
    account = _account(dovecot, folders=["INBOX", "Sent", "Drafts"])
    address = account.email_address
    for folder in ("INBOX", "Sent", "Drafts"):
        dovecot.deliver(address, make_mail(1, subject=f"in {folder}"), folder=folder)
    sync(account)
    run_pipeline_tasks()
    sync(account)
    assert [dovecot.message_count(address, folder) for folder in ("INBOX", "Sent", "Drafts")] == [0, 1, 1]
    assert rows(account) == {"in INBOX": ("processed", "deleted"), "in Sent": ("processed", "never"),
                             "in Drafts": ("processed", "never")}


def test_turning_the_option_on_deletes_mail_imported_before(dovecot):
    account = make_account(dovecot, create_customer_if_not_found=False)
    records.get_or_create_customer(CUSTOMER, store=None)
    dovecot.deliver(account.email_address, make_mail(1))
    dovecot.deliver(account.email_address, make_mail(2))
    sync(account)
    run_pipeline_tasks()
    sync(account)
    assert dovecot.message_count(account.email_address) == 2  # the option is off: everything stays
    account.delete_after_download = True
    account.save()
    sync(account)
    assert sorted(on_server(dovecot, account.email_address)) == ["Message 2"]


@pytest.mark.django_db(transaction=True)
def test_the_engine_deletes_as_soon_as_the_pipeline_has_imported(dovecot):
    """An IMAP folder idling (no new mail coming) is woken to delete what was just imported."""
    account = _account(dovecot)
    address = account.email_address
    with EngineThread(only={account.pk}):
        dovecot.deliver(address, make_mail(1))
        dovecot.deliver(address, make_mail(2))
        wait_for(lambda: on_db(lambda: RawMessage.objects.filter(account=account).count()) == 2, 15)
        assert dovecot.message_count(address) == 2
        on_db(run_pipeline_tasks)
        wait_for(lambda: dovecot.message_count(address) == 1, 15)
        assert sorted(on_server(dovecot, address)) == ["Message 2"]
        dovecot.deliver(address, make_mail(1, subject="again"))  # IDLE still works afterwards
        wait_for(lambda: on_db(lambda: RawMessage.objects.filter(account=account).count()) == 3, 15)
        on_db(run_pipeline_tasks)
        wait_for(lambda: sorted(on_server(dovecot, address)) == ["Message 2"], 15)


@pytest.fixture
def dovecot_without_uidplus(test_certs) -> Iterator[Dovecot]:
    server = Dovecot(certs=test_certs)
    with server.conf.open("a") as conf:  # what an old server offers: no UIDPLUS, no IMAP4rev2
        conf.write("protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE\n}\n")
    server.start()
    yield server
    server.cleanup()


def test_without_uidplus_mail_is_only_marked_deleted_and_the_account_says_so(dovecot_without_uidplus, db):
    from django.contrib.auth import get_user_model

    dovecot = dovecot_without_uidplus
    account = _account(dovecot)
    address = account.email_address
    dovecot.deliver(address, make_mail(1))
    dovecot.deliver(address, make_mail(3, subject="theirs"))
    with imap(dovecot, address) as other:
        _, found = other.uid("SEARCH", "SUBJECT", "theirs")
        other.uid("STORE", found[0].decode(), "+FLAGS", "(\\Deleted)")
    sync(account)
    run_pipeline_tasks()
    sync(account)
    left = on_server(dovecot, address)
    assert sorted(left) == ["Message 1", "theirs"]  # no bare EXPUNGE: nothing is removed
    assert "\\Deleted" in left["Message 1"] and "\\Deleted" in left["theirs"]
    assert rows(account)["Message 1"] == ("processed", "flagged")

    client = Client()
    client.force_login(get_user_model().objects.create_user("admin", "admin@example.test", "pw", is_staff=True))
    page = client.get("/settings/email/accounts/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "offers no UIDPLUS" in page and "only marked as deleted" in page
    page = client.get("/settings/email/accounts/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "no ofrece UIDPLUS" in page and "solo se marcan" in page


def test_the_option_help_text_tells_what_happens_for_both_protocols(dovecot):
    from django.contrib.auth import get_user_model

    account = make_account(dovecot, protocol="pop3")
    client = Client()
    client.force_login(get_user_model().objects.create_user("admin", "admin@example.test", "pw", is_staff=True))
    url = f"/settings/email/accounts/{account.pk}/edit/"
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Once Buzón has imported a message, delete it from the mail server (IMAP or POP3)" in english
    assert "stays on the server" in english and "Sent and Drafts" in english
    spanish = client.get(url, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Cuando Buzón haya importado un mensaje, eliminarlo del servidor de correo" in spanish
    assert "se queda en el servidor" in spanish and "Enviados y" in spanish


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_buzon_sync_and_worker_processes_delete_imported_mail_only_even_after_a_kill(dovecot, postgres_url,
                                                                                     tmp_path):
    """The real processes: `buzon sync` stores, is killed (-9) before anything is imported; `buzon
    worker` imports; the restarted `buzon sync` deletes what was imported from the IMAPS and POP3S
    servers, leaves the rest, and goes on doing so for mail arriving while both run."""
    import signal

    from tests.sync.procs import buzon, buzon_env, stop

    imap_account, pop_account = _account(dovecot), _account(dovecot, protocol="pop3")
    for account in (imap_account, pop_account):
        for index, subject in ((1, "customer a"), (2, "stranger"), (1, "customer b")):
            dovecot.deliver(account.email_address, make_mail(index, subject=subject))
    dovecot.deliver(imap_account.email_address, make_mail(3, subject="theirs"))
    with imap(dovecot, imap_account.email_address) as other:  # another client's deletion, not expunged
        _, found = other.uid("SEARCH", "SUBJECT", "theirs")
        other.uid("STORE", found[0].decode(), "+FLAGS", "(\\Deleted)")
    env = buzon_env(_database_url(), tmp_path, BUZON_SYNC_POLL_INTERVAL="1", BUZON_HEARTBEAT="1")
    log = tmp_path / "buzon.log"

    def imap_left() -> list[str]:
        return sorted(on_server(dovecot, imap_account.email_address))

    first = buzon(env, "sync", log=log)
    try:
        wait_for(lambda: RawMessage.objects.count() == 7, 60)
    finally:
        stop(first, signal.SIGKILL)
    assert imap_left() == ["customer a", "customer b", "stranger", "theirs"]
    assert pop3_subjects(dovecot, pop_account.email_address) == ["customer a", "customer b", "stranger"]

    worker = buzon(env, "worker", log=log)
    sync_again = None
    try:
        wait_for(lambda: not RawMessage.objects.filter(status="stored").exists(), 60)
        assert RawMessage.objects.filter(on_server="delete").count() == 4  # imported, still on the servers
        assert len(imap_left()) == 4 and len(pop3_subjects(dovecot, pop_account.email_address)) == 3

        sync_again = buzon(env, "sync", log=log)
        wait_for(lambda: imap_left() == ["stranger", "theirs"], 30)
        wait_for(lambda: pop3_subjects(dovecot, pop_account.email_address) == ["stranger"], 30)

        for account in (imap_account, pop_account):  # while both run: stored, imported, deleted
            dovecot.deliver(account.email_address, make_mail(1, subject="customer c"))
        wait_for(lambda: RawMessage.objects.filter(subject="customer c", on_server="deleted").count() == 2, 60)
        assert imap_left() == ["stranger", "theirs"]
        assert pop3_subjects(dovecot, pop_account.email_address) == ["stranger"]
        assert "\\Deleted" in on_server(dovecot, imap_account.email_address)["theirs"]
    finally:
        codes = [stop(worker)] + ([stop(sync_again)] if sync_again is not None else [])
    assert codes == [0] * len(codes), log.read_text()[-3000:]
    assert sorted(RawMessage.objects.values_list("subject", "status", "on_server")) == sorted(
        [(s, "processed", "deleted") for s in ("customer a", "customer b", "customer c")] * 2
        + [("stranger", "skipped", "")] * 2 + [("theirs", "skipped", "")])


def test_many_imported_messages_leave_in_one_store_and_one_uid_expunge(dovecot, monkeypatch):
    account = _account(dovecot, create_customer_if_not_found=True)
    address = account.email_address
    for index in range(300):
        dovecot.deliver(address, make_mail(index))
    sync(account)
    run_pipeline_tasks()
    calls = []
    real_delete = ImapConnection.delete_uids

    async def counted(self, uids):
        calls.append(len(uids))
        return await real_delete(self, uids)

    monkeypatch.setattr(ImapConnection, "delete_uids", counted)
    sync(account)
    assert calls == [300] and dovecot.message_count(address) == 0


def test_delete_batches_keep_each_command_line_short():
    from buzon.sync.imap import DELETE_BATCH, delete_batches
    from buzon.sync.imap_parse import uid_set

    sparse = list(range(4_000_000_000, 4_000_060_000, 2))  # 30,000 UIDs, none next to another
    batches = delete_batches(sparse)
    assert sorted(uid for batch in batches for uid in batch) == sparse
    assert all(len(batch) <= DELETE_BATCH and len(uid_set(batch)) < 8_000 for batch in batches)
    assert len(delete_batches(list(range(1, 100_001)))) == 20  # 100,000 in a row: 20 STOREs, 20 UID EXPUNGEs


def test_the_messages_waiting_are_found_by_their_own_index():
    """What the engine reads every second and every pass never reads the account's other rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        deletion.waiting([1, 2])
        deletion.imap_waiting(1, "INBOX")
        deletion.pop3_waiting(1)
    assert len(queries.captured_queries) == 3
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("EXPLAIN " + query["sql"])
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
            plan = " ".join(str(row) for row in cursor.fetchall())
            assert "raw_delete_waiting" in plan, plan


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_copies_of_imported_mail_leave_the_server_too(dovecot, protocol):
    """The same bytes delivered twice are one message in Buzón (the copy is kept as a duplicate):
    both copies leave the server once it is imported, and so does a copy delivered afterwards."""
    account = _account(dovecot, protocol=protocol)
    address = account.email_address
    twice = make_mail(1, subject="twice")
    dovecot.deliver(address, twice)
    dovecot.deliver(address, twice)
    dovecot.deliver(address, make_mail(2, subject="stranger"))
    sync(account)
    run_pipeline_tasks()
    sync(account)
    assert dovecot.message_count(address) == 1
    dovecot.deliver(address, twice)  # again, after the first ones were imported and deleted
    sync(account)
    sync(account)
    assert dovecot.message_count(address) == 1  # only the stranger's mail
    assert sorted(RawMessage.objects.filter(account=account, subject="twice").values_list("status", "on_server")) == [
        ("duplicate", "deleted"), ("duplicate", "deleted"), ("processed", "deleted")]

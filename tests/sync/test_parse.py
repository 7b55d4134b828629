"""The pure parts: IMAP response parsing, UID sets, header fields, chunking, attachment plans."""

from __future__ import annotations

import pytest
from django.db.models import AutoField, BigAutoField
from hypothesis import given, settings
from hypothesis import strategies as st

from buzon.sync.headers import parse_header_fields
from buzon.sync.imap import chunks
from buzon.sync.imap_parse import parse_fetch, parse_search, parse_select, uid_set
from buzon.sync.truncate import Leaf, leaves_from_bodystructure, plan


def test_fetch_with_literals_flags_and_unsolicited_lines():
    lines = [
        b'1 FETCH (UID 7 RFC822.SIZE 5 FLAGS (\\Seen $Label) BODY[] {5}', bytearray(b"hello"), b")",
        b"3 EXISTS",
        b"2 FETCH (FLAGS (\\Deleted))",  # unsolicited, no UID: not ours
        b'3 FETCH (UID 9 MODSEQ (12) BODY[HEADER] {4}', bytearray(b"a\r\n\r"), b' BODY[1] {2}', bytearray(b"ok"),
        b")", b"Fetch completed.",
    ]
    items = parse_fetch(lines)
    assert [item.uid for item in items] == [7, 9]
    assert items[0].sections["BODY[]"] == b"hello" and items[0].flags == ["\\Seen", "$Label"]
    assert items[0].size == 5 and items[1].modseq == 12
    assert items[1].sections == {"BODY[HEADER]": b"a\r\n\r", "BODY[1]": b"ok"}


def test_select_search_and_uid_sets():
    status = parse_select([b"5 EXISTS", b"OK [UIDVALIDITY 42] ok", b"OK [UIDNEXT 9] n",
                           b"OK [HIGHESTMODSEQ 77] h", b"[READ-ONLY] done"])
    assert (status.exists, status.uidvalidity, status.uidnext, status.highest_modseq) == (5, 42, 9, 77)
    assert parse_search([b"1 2 5 (MODSEQ 3)", b"SEARCH 7", b"Search completed 8"]) == [1, 2, 5, 7]
    assert uid_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10" and uid_set([]) == ""


def test_chunks_respect_count_and_bytes():
    sizes = {1: 10, 2: 10, 3: 100, 4: 10}
    assert chunks([1, 2, 3, 4], sizes, 3, 1000) == [[1, 2, 3], [4]]
    assert chunks([1, 2, 3, 4], sizes, 10, 50) == [[1, 2], [3], [4]]


def test_a_pass_starts_with_small_chunks_that_double_up_to_the_full_size():
    uids = list(range(1, 201))
    sizes = dict.fromkeys(uids, 10)
    assert [len(c) for c in chunks(uids, sizes, 64, 10_000, first=(8, 10_000))] == [8, 16, 32, 64, 64, 16]
    # the bytes double too: 30, then 60, then the full 100
    assert [len(c) for c in chunks(uids[:20], sizes, 100, 100, first=(100, 30))] == [3, 6, 10, 1]


def test_unreadable_headers_never_block():
    assert parse_header_fields(b"").subject == ""
    fields = parse_header_fields(b"Subject: =?utf-8?b?w7FhbmTDug==?=\r\nDate: not a date\r\nFrom: \xff\xfe\r\n\r\nx")
    assert fields.subject == "ñandú" and fields.date is None


def test_bodystructure_plan_keeps_text_and_small_files():
    structure = [
        [[b"TEXT", b"PLAIN", [b"CHARSET", b"utf-8"], None, None, b"7BIT", 100, 3],
         [b"TEXT", b"HTML", [b"CHARSET", b"utf-8"], None, None, b"7BIT", 200, 5], b"ALTERNATIVE"],
        [b"APPLICATION", b"PDF", [b"NAME", b"big.pdf"], None, None, b"BASE64", 5_000_000, None,
         [b"ATTACHMENT", [b"FILENAME", b"big.pdf"]], None],
        [b"IMAGE", b"PNG", None, None, None, b"BASE64", 1000, None, [b"ATTACHMENT", [b"FILENAME", b"logo.png"]], None],
        b"MIXED", [b"BOUNDARY", b"x"], None, None,
    ]
    leaves = leaves_from_bodystructure(structure)
    assert [(leaf.part, leaf.name) for leaf in leaves] == [("1.1", ""), ("1.2", ""), ("2", "big.pdf"),
                                                            ("3", "logo.png")]
    chosen = plan(leaves, 1024 * 1024)
    assert [leaf.part for leaf in chosen.keep] == ["1.1", "1.2", "3"]
    assert [leaf.name for leaf in chosen.left_out] == ["big.pdf"]
    assert plan([Leaf("1", "text/plain", 10, "", True)], 5).left_out[0].part == "1"


def test_fast_insert_prepares_every_value_as_django_does(monkeypatch):
    from datetime import UTC, datetime

    from django.db import connection
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from buzon.sync import fastinsert
    from buzon.sync.models import RawMessage

    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))  # auto_now_add
    rows = [
        RawMessage(account_id=3, account_address="a@example.test", folder="Facturación", uidvalidity=9, uid=12,
                   data=b"raw\x00bytes", size=9, sha256="ab" * 32, message_id="<x@y>", subject="ñ",
                   date=datetime(2026, 1, 1, tzinfo=UTC), flags=["\\Seen"], truncated=True, status="stored"),
        RawMessage(account_id=None, account_address="b", uidl="u1", data=b"", size=0, sha256="",
                   subject=5, flags=[], status="skipped"),  # a value of an unexpected type: Django's way
        DBTaskResult(id="0d4a2c1e-5b0f-4a7e-9d3c-2f1e0a9b8c7d", args_kwargs={"args": [[1, 2]], "kwargs": {}},
                     priority=0, task_path="a.b", queue_name="default", backend_name="default",
                     run_after=datetime(2026, 1, 1, tzinfo=UTC)),
    ]
    for row in rows:
        _sql, _returning, preparers = fastinsert._statement(type(row), connection.vendor)
        fields = [f for f in type(row)._meta.concrete_fields if not (f.primary_key and f.attname == "id"
                                                                     and isinstance(f, AutoField | BigAutoField))]
        django_way = [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
        # PostgreSQL's driver wraps bytes and JSON in adapters that do not compare: compare what they wrap
        assert [adapted(prepare(row)) for prepare in preparers] == [adapted(value) for value in django_way]


def adapted(value):
    for wrapped in ("obj", "adapted"):  # psycopg's Binary and Jsonb, psycopg2's adapters
        if hasattr(value, wrapped):
            return type(value), getattr(value, wrapped)
    return value


LINES = ["From: A <a@example.test>\r\n", "from:b@example.test\r\n", "To: x@example.test,\r\n", "\t y@example.test\r\n",
         " folded more\n", "Subject: =?utf-8?b?w7FhbmTDug==?= ok\r\n", "SUBJECT:  two  spaces \r",
         "Date: Thu, 1 Jan 2026 10:00:00 +0100\r\n", "Message-ID: <m@x>\r\n", "Message-Id:\r\n",
         "From nobody Thu Jan  1\r\n", ": empty\r\n", "X-Other: 1\r\n", "not a header\r\n", "\r\n",
         "Received: from a\r\n\tby b\r\n", "To:\r\n", "Date: bogus\n"]


@given(st.lists(st.sampled_from(LINES), max_size=12))
@settings(max_examples=400, deadline=None)
def test_ascii_header_fields_read_exactly_as_the_email_parser_reads_them(lines):
    from buzon.sync.headers import _ascii_fields, _parsed_fields

    block = "".join(lines).encode()
    assert _ascii_fields(block) == _parsed_fields(block)


def test_header_fields_beyond_ascii_still_go_through_the_email_parser():
    from buzon.sync.headers import _ascii_fields

    block = "Subject: caf\u00e9 cr\u00e8me\r\nFrom: x@y\r\n\r\nbody".encode()
    assert _ascii_fields(block) is None
    fields = parse_header_fields(block)
    assert (fields.subject, fields.from_header) == ("caf\u00e9 cr\u00e8me", "x@y")  # raw UTF-8, never U+FFFD


HEAD_ITEMS = [b"UID 7", b"UID 12", b"RFC822.SIZE 5", b"FLAGS (\\Seen $Label)", b"FLAGS ()", b"FLAGS (NIL 12 \\Draft)",
              b"MODSEQ (4)", b"INTERNALDATE 3", b'FLAGS ("q")', b"X-GM-MSGID 99"]


@given(st.lists(st.sampled_from(HEAD_ITEMS), max_size=4), st.binary(max_size=40), st.booleans())
@settings(max_examples=400, deadline=None)
def test_usual_records_read_as_the_general_parser_reads_them(head, body, with_body):
    from buzon.sync import imap_parse

    lines = [b"1 FETCH (" + b"".join(part + b" " for part in head) + b"BODY[] {%d}" % len(body), bytearray(body),
             b")"] if with_body else [b"1 FETCH (" + b" ".join(head) + b")"]
    [record] = list(imap_parse._records(lines))
    quick = imap_parse._body_record(record)
    monkeypatched = imap_parse._body_record
    try:
        imap_parse._body_record = lambda record: None  # the general parser alone
        general = imap_parse.parse_fetch(lines)
    finally:
        imap_parse._body_record = monkeypatched
    if quick is not None:
        assert [quick] == general


def test_the_usual_body_record_takes_the_quick_path():
    from buzon.sync import imap_parse

    [record] = list(imap_parse._records([b"3 FETCH (UID 9 FLAGS (\\Seen) RFC822.SIZE 2 BODY[] {2}", bytearray(b"ok"),
                                         b")"]))
    quick = imap_parse._body_record(record)
    assert quick is not None and (quick.uid, quick.flags, quick.size, quick.sections) == (9, ["\\Seen"], 2,
                                                                                          {"BODY[]": b"ok"})
    [sizes] = list(imap_parse._records([b"4 FETCH (UID 12 RFC822.SIZE 3456)"]))
    quick = imap_parse._body_record(sizes)
    assert quick is not None and (quick.uid, quick.size, quick.sections) == (12, 3456, {})


@pytest.mark.django_db
def test_fast_update_writes_what_bulk_update_writes():
    """update_rows (the pipeline's write of new conversations' counts) leaves each row as
    bulk_update() leaves it: every named field, nothing else, each row its own values."""
    _fast_update_check()


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_fast_update_writes_what_bulk_update_writes_in_one_statement(postgres_url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert connection.vendor == "postgresql"
    with CaptureQueriesContext(connection) as queries:
        _fast_update_check()
    assert len([q for q in queries.captured_queries if "unnest" in q["sql"]]) == 1  # three rows, one UPDATE


def _fast_update_check() -> None:
    from datetime import UTC, datetime

    from buzon.messages.conversations import Conversation
    from buzon.sync.fastinsert import update_rows

    fields = ["message_count", "last_message_at", "snippet", "customer", "updated_at"]
    mine, django = ([Conversation.objects.create(subject=f"{name} {n}") for n in range(3)]
                    for name in ("mine", "django"))
    for rows in (mine, django):
        for n, row in enumerate(rows):
            row.message_count, row.snippet, row.subject = n + 1, f"ñ {n}", "not written"
            row.last_message_at = datetime(2026, 1, n + 1, 9, tzinfo=UTC) if n else None
            row.updated_at = datetime(2026, 2, n + 1, tzinfo=UTC)
    update_rows(mine, fields)
    Conversation.objects.bulk_update(django, fields)

    def stored(rows):
        return [Conversation.objects.values("subject", "customer_id", *fields[:3], "updated_at").get(pk=row.pk)
                for row in rows]

    assert [dict(r, subject=r["subject"][-1]) for r in stored(mine)] == \
        [dict(r, subject=r["subject"][-1]) for r in stored(django)]
    assert [r["message_count"] for r in stored(mine)] == [1, 2, 3]
    assert {r["subject"][:4] for r in stored(mine)} == {"mine"}


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_fast_insert_writes_rows_without_bytes_in_one_statement(postgres_url):
    """insert_rows of many rows (outgoing mail queued by a batch, raw rows a fetch brought) is one
    statement on PostgreSQL, and each row is written with its own values."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from buzon.messages.conversations import Conversation
    from buzon.sync.fastinsert import insert_rows

    rows = [Conversation(subject=f"fila {n}", snippet=f"ñ {n}", message_count=n) for n in range(3)]
    with CaptureQueriesContext(connection) as queries:
        insert_rows(rows)
    assert len(queries.captured_queries) == 1 and "unnest" in queries.captured_queries[0]["sql"]
    assert sorted(Conversation.objects.filter(subject__startswith="fila ").values_list(
        "subject", "snippet", "message_count")) == [("fila 0", "ñ 0", 0), ("fila 1", "ñ 1", 1), ("fila 2", "ñ 2", 2)]


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_fast_insert_writes_few_bytes_in_one_statement_and_raw_mail_row_by_row(postgres_url):
    """Rows with few bytes go in one statement too, bound as bytes; raw mail (past UNNEST_BYTES_MAX
    together) one INSERT a row, its bytes as they are: arrays of megabytes are slow to build."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from buzon.sync.fastinsert import UNNEST_BYTES_MAX, insert_rows
    from buzon.sync.models import RawContent, RawMessage

    raws = [RawMessage.objects.create(account_address="a@shop.test", folder="INBOX", uidvalidity=1, uid=n, size=0,
                                      sha256=str(n)) for n in range(3)]
    small = [bytes(range(256)) * 4, b"\x00\r\n" + "ñ".encode() * 100, b"x"]
    large = [small[0], b"\x00\r\n" + "ñ".encode() * UNNEST_BYTES_MAX, b"x"]
    for payloads, together in ((small, True), (large, False)):
        RawContent.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            insert_rows([RawContent(raw_id=raw.pk, data=data) for raw, data in zip(raws, payloads, strict=True)])
        [query] = queries.captured_queries  # executemany's is one, "3 times: INSERT …"
        assert ("unnest" in query["sql"]) == together and query["sql"].startswith("3 times") != together
        assert [bytes(RawContent.objects.get(raw_id=raw.pk).data) for raw in raws] == payloads

"""Full-text search of the workspace (buzon.search through buzon.workspace.searching): real mail run
through the pipeline is found at once, by every role only within its reach (web and API), with
accents optional, phrases, prefixes, highlighted and escaped snippets, cursor pages and a constant
number of queries; edits, renames and deletions keep the index current; the rebuild command; and
nothing a person types is an error. The same tests run on PostgreSQL with DATABASE_URL set."""

from __future__ import annotations

import re
from email.utils import make_msgid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from buzon.crm.models import Customer
from buzon.inbound import pipeline
from buzon.messages.models import Attachment, Direction, Message
from buzon.workspace import actions, searching
from tests.inbound.helpers import mail, store_raw
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db
SEES_A = {"agent_a", "supervisor_a", "admin"}
SEES_B = {"agent_b", "supervisor_b", "admin"}


def _receive(world: World, side: str = "a", **fields: str) -> Message:
    account = getattr(world, side).account
    raw = store_raw(mail(to=account.email_address, **fields), account)
    assert pipeline.run_pipeline(raw.pk) == "processed"
    return Message.objects.get(raw=raw)


def _web(client: Client, q: str, **params: str) -> tuple[set[int], str]:
    response = client.get("/conversations/", {"q": q, **params})
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    return {int(v) for v in re.findall(r'data-conversation="(\d+)"', body)}, body


def _api(client: Client, q: str, **params: str) -> dict:
    response = client.get("/api/v1/search/", {"q": q, **params})
    assert response.status_code == 200, response.content[:500]
    return response.json()


def _found(world: World, q: str, role: str = "admin") -> set[int]:
    return _web(world.client(role), q)[0]


def test_mail_stored_by_the_pipeline_is_found_at_once_by_any_of_its_fields(world: World):
    message = _receive(world, subject="Pedido retrasado", sender="Lucía Fernández <lucia@cliente.test>",
                       body="Mi canción favorita llegó rota. ¿Podéis cambiarla?")
    conversation = message.conversation_id
    for q in ("retrasado", "cancion", "CANCIÓN", "lucia fernandez", "lucia@cliente.test", "Podeis"):
        assert conversation in _found(world, q), q
    # The customer's name and the attachment names of the world's mail (a PDF "Factura año 2026.pdf").
    assert world.a.message.conversation_id in _found(world, "factura ano 2026")
    assert world.a.message.conversation_id in _found(world, world.a.customer.name or "cliente-a")
    assert _found(world, "inexistente") == set()


def test_every_role_finds_only_what_it_may_see_not_even_a_snippet_of_the_rest(world: World):
    a = _receive(world, "a", subject="Devolución zapatillas", body="Secreto de la tienda A: cupón ALFA-77")
    b = _receive(world, "b", subject="Devolución zapatillas", body="Secreto de la tienda B: cupón BETA-88")
    for role in ROLES:
        client = world.client(role)
        if role == "anonymous":
            assert client.get("/conversations/", {"q": "zapatillas"}).status_code == 302
            assert client.get("/api/v1/search/", {"q": "zapatillas"}).status_code in (401, 403)
            continue
        seen, body = _web(client, "zapatillas")
        api = _api(client, "zapatillas")
        api_ids = {row["id"] for row in api["results"]}
        for ids in (seen, api_ids):
            assert (a.conversation_id in ids) == (role in SEES_A), role
            assert (b.conversation_id in ids) == (role in SEES_B), role
        assert ("ALFA" in body or "ALFA" in str(api)) == (role in SEES_A), role
        assert ("BETA" in body or "BETA" in str(api)) == (role in SEES_B), role
        # A word only the other store's mail holds finds nothing at all.
        assert _web(client, "ALFA")[0] == ({a.conversation_id} if role in SEES_A else set())
    # The inbox's filters narrow a search as they narrow the list.
    admin = world.client("admin")
    assert _web(admin, "zapatillas", store=str(world.b.store.pk))[0] == {b.conversation_id}
    assert {r["id"] for r in _api(admin, "zapatillas", store=str(world.a.store.pk))["results"]} == {a.conversation_id}


def test_phrases_prefixes_and_accents(world: World):
    first = _receive(world, subject="Consulta", body="El pedido de cambio está en camino.").conversation_id
    second = _receive(world, subject="Otra", body="Cambio de pedido, por favor.").conversation_id
    assert _found(world, "pedido cambio") == {first, second}  # words: any order
    assert _found(world, '"pedido de cambio"') == {first}  # a phrase: this order
    assert _found(world, '"cambio de pedido"') == {second}
    assert _found(world, "cami*") == {first}  # a prefix
    assert _found(world, "esta en camino") == {first}  # typed without the accent
    assert _found(world, '"ESTÁ EN CAMINO"') == {first}


def test_the_snippet_marks_the_words_and_escapes_everything_else(world: World):
    message = _receive(world, subject="<script>alert('x')</script> urgente",
                       body="Hola, <b>no es html</b>: la factura de marzo está mal. <img src=x onerror=alert(1)>")
    seen, body = _web(world.client("admin"), "factura")
    assert message.conversation_id in seen
    assert "<script>alert" not in body and "<img src=x" not in body and "<b>no es html</b>" not in body
    assert "&lt;b&gt;no es html&lt;/b&gt;" in body and "la <mark>factura</mark> de marzo" in body
    assert "&lt;script&gt;" in body  # the subject shown, escaped
    match = _api(world.client("admin"), "urgente")["results"][0]["match"]
    assert match["field"] == "subject" and match["id"] == message.pk
    assert match["snippet_html"].startswith("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; <mark>urgente</mark>")


def test_best_match_first_and_cursor_pages_without_repeats(world: World):
    ids = [_receive(world, subject=f"Caso {i}", body="reembolso " * (i + 1) + "texto").conversation_id
           for i in range(5)]
    subject_hit = _receive(world, subject="Reembolso pendiente", body="nada más").conversation_id
    client = world.client("admin")
    seen, cursor = [], ""
    while True:
        page = _api(client, "reembolso", limit="2", **({"cursor": cursor} if cursor else {}))
        seen += [row["id"] for row in page["results"]]
        assert len(page["results"]) <= 2
        if not page["next"]:
            break
        cursor = page["next"]
    assert sorted(seen) == sorted([*ids, subject_hit]) and len(seen) == len(set(seen))
    assert seen[0] == subject_hit  # the subject weighs more than the body
    scores = [row["match"]["score"] for row in _api(client, "reembolso")["results"]]
    assert scores == sorted(scores, reverse=True)
    # The web page's "More results" link carries the cursor.
    body = client.get("/conversations/", {"q": "reembolso"}).content.decode()
    assert 'id="more-results"' not in body  # 6 results: one page of 50


def test_a_page_costs_a_constant_number_of_queries(world: World, django_assert_max_num_queries):
    for i in range(3):
        _receive(world, subject=f"Garantía {i}", body="la garantía del producto")
    client = world.client("agent_a")
    client.get("/api/v1/search/", {"q": "garantia"})  # warm: sessions, caches
    with django_assert_max_num_queries(14) as few:
        assert len(_api(client, "garantia")["results"]) == 3
    for i in range(3, 20):
        _receive(world, subject=f"Garantía {i}", body="la garantía del producto")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(_api(client, "garantia")["results"]) == 20


@pytest.mark.parametrize("role", ["agent_a", "supervisor_a", "admin"])
def test_the_inbox_page_and_its_search_take_at_most_15_queries_for_every_role(world: World, role: str,
                                                                              django_assert_max_num_queries):
    """Everything around the list (session, second factor, role, filters, the bell) is asked once;
    a search's snippets and (on PostgreSQL) its words' stems in one statement."""
    for i in range(3):
        _receive(world, subject=f"Garantía {i}", body="la garantía del producto")
    _pages_take_at_most_15_queries(world.client(role), django_assert_max_num_queries)


@pytest.mark.postgres
def test_on_postgresql_the_inbox_page_and_its_search_take_at_most_15_queries(world: World, postgres_url: str,
                                                                             django_assert_max_num_queries):
    """PostgreSQL asks more for a search (whether the words are rare, their stems): still 15."""
    assert connection.vendor == "postgresql"
    for i in range(3):
        _receive(world, subject=f"Garantía {i}", body="la garantía del producto")
    actions.do_add_note(world.users["admin"], world.a.message.conversation_id, "garantía ampliada")
    for role in ("agent_a", "supervisor_a", "admin"):
        _pages_take_at_most_15_queries(world.client(role), django_assert_max_num_queries)


def _pages_take_at_most_15_queries(client: Any, django_assert_max_num_queries: Any) -> None:
    client.get("/conversations/", {"q": "garantia"})  # warm: sessions, caches
    for params in ({}, {"q": "garantia"}):
        with django_assert_max_num_queries(15):
            response = client.get("/conversations/", params)
        assert response.status_code == 200 and (not params or b"<mark>" in response.content)


def test_edits_renames_attachments_and_deletions_keep_the_index_current(world: World):
    message = _receive(world, subject="Consulta", body="texto original")
    conversation = message.conversation_id
    Message.objects.filter(pk=message.pk).update(text="texto corregido")  # a queryset update, no save()
    assert _found(world, "original") == set() and _found(world, "corregido") == {conversation}
    message.refresh_from_db()
    message.subject = "Asunto nuevo"
    message.save()
    assert _found(world, "nuevo") == {conversation}
    customer = Customer.objects.get(pk=message.customer_id)
    customer.name = "Zoraida Quintana"
    customer.save()
    assert conversation in _found(world, "zoraida")
    Attachment.objects.create(message=message, part=9, filename="presupuesto_obra.xlsx", content_type="x", size=1)
    assert _found(world, "presupuesto") == {conversation}
    Attachment.objects.filter(message=message, part=9).delete()
    assert _found(world, "presupuesto") == set()
    message.delete()
    assert _found(world, "corregido") == set()


def test_sent_mail_is_searched_too(world: World):
    received = _receive(world, subject="Pedido 4411", body="¿Dónde está mi pedido?")
    sent = Message.objects.create(direction=Direction.OUTGOING, account=world.a.account, subject="Re: Pedido 4411",
                                  status="sent", in_reply_to=received.message_id, customer=received.customer,
                                  text="Le enviamos el albarán hoy", conversation=received.conversation)
    assert sent.conversation_id == received.conversation_id
    seen, body = _web(world.client("agent_a"), "albaran")
    assert seen == {received.conversation_id} and "<mark>albarán</mark>" in body


@pytest.mark.parametrize("q", ['"', '"abierto', "*", "-", "AND", "OR NOT", "()", "a:b", "^", "NEAR(", "'", "\\",
                               "%", "_", "ñ*", "🙂", "\x00", "x" * 2000, '" OR 1=1 --', "col:*", "ALFA-77*"])
def test_nothing_typed_is_an_error(world: World, q: str):
    for client in (world.client("admin"), world.client("agent_a")):
        assert client.get("/conversations/", {"q": q}).status_code == 200
        assert client.get("/api/v1/search/", {"q": q}).status_code == 200


def test_bad_parameters_are_400s_naming_them(world: World):
    client = world.client("admin")
    assert "q" in client.get("/api/v1/search/").json()
    assert "limit" in client.get("/api/v1/search/", {"q": "x", "limit": "0"}).json()
    assert "cursor" in client.get("/api/v1/search/", {"q": "x", "cursor": "nope"}).json()
    assert "status" in client.get("/api/v1/search/", {"q": "x", "status": "gone"}).json()
    assert client.get("/conversations/", {"q": "x", "cursor": "nope"}).status_code == 400


def test_the_rebuild_command_indexes_existing_mail(world: World):
    message = _receive(world, subject="Antiguo", body="correo de antes del índice")
    table = "search_message_fts" if connection.vendor == "sqlite" else "search_message_document"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
    assert _found(world, "antiguo") == set()
    call_command("search_index", "--rebuild", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _found(world, "antiguo") == {message.conversation_id}
    assert world.a.message.conversation_id in _found(world, "factura ano")


def test_the_search_box_in_spanish(world: World):
    client = world.client("agent_a")
    client.cookies["django_language"] = "es"
    _receive(world, subject="Consulta", body="envío urgente")
    body = client.get("/conversations/", {"q": "envio"}, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert 'name="q"' in body and "Buscar" in body and "<mark>envío</mark>" in body


def test_search_page_returns_conversations_with_their_result(world: World):
    message = _receive(world, subject="Consulta", body="una palabra rarísima")
    page = searching.search_page(world.users["agent_a"], "rarisima")
    assert [row.pk for row in page.rows] == [message.conversation_id] and page.searched
    assert page.rows[0].search.id == message.pk and "<mark>rarísima</mark>" in page.rows[0].search.snippet
    assert not searching.search_page(world.users["agent_a"], "*** ").searched


@pytest.mark.postgres
def test_postgresql_finds_spanish_and_english_word_forms(world: World, postgres_url: str):
    assert connection.vendor == "postgresql"
    spanish = _receive(world, subject="Consulta", body="Necesito las facturas del mes pasado").conversation_id
    english = _receive(world, subject="Question", body="The shipments were delayed again").conversation_id
    found = _found(world, "factura")  # Spanish stem: factur (the world's "Factura año 2026.pdf" too)
    assert spanish in found and english not in found
    assert _found(world, "shipment delay") == {english}  # English stems: shipment, delay
    seen, body = _web(world.client("agent_a"), "factura")
    assert "<mark>facturas</mark>" in body  # the form found is marked, not only the one typed


def _reference(source: Any) -> str:
    """The document as ``search_vector`` (the function) defines it, column by column: what the
    triggers' written-out expression must equal."""
    return " || ".join(f"search_vector(s.{name}, '{weight}')" for name, weight in source.columns)


def _documents_as_a_whole_reindex_writes_them() -> list[int]:
    """Ids of messages whose PostgreSQL document differs from what indexing the message whole gives."""
    from buzon.search import schema
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.id FROM search_message_source s LEFT JOIN search_message_document d ON d.id = s.id "
                       f"WHERE d.document IS DISTINCT FROM ({_reference(schema.MESSAGES)})")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
def test_on_postgresql_attachments_reindex_their_names_alone_and_exactly(world: World, postgres_url: str):
    """An attachment added, renamed, moved or removed re-indexes its message's attachment names, not
    its body: the document is the one a whole re-index writes, and a body changed behind the index's
    back (triggers off) is still the old one after an attachment is added."""
    assert connection.vendor == "postgresql"
    first = _receive(world, subject="Obra nueva", body="Adjunto los planos de la reforma, la cocina y el baño")
    second = _receive(world, subject="Otra", body="sin adjuntos")
    long = _receive(world, subject="Largo", body="x " * 5_000)
    Message.objects.filter(pk=long.pk).update(subject="Largo " + "palabra " * 4_000)  # past the last position
    Attachment.objects.bulk_create([  # one statement, the pipeline's way: the row trigger runs per attachment
        Attachment(message=first, part=2, filename="planos cocina.pdf", content_type="x", size=1),
        Attachment(message=first, part=3, filename="baño-reforma v2.dwg", content_type="x", size=1),
        Attachment(message=long, part=2, filename="anexo.pdf", content_type="x", size=1)])
    Attachment.objects.create(message=second, part=2, filename="Presupuesto año 2027.xlsx", content_type="x", size=1)
    assert _documents_as_a_whole_reindex_writes_them() == []
    assert _found(world, '"pdf baño"') == {first.conversation_id}  # a phrase across two names
    assert _found(world, "anexo") == {long.conversation_id}
    Attachment.objects.filter(message=first, part=3).update(filename="alzado.dwg")
    Attachment.objects.filter(message=second).update(message=first, part=4)
    assert _documents_as_a_whole_reindex_writes_them() == []
    assert _found(world, "presupuesto 2027") == {first.conversation_id} and _found(world, "reforma") == {
        first.conversation_id}  # the body's word stays
    Attachment.objects.filter(message=first, part=2).delete()
    assert _documents_as_a_whole_reindex_writes_them() == [] and _found(world, "cocina") == {first.conversation_id}
    with connection.cursor() as cursor:  # the body changes with the index's triggers off
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE messages_app_message SET text = 'texto cambiado' WHERE id = %s", [first.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    Attachment.objects.create(message=first, part=5, filename="memoria.odt", content_type="x", size=1)
    assert _found(world, "memoria") == _found(world, "cocina") == {first.conversation_id}
    assert _found(world, "cambiado") == set() and _documents_as_a_whole_reindex_writes_them() == [first.pk]
    Attachment.objects.create(message=long, part=3, filename="segundo.pdf", content_type="x", size=1)
    assert _found(world, "segundo") == {long.conversation_id}


def _with_files(account: str, subject: str, body: str, files: list[str]) -> bytes:
    from email.message import EmailMessage
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "Pilar Gil <pilar@cliente.test>", account, subject
    message["Message-ID"] = make_msgid(domain="cliente.test")
    message.set_content(body)
    for name in files:
        message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=name)
    return message.as_bytes()


def _trigger_calls() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE funcname LIKE 'search_%%'")
        return dict(cursor.fetchall())


@pytest.mark.postgres
def test_on_postgresql_mail_stored_together_is_indexed_by_one_trigger_call_per_statement(
        world: World, postgres_url: str):
    """The pipeline stores a chunk's messages in one statement and their attachments in another: each
    statement indexes its rows in one trigger call (a row-level trigger made one call, one plan and
    one executor per row), and the documents are the ones a whole re-index writes. Messages deleted
    together leave the index together."""
    from buzon.inbound import batch
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL track_functions = 'pl'")  # per-function counts, for this transaction
    address = world.a.account.email_address
    raws = [store_raw(_with_files(address, f"Planos {n}", f"Revisión {n} de la cocina acristalada",
                                  [f"alzado-{n}.pdf", f"planta {n}.pdf"]), world.a.account) for n in range(4)]
    before = _trigger_calls()
    assert batch.run_batch([raw.pk for raw in raws])["processed"] == 4
    calls = {name: count - before.get(name, 0) for name, count in _trigger_calls().items()}
    assert calls.get("search_message_inserted") == 1 and calls.get("search_message_d0_inserted") == 1, calls
    assert "search_message_d0" not in calls  # the row-level attachment trigger runs on update and delete only
    assert _documents_as_a_whole_reindex_writes_them() == []
    stored = Message.objects.filter(raw__in=raws)
    assert _found(world, '"planta 2"') == {stored.get(subject="Planos 2").conversation_id}
    assert len(_found(world, "acristalada")) == len({m.conversation_id for m in stored})
    assert _found(world, "acristalada", "agent_a") == _found(world, "acristalada")  # the store's agent
    assert _found(world, "acristalada", "agent_b") == set()  # another store's agent finds none of it
    assert _api(world.client("agent_b"), "acristalada")["results"] == []
    assert {r["id"] for r in _api(world.client("agent_a"), "planta")["results"]} == _found(world, "planta")
    ids = list(stored.values_list("pk", flat=True))
    Attachment.objects.filter(message_id__in=ids).delete()
    Message.objects.filter(pk__in=ids).delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM search_message_document WHERE id = ANY(%s)", [ids])
        assert cursor.fetchone()[0] == 0
    assert _found(world, "acristalada") == set()


@pytest.mark.postgres
def test_on_postgresql_a_new_sender_or_customer_reindexes_what_follows_the_body_alone_and_exactly(
        world: World, postgres_url: str):
    """Sending writes the sender's name the queued message did not have; linking mail to a customer
    sets its customer. Either re-indexes the message's sender, customer and attachment names, not its
    subject and body: the document is the one a whole re-index writes, and a body changed behind
    the index's back (triggers off) is still the old one after the sender changes. A new subject or
    text re-indexes the whole message."""
    assert connection.vendor == "postgresql"
    message = _receive(world, subject="Presupuesto", body="Necesito presupuesto para la terraza acristalada")
    Attachment.objects.create(message=message, part=2, filename="medidas terraza.pdf", content_type="x", size=1)
    long = _receive(world, subject="Largo", body="x " * 5_000)
    Message.objects.filter(pk=long.pk).update(subject="Largo " + "palabra " * 4_000)  # past the last position
    store = world.a.account.store
    ferreteria = Customer.objects.create(name="Ferretería Ruiz", store=store)
    Message.objects.filter(pk=message.pk).update(from_name="Marta Olivares", from_address="marta@olivares.test")
    Message.objects.filter(pk=long.pk).update(from_name="Remitente Lejano", customer=ferreteria)
    assert _documents_as_a_whole_reindex_writes_them() == []
    assert _found(world, "olivares") == _found(world, "acristalada") == _found(world, "medidas") == {
        message.conversation_id}
    assert _found(world, "lejano") == {long.conversation_id}
    Message.objects.filter(pk=message.pk).update(customer=ferreteria)
    Message.objects.filter(pk=long.pk).update(customer=None)
    assert _documents_as_a_whole_reindex_writes_them() == []
    assert _found(world, "ferreteria ruiz") == {message.conversation_id}
    with connection.cursor() as cursor:  # the body changes with the index's triggers off
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE messages_app_message SET text = 'texto cambiado' WHERE id = %s", [message.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    Message.objects.filter(pk=message.pk).update(from_name="Marta O.")
    assert _found(world, "cambiado") == set() and _found(world, "acristalada") == {message.conversation_id}
    assert _documents_as_a_whole_reindex_writes_them() == [message.pk]
    Message.objects.filter(pk=message.pk).update(subject="Presupuesto terraza", from_name="Marta Olivares")
    assert _documents_as_a_whole_reindex_writes_them() == []
    assert _found(world, "cambiado") == {message.conversation_id} and _found(world, "acristalada") == set()


def test_internal_notes_are_searched_by_those_who_see_the_conversation(world: World):
    conversation = world.a.message.conversation_id
    note = actions.do_add_note(world.users["agent_a"], conversation, "Cliente VIP: llamar antes del viernes")
    assert _found(world, "viernes", "agent_a") == {conversation}
    assert _found(world, "viernes", "agent_b") == set()
    match = _api(world.client("supervisor_a"), "llamar viernes")["results"][0]["match"]
    assert match["source"] == "note" and match["id"] == note.pk and "<mark>viernes</mark>" in match["snippet_html"]
    note.text = "Resuelto"
    note.save()
    assert _found(world, "viernes") == set() and _found(world, "resuelto") == {conversation}
    note.delete()
    assert _found(world, "resuelto") == set()


@pytest.mark.parametrize("few", [5000, 1], ids=["few matches: by id", "many: checked row by row"])
def test_the_message_list_filters_by_the_full_text_index(world: World, few: int, monkeypatch: pytest.MonkeyPatch):
    """The Messages page's search reads the full-text index (a word's few matches by id, a common
    word checked as the list reads its rows), never another store's mail."""
    from buzon import search

    monkeypatch.setattr(search, "FEW_MESSAGES", few)
    mine = [_receive(world, subject=f"Consulta {i}", body="¿Hay zarzamoras en la tienda?") for i in range(3)]
    _receive(world, "b", subject="Otra", body="zarzamoras también aquí")
    _receive(world, subject="Nada", body="sin fruta")
    body = world.client("agent_a").get("/inbox/", {"q": "ZARZAMORAS"}).content.decode()
    shown = {int(pk) for pk in re.findall(r'href="/inbox/(\d+)/"', body)}
    assert shown == {m.pk for m in mine}
    admin = world.client("admin").get("/inbox/", {"q": "zarzamoras tienda"}).content.decode()
    assert {int(pk) for pk in re.findall(r'href="/inbox/(\d+)/"', admin)} == shown  # every word

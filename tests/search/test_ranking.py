"""A common word at volume (buzon.search.ranking): a search ranks the newest matches the user may see
(here a pool of 4 instead of 1,000, so a handful of messages stands for a site's history) and pages on
into older ones, each conversation once; a rare word is found wherever it is; the role rule is in the
same walk, so another store's newer mail never hides yours; a page costs the same queries whatever
matches. The same tests run on PostgreSQL with DATABASE_URL set."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from buzon.crm.models import Agent
from buzon.messages.models import Direction, Message
from buzon.search import ranking
from buzon.search.words import fold
from buzon.workspace import actions
from tests.security.conftest import Side, World

pytestmark = pytest.mark.django_db
POOL, SCAN = 4, 10


@pytest.fixture(autouse=True)
def small_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "POOL", POOL)
    monkeypatch.setattr(ranking, "SCAN", SCAN)


def _mail(side: Side, subject: str, text: str, **fields: object) -> Message:
    """A received message of ``side``'s store (a new conversation unless one is given); ids grow
    with arrival, so the last written is the newest."""
    return Message.objects.create(direction=Direction.INCOMING, account=side.account, subject=subject, text=text,
                                  status="processed", from_address="cliente@example.test", **fields)


def _pages(client: Client, q: str, limit: int = 50) -> list[list[int]]:
    pages, cursor = [], ""
    for _ in range(50):
        params = {"q": q, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/search/", params)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        pages.append([row["id"] for row in body["results"]])
        cursor = body["next"]
        if not cursor:
            return pages
    raise AssertionError("the pages never ended")


def _all(client: Client, q: str, limit: int = 50) -> list[int]:
    return [pk for page in _pages(client, q, limit) for pk in page]


def test_a_common_word_ranks_the_newest_matches_first_then_pages_into_older_ones(world: World):
    strong_but_old = _mail(world.a, "Garantía", "La garantía, la garantía y la garantía.").conversation_id
    older = [_mail(world.a, f"Consulta {i}", f"Texto {i} sobre la garantía del producto.").conversation_id
             for i in range(5)]
    newest = [_mail(world.a, f"Pregunta {i}", f"Otra duda {i}: ¿cubre la garantía esto?").conversation_id
              for i in range(3)]
    subject_hit = _mail(world.a, "Garantía caducada", "nada más").conversation_id
    client = world.client("agent_a")
    found = _all(client, "garantia")
    # The newest four matches are ranked first, the subject's match at their head; the strongest
    # match of all is in older mail and comes in a later round.
    assert found[0] == subject_hit and set(found[:POOL]) == {subject_hit, *newest}
    assert strong_but_old not in found[:POOL]
    assert sorted(found) == sorted([strong_but_old, *older, *newest, subject_hit])  # every one, once
    # Smaller pages give the same order, across the rounds' edges.
    assert _all(client, "garantia", limit=3) == found
    assert [len(page) for page in _pages(client, "garantia", limit=3)][0] == 3


def test_a_conversation_with_new_and_old_matches_comes_once(world: World):
    old = _mail(world.a, "Reembolso", "Pido el reembolso de mi pedido.")
    noted = _mail(world.a, "Consulta", "el reembolso, por favor").conversation_id
    fillers = [_mail(world.a, f"Caso {i}", "otro reembolso pendiente").conversation_id for i in range(2 * POOL)]
    _mail(world.a, "Re: Reembolso", "¿Hay noticias del reembolso?", conversation=old.conversation)
    # An old conversation's newest match is a note: it comes with the newest, and not again.
    actions.do_add_note(world.users["agent_a"], noted, "Reembolso aprobado por el supervisor")
    found = _all(world.client("supervisor_a"), "reembolso", limit=2)
    assert len(found) == len(set(found)) == len(fillers) + 2
    assert old.conversation_id in found[:POOL] and noted in found[:POOL]
    assert set(fillers) <= set(found)


def test_a_rare_word_is_found_under_any_number_of_newer_common_matches(world: World):
    rare = _mail(world.a, "Pedido", "La mermelada de zarzamora del pedido llegó rota.").conversation_id
    for i in range(3 * POOL):
        _mail(world.a, f"Pedido {i}", "Mi pedido no ha llegado.")
    assert _all(world.client("agent_a"), "zarzamora") == [rare]
    assert _all(world.client("agent_a"), "pedido zarzamora") == [rare]
    assert rare in _all(world.client("agent_a"), "pedido")


def test_each_role_walks_only_its_own_matches_however_many_newer_ones_others_have(world: World):
    mine = [_mail(world.b, f"Envío {i}", "El envío llegó tarde.").conversation_id for i in range(3)]
    theirs = [_mail(world.a, f"Envío {i}", "El envío llegó tarde.").conversation_id for i in range(3 * POOL)]
    for role in ("agent_b", "supervisor_b"):
        assert sorted(_all(world.client(role), "envio", limit=2)) == sorted(mine), role
    for role in ("agent_a", "supervisor_a"):
        assert sorted(_all(world.client(role), "envio", limit=5)) == sorted(theirs), role
    assert sorted(_all(world.client("admin"), "envio", limit=5)) == sorted(mine + theirs)
    # A signed-in user of no store, with or without an Agent row, finds nothing at all.
    lonely = User.objects.create_user("sin-tienda")
    Agent.objects.create(user=lonely)
    client = Client()
    client.force_login(lonely)
    for who in (client, world.client("nobody")):
        assert _all(who, "envio") == []
        body = who.get("/conversations/", {"q": "envio"}).content.decode()
        assert "data-conversation=" not in body and "llegó tarde" not in body


def test_a_user_who_sees_little_still_finds_their_match_under_many_others(world: World,
                                                                            django_assert_max_num_queries):
    """SQLite reads at most SCAN matches a round, so a page of someone who sees little of the mail
    is bounded work, and the older matches come on later pages; each page the same few queries."""
    mine = _mail(world.b, "Aviso", "Le enviamos el presupuesto.").conversation_id
    for i in range(5 * SCAN):
        _mail(world.a, f"Presupuesto {i}", "el presupuesto de la obra")
    client = world.client("agent_b")
    with django_assert_max_num_queries(15):
        client.get("/api/v1/search/", {"q": "presupuesto"})
    assert _all(client, "presupuesto") == [mine]
    assert len(_all(world.client("agent_a"), "presupuesto", limit=7)) == 5 * SCAN


def test_a_page_costs_the_same_queries_however_many_rounds_and_matches(world: World,
                                                                         django_assert_max_num_queries):
    for i in range(2 * POOL + 1):  # three rounds: the most one page reads
        _mail(world.a, f"Factura {i}", "la factura de marzo")
    client = world.client("agent_a")
    client.get("/api/v1/search/", {"q": "factura"})  # warm: sessions, caches
    with django_assert_max_num_queries(15) as few:
        assert len(client.get("/api/v1/search/", {"q": "factura"}).json()["results"]) >= 2 * POOL + 1
    for i in range(6 * POOL):
        _mail(world.a, f"Factura {i}", "la factura de abril")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get("/api/v1/search/", {"q": "factura"}).json()["results"]) >= 3 * POOL


@pytest.mark.parametrize("cursor", ["1", "1::", "0:-;-:", "2:-;-:", "1:5-;:", "1:x-;-:", "1:-;-:1.0", "1:-;-:a~b",
                                    "1:-;-:1.0~-3", "1:-;-;-:", "9" * 30 + ":-;-:"])
def test_a_cursor_it_did_not_give_is_a_400(world: World, cursor: str):
    response = world.client("agent_a").get("/api/v1/search/", {"q": "factura", "cursor": cursor})
    assert response.status_code == 400 and "cursor" in response.json()


def test_a_long_message_is_found_and_its_snippet_cut_around_the_match(world: World):
    text = "Texto de relleno <sin importancia>. " * 200 + "La referencia ZX-81 <b>urgente</b>. " + "Más texto. " * 200
    conversation = _mail(world.a, "Consulta", text).conversation_id
    match = world.client("agent_a").get("/api/v1/search/", {"q": "zx 81"}).json()["results"]
    assert [row["id"] for row in match] == [conversation]
    snippet = match[0]["match"]["snippet_html"]
    assert snippet.startswith("…") and snippet.endswith("…") and len(snippet) < 600
    assert "<mark>ZX</mark>-<mark>81</mark> &lt;b&gt;urgente&lt;/b&gt;" in snippet


@pytest.mark.postgres
def test_postgresql_folds_the_index_as_the_query(world: World, postgres_url: str):
    assert connection.vendor == "postgresql"
    words = ["Canción", "ÑANDÚ", "Straße", "ДОМ", "Ωmega", "ﬁn", "São", "Ålesund", "naïve", "²"]
    with connection.cursor() as cursor:
        for word in words:
            cursor.execute("SELECT search_fold(%s)", [word])
            assert cursor.fetchone()[0] == fold(word), word
    conversation = _mail(world.a, "Straße", "La canción de ÑANDÚ en São Paulo").conversation_id
    for q in ("strasse", "cancion", "nandu", "sao paulo", "CANCIÓN"):
        assert _all(world.client("agent_a"), q) == [conversation], q


@pytest.mark.postgres
def test_postgresql_asks_the_gin_index_once_whether_a_word_is_common(world: World, postgres_url: str):
    """A word with more than SCAN matches is remembered as common: the next first page walks at once
    (the GIN question cost 30-50 ms of a common word's page at 1,000,000 messages); a rare word is
    asked every time (its matches change as mail arrives); the results are the same."""
    assert connection.vendor == "postgresql"
    for i in range(SCAN + 2):
        _mail(world.a, f"Consulta {i}", f"Texto {i} sobre la garantía del producto.")
    rare = _mail(world.a, "Pregunta", "¿Tienen zarzamoras?").conversation_id
    client = world.client("agent_a")

    def searched(q: str) -> tuple[list[int], list[str]]:
        with CaptureQueriesContext(connection) as queries:
            found = _all(client, q)
        return found, [q["sql"] for q in queries.captured_queries if f"LIMIT {SCAN + 1}" in q["sql"]]

    def of_the_newest_messages(statements: list[str]) -> list[str]:  # not of notes, not below an id
        return [part for sql in statements for part in sql.split("UNION ALL")
                if "search_message_document" in part and "id < " not in part]

    first, asked = searched("garantia")
    assert len(first) == SCAN + 2 and len(of_the_newest_messages(asked)) == 1
    again, asked = searched("garantia")
    assert again == first and of_the_newest_messages(asked) == []  # notes (none match) are asked again
    for _ in range(2):
        found, asked = searched("zarzamoras")
        assert found == [rare] and len(asked) == 1

"""Internal notes on a conversation: every role on the page and the API (another store's agent gets a
404 and writes nothing), the note in the thread among the messages in time order and escaped, never
mailed; @mentions ring the bell of colleagues who may see the conversation, in their language, and
of nobody else, with the same answer whoever is named; the history reads as sentences in the
reader's language."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from buzon.core.models import UserPreferences
from buzon.crm.models import Notification
from buzon.messages.conversations import Conversation
from buzon.messages.models import Message
from buzon.workspace import actions, merging
from buzon.workspace.mentions import KIND, mentioned_names
from buzon.workspace.models import ConversationEvent, ConversationNote, EventKind
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db
SEES_A = {"agent_a", "supervisor_a", "admin"}


def _mentions(user) -> list[Notification]:
    return list(Notification.objects.filter(user=user, kind=KIND))


def test_every_role_adds_and_reads_notes_only_where_it_may(world: World):
    conversation = world.a.message.conversation
    mails = Message.objects.count()
    for role in ROLES:
        client = world.client(role)
        web = client.post(f"/conversations/{conversation.pk}/note/", {"text": f"web {role}"})
        api = client.post(f"/api/v1/conversations/{conversation.pk}/notes/", {"text": f"api {role}"},
                          content_type="application/json")
        listed = client.get(f"/api/v1/conversations/{conversation.pk}/notes/")
        if role == "anonymous":
            assert web.status_code == 302 and web.headers["Location"].startswith("/login/")
            assert api.status_code in (401, 403) and listed.status_code in (401, 403)
            continue
        allowed = role in SEES_A
        assert web.status_code == (302 if allowed else 404), role
        assert api.status_code == (201 if allowed else 404), role
        assert listed.status_code == (200 if allowed else 404), role
        if allowed:
            assert api.json()["text"] == f"api {role}" and api.json()["conversation"] == conversation.pk
            assert {n["text"] for n in listed.json()} >= {f"web {role}", f"api {role}"}
        assert client.post("/api/v1/conversations/999999/notes/", {"text": "x"},
                           content_type="application/json").status_code == 404
    texts = set(ConversationNote.objects.values_list("text", flat=True))
    assert texts == {f"{face} {role}" for face in ("web", "api") for role in SEES_A}  # nothing from the others
    assert ConversationEvent.objects.filter(conversation=conversation, kind=EventKind.NOTE).count() == 6
    assert Message.objects.count() == mails  # a note is never mail
    # Everyone who sees the conversation sees every note, whoever wrote it.
    page = world.client("supervisor_a").get(f"/conversations/{conversation.pk}/").content.decode()
    assert all(f"web {role}" in page for role in SEES_A)


def test_a_note_sits_in_the_thread_in_time_order_escaped_with_its_mentions_highlighted(world: World):
    conversation = world.a.message.conversation
    first = Message.objects.filter(conversation=conversation).order_by("created_at").first()
    assert first is not None
    note = actions.do_add_note(world.users["agent_a"], conversation.pk, "<b>ojo</b> @sara mira <script>x</script>")
    ConversationNote.objects.filter(pk=note.pk).update(created_at=first.created_at + dt.timedelta(seconds=1))
    later = Message.objects.create(conversation=conversation, store=world.a.store, account=world.a.account,
                                   direction="in", subject="otra", text="Segundo correo del cliente",
                                   created_at=timezone.now())
    Message.objects.filter(pk=later.pk).update(created_at=first.created_at + dt.timedelta(minutes=5))
    body = world.client("agent_a").get(f"/conversations/{conversation.pk}/").content.decode()
    thread = body[body.index('id="thread"'):body.index('id="thread-end"')]
    assert thread.index(f'data-message="{first.pk}"') < thread.index(f'data-note="{note.pk}"') \
        < thread.index(f'data-message="{later.pk}"')
    assert "&lt;b&gt;ojo&lt;/b&gt;" in thread and "&lt;script&gt;x&lt;/script&gt;" in thread
    assert "<b>ojo" not in thread and "<script>x" not in thread
    assert '<span class="mention">@sara</span>' in thread and ">Note<" in thread
    assert "ana" in thread[thread.index(f'data-note="{note.pk}"'):]


def test_mentions_tell_colleagues_who_may_see_it_in_their_language_and_nobody_else(world: World):
    conversation = world.a.message.conversation
    UserPreferences.objects.update_or_create(user=world.users["supervisor_a"], defaults={"language": "es"})
    client = world.client("agent_a")
    text = "@sara @Root @bruno @sergio @nadie @ana @fantasma mira esto, y escribe a x@sara.test"
    answer = client.post(f"/api/v1/conversations/{conversation.pk}/notes/", {"text": text},
                         content_type="application/json")
    assert answer.status_code == 201
    told = _mentions(world.users["supervisor_a"])
    assert len(told) == 1 and told[0].url == f"/conversations/{conversation.pk}/"
    assert "le mencionó en una nota" in told[0].text and conversation.subject in told[0].text
    admin = _mentions(world.users["admin"])
    assert len(admin) == 1 and "mentioned you in a note" in admin[0].text  # English: no preference
    for outsider in ("agent_b", "supervisor_b", "nobody", "agent_a"):  # other store, no store, the author
        assert _mentions(world.users[outsider]) == [], outsider
    # The answer is the same whether the name is another store's colleague or no one at all.
    other = client.post(f"/api/v1/conversations/{conversation.pk}/notes/", {"text": "@bruno"},
                        content_type="application/json").json()
    missing = client.post(f"/api/v1/conversations/{conversation.pk}/notes/", {"text": "@fantasma"},
                          content_type="application/json").json()
    assert set(other) == set(missing) and other["author"] == missing["author"]
    assert mentioned_names("hola @Ana.y @ana, correo ana@x.test @b") == ["Ana.y", "ana", "b"]
    # The bell counts it on the mentioned person's next page.
    page = world.client("supervisor_a").get(f"/conversations/{conversation.pk}/").content.decode()
    assert 'id="bell-count">1<' in page


def test_a_note_of_another_store_writes_nothing_and_tells_no_one(world: World):
    conversation = world.a.message.conversation
    answer = world.client("agent_b").post(f"/api/v1/conversations/{conversation.pk}/notes/", {"text": "@ana hola"},
                                          content_type="application/json")
    assert answer.status_code == 404
    assert not ConversationNote.objects.exists() and not ConversationEvent.objects.filter(kind="note").exists()
    assert _mentions(world.users["agent_a"]) == []


def test_an_empty_note_is_refused_in_words(world: World):
    conversation = world.a.message.conversation
    client = world.client("agent_a")
    api = client.post(f"/api/v1/conversations/{conversation.pk}/notes/", {"text": "   "},
                      content_type="application/json")
    assert api.status_code == 400 and "text" in api.json()
    web = client.post(f"/conversations/{conversation.pk}/note/", {"text": "  "}, follow=True)
    assert "Write the note first." in web.content.decode()
    assert not ConversationNote.objects.exists()


def test_the_history_reads_as_sentences_in_the_readers_language(world: World):
    conversation = world.a.message.conversation
    ana = world.users["agent_a"]
    ana.first_name = "Ana"
    ana.save()
    actions.do_set_status(ana, conversation.pk, "closed")
    actions.do_assign(ana, conversation.pk, world.agents["supervisor_a"].pk)
    actions.do_add_note(ana, conversation.pk, "hola")
    actions.do_assign(ana, conversation.pk, "")
    english = world.client("supervisor_a").get(f"/conversations/{conversation.pk}/").content.decode()
    history = english[english.index('id="history"'):]
    for sentence in ("Ana changed the status from Open to Closed.", "Ana assigned it to sara.",
                     "Ana added a note.", "Ana unassigned it."):
        assert sentence in history, sentence
    spanish = world.client("supervisor_a")
    spanish.cookies["django_language"] = "es"
    body = spanish.get(f"/conversations/{conversation.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    history = body[body.index('id="history"'):]
    for sentence in ("Ana cambió el estado de Abierta a Cerrada.", "Ana la asignó a sara.",
                     "Ana añadió una nota.", "Ana quitó la asignación."):
        assert sentence in history, sentence
    assert "Nota interna" in body and "Añadir nota" in body


def test_the_page_costs_the_same_queries_with_one_note_or_many(world: World, django_assert_max_num_queries):
    conversation = world.a.message.conversation
    client = world.client("agent_a")
    actions.do_add_note(world.users["agent_a"], conversation.pk, "una")
    with CaptureQueriesContext(connection) as one:
        assert client.get(f"/conversations/{conversation.pk}/").status_code == 200
    with CaptureQueriesContext(connection) as one_api:
        assert client.get(f"/api/v1/conversations/{conversation.pk}/notes/").status_code == 200
    for number in range(15):
        actions.do_add_note(world.users["supervisor_a" if number % 2 else "agent_a"], conversation.pk, f"n{number}")
        actions.do_set_status(world.users["agent_a"], conversation.pk, "closed" if number % 2 else "open")
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert client.get(f"/conversations/{conversation.pk}/").status_code == 200
    with django_assert_max_num_queries(len(one_api.captured_queries)):
        assert client.get(f"/api/v1/conversations/{conversation.pk}/notes/").status_code == 200


def test_notes_follow_a_merge(world: World):
    into = world.a.message.conversation
    other = world.a.sent.conversation
    if other is None or other.pk == into.pk:
        other = Conversation.objects.create(store=world.a.store, subject="otra", status="open")
    note = actions.do_add_note(world.users["agent_a"], other.pk, "nota de la otra")
    merging.do_merge(world.users["agent_a"], into.pk, other.pk)
    note.refresh_from_db()
    assert note.conversation_id == into.pk
    body = world.client("agent_a").get(f"/conversations/{into.pk}/").content.decode()
    assert "nota de la otra" in body


def test_the_bell_counts_up_to_99_and_then_says_more_in_the_readers_language(world: World):
    user = world.users["agent_a"]
    Notification.objects.filter(user=user).delete()
    Notification.objects.bulk_create([Notification(user=user, kind="new_email", text=f"n{i}", url="/inbox/",
                                                   key=f"bell-{i}") for i in range(99)])
    client = world.client("agent_a")
    page = client.get("/conversations/").content.decode()
    assert 'id="bell-count">99<' in page and "99 unread notifications" in page
    Notification.objects.bulk_create([Notification(user=user, kind="new_email", text=f"m{i}", url="/inbox/",
                                                   key=f"bell-more-{i}") for i in range(150)])
    page = client.get("/conversations/").content.decode()
    assert 'id="bell-count">99+<' in page and "More than 99 unread notifications" in page
    page = client.get("/conversations/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Más de 99 notificaciones sin leer" in page
    # the list of them and the API still count them all
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 249}

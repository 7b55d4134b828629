"""POST /api/v1/messages/send/batch/: many sends in one request, each held to a single send's rules.

Mail goes to a real SMTP server (the aiosmtpd sink), delivered by the queue as the worker does; the
delivery tasks are counted in the database queue with joining switched off, so "one task for the
batch" is the batch's doing.
"""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from buzon.crm.models import Agent, Customer, Store
from buzon.messages.models import Message
from buzon.outbound.models import OutgoingEmail
from buzon.outbound.sender import deliver_due
from tests.outbound.conftest import SMTP_USER, make_account, pool  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

URL = "/api/v1/messages/send/batch/"
NO_ACCOUNT = "There is no email account with this id that you can send from."
NO_ACCOUNT_ES = "No hay ninguna cuenta de correo con este id desde la que pueda enviar."


@pytest.fixture
def world(smtp_starttls: Any, make_account: Any, settings: Any) -> dict[str, Any]:  # noqa: F811
    settings.OUTBOUND_COALESCE_S = 0  # each single send would ask for a task of its own
    north, south = Store.objects.create(name="Norte"), Store.objects.create(name="Sur")
    accounts = {name: make_account(smtp_starttls, address=f"{name}@example.test", login=SMTP_USER, store=store)
                for name, store in (("norte", north), ("sur", south))}
    return {"north": north, "south": south, **accounts}


def _client(username: str, store: Store | None) -> APIClient:
    user = get_user_model().objects.create_user(username, f"{username}@personal.example", "pw-agent-123")
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    if store is not None:
        agent.stores.add(store)
    client = APIClient()
    client.force_authenticate(user)
    return client


def _mail(n: int, **fields: Any) -> dict[str, Any]:
    return {"to": [f"cliente{n}@cliente.example"], "subject": f"Pedido {n}", "text": "Buenos días.", **fields}


def _post(client: APIClient, body: Any, capture: Any, **headers: Any) -> Any:
    with capture(execute=True):  # the delivery task is asked for once the batch commits
        return client.post(URL, body, format="json", **headers)


def _received(sink: Any, pool: Any) -> dict[str, str]:  # noqa: F811
    """Subject -> From of every message the SMTP server accepted."""
    deliver_due(pool=pool)
    parsed = [message_from_bytes(m.data, policy=policy.default) for m in sink.messages]
    return {str(m["Subject"]): m["From"].addresses[0].addr_spec for m in parsed}


def _delivery_tasks() -> int:
    return DBTaskResult.objects.filter(task_path="buzon.outbound.tasks.deliver_outgoing").count()


def test_a_batch_of_three_reaches_the_smtp_server_with_one_delivery_task(world, smtp_starttls, pool,  # noqa: F811
                                                                         django_capture_on_commit_callbacks):
    lucia = _client("lucia", world["north"])
    response = _post(lucia, [_mail(n, account=world["norte"].pk) for n in range(3)],
                     django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    results = response.json()
    assert [r["status"] for r in results] == ["queued"] * 3
    assert [r["account"] for r in results] == ["norte@example.test"] * 3
    assert [Message.objects.get(pk=r["id"]).subject for r in results] == ["Pedido 0", "Pedido 1", "Pedido 2"]
    assert _delivery_tasks() == 1
    assert _received(smtp_starttls, pool) == {f"Pedido {n}": "norte@example.test" for n in range(3)}


def test_an_item_naming_another_stores_account_is_refused_and_the_others_are_sent(
        world, smtp_starttls, pool, django_capture_on_commit_callbacks):  # noqa: F811
    lucia = _client("lucia", world["north"])
    batch = [_mail(0, account=world["norte"].pk), _mail(1, account=world["sur"].pk),
             _mail(2, account=2**40),  # an id that names nothing: the very same answer
             _mail(3, to=["not an address"]),  # refused by the queue itself, after validation
             _mail(4)]  # no account named: the store's own
    response = _post(lucia, batch, django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    results = response.json()
    assert [r["status"] for r in results] == ["queued", "refused", "refused", "refused", "queued"]
    assert results[1] == {"status": "refused", "errors": {"account": [NO_ACCOUNT]}}
    assert results[2] == results[1]
    assert list(results[3]["errors"]) == ["to"]
    assert OutgoingEmail.objects.count() == 2 and Message.objects.count() == 2  # nothing left of the refused
    assert _delivery_tasks() == 1
    assert _received(smtp_starttls, pool) == {"Pedido 0": "norte@example.test", "Pedido 4": "norte@example.test"}


def test_a_user_in_no_store_sends_nothing_through_a_stores_account(world, smtp_starttls, pool,  # noqa: F811
                                                                   django_capture_on_commit_callbacks):
    nobody = _client("invitado", None)
    response = _post(nobody, [_mail(0, account=world["norte"].pk), _mail(1)], django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    first, second = response.json()
    assert first == {"status": "refused", "errors": {"account": [NO_ACCOUNT]}}
    # the advice fits who reads it: only an administrator can set up the default outgoing account
    assert second == {"status": "refused", "errors": {"detail": [
        "There is no outgoing email account you may send this from. Ask an administrator to give you one."]}}
    lucia = _client("lucia", world["north"])  # a store's agent asking for a notification, with no default
    notice = _post(lucia, [_mail(3, kind="notification")], django_capture_on_commit_callbacks)
    assert notice.json() == [second]
    admin = get_user_model().objects.create_superuser("jefa", "jefa@personal.example", "pw-admin-12345")
    client = APIClient()
    client.force_authenticate(admin)
    response = _post(client, [_mail(2)], django_capture_on_commit_callbacks)
    assert response.json() == [{"status": "refused", "errors": {"detail": [
        "There is no outgoing email account to send this from. Set one up and mark it as default outgoing."]}}]
    assert not Message.objects.exists() and _delivery_tasks() == 0
    assert _received(smtp_starttls, pool) == {}


def test_item_errors_are_in_spanish(world, django_capture_on_commit_callbacks):
    lucia = _client("lucia", world["north"])
    response = _post(lucia, [_mail(0, account=world["sur"].pk), _mail(1, account=world["norte"].pk)],
                     django_capture_on_commit_callbacks, HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 200, response.content
    assert response.json()[0] == {"status": "refused", "errors": {"account": [NO_ACCOUNT_ES]}}
    assert response.json()[1]["status"] == "queued"


@pytest.mark.parametrize(("body", "english", "spanish"), [
    ([], "The list is empty: give at least one message.", "La lista está vacía: incluya al menos un mensaje."),
    ({"to": ["a@cliente.example"], "text": "x"}, "Send a JSON list of messages, each like a single send's.",
     "Envíe una lista JSON de mensajes, cada uno como en un envío suelto."),
    ([_mail(n) for n in range(501)], "A batch holds at most 500 messages; this one has 501. Split it.",
     "Un lote admite como mucho 500 mensajes; este tiene 501. Divídalo."),
])
def test_a_body_that_is_not_a_batch_is_a_400_that_queues_nothing(world, django_capture_on_commit_callbacks,
                                                                 body, english, spanish):
    lucia = _client("lucia", world["north"])
    for language, words in (("en", english), ("es", spanish)):
        response = _post(lucia, body, django_capture_on_commit_callbacks, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 400
        assert response.json() == {"detail": [words]}
    assert not Message.objects.exists() and _delivery_tasks() == 0


def test_signed_out_callers_are_refused(world):
    assert APIClient().post(URL, [_mail(0)], format="json").status_code == 401


def _incoming(account: Any, n: int) -> Message:
    """A customer's mail received by ``account`` (saved: in a conversation of its own)."""
    from buzon.messages.models import Direction, MessageStatus

    message = Message(direction=Direction.INCOMING, account=account, status=MessageStatus.PROCESSED,
                      message_id=f"<pregunta-{n}@cliente.example>", subject=f"Pregunta {n}",
                      from_address=f"cliente{n}@cliente.example", to=[account.email_address], text="¿Y mi pedido?")
    message.save()
    return message


def test_replies_join_their_conversations_and_new_mail_starts_one_each(world, smtp_starttls, pool,  # noqa: F811
                                                                      django_capture_on_commit_callbacks):
    lucia = _client("lucia", world["north"])
    question = _incoming(world["norte"], 1)
    response = _post(lucia, [_mail(0, account=world["norte"].pk), _mail(1, in_reply_to=question.pk),
                             _mail(2, account=world["norte"].pk)], django_capture_on_commit_callbacks)
    assert [r["status"] for r in response.json()] == ["queued"] * 3
    first, reply, third = (Message.objects.get(pk=r["id"]) for r in response.json())
    assert reply.conversation_id == question.conversation_id and reply.in_reply_to == question.message_id
    assert len({first.conversation_id, third.conversation_id, question.conversation_id}) == 3
    for message, count in ((first, 1), (reply, 2), (third, 1)):
        conversation = message.conversation
        assert conversation.message_count == count
        assert conversation.store_id == world["north"].pk
        assert conversation.snippet == "Buenos días."  # a person's reply is what the inbox shows last
        assert conversation.last_message_at == message.created_at
    deliver_due(pool=pool)
    parsed = {str(m["Subject"]): m for m in (message_from_bytes(x.data, policy=policy.default)
                                            for x in smtp_starttls.messages)}
    assert set(parsed) == {"Pedido 0", "Pedido 1", "Pedido 2"}
    assert parsed["Pedido 1"]["In-Reply-To"] == question.message_id
    assert parsed["Pedido 0"]["In-Reply-To"] is None


def test_an_item_for_an_unconfirmed_sender_is_refused_alone(world, make_account, smtp_starttls, pool,  # noqa: F811
                                                            django_capture_on_commit_callbacks):
    waiting = make_account(smtp_starttls, address="nuevo@example.test", login=SMTP_USER, store=world["north"],
                           confirmed=False)
    lucia = _client("lucia", world["north"])
    response = _post(lucia, [_mail(0, account=waiting.pk), _mail(1, account=world["norte"].pk),
                             _mail(2, account=waiting.pk)], django_capture_on_commit_callbacks)
    results = response.json()
    assert [r["status"] for r in results] == ["refused", "queued", "refused"]
    assert "nuevo@example.test has not been confirmed as a sender yet" in results[0]["errors"]["detail"][0]
    assert results[2] == results[0]
    assert _received(smtp_starttls, pool) == {"Pedido 1": "norte@example.test"}


@pytest.mark.parametrize("item", ["a string", None, 7, ["a", "list"]])
def test_an_item_that_is_not_an_object_is_refused_and_the_others_are_queued(world, django_capture_on_commit_callbacks,
                                                                           item):
    lucia = _client("lucia", world["north"])
    response = _post(lucia, [item, _mail(1, account=world["norte"].pk)], django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    refused, queued = response.json()
    assert refused == {"status": "refused", "errors": {"detail": [
        "Each item is one message: a JSON object like a single send's."]}}
    assert queued["status"] == "queued"
    assert Message.objects.count() == 1


def test_a_batch_makes_no_query_per_message(world, django_capture_on_commit_callbacks):
    """3 and 100 messages: the same queries, but for the multi-row inserts the database's parameter
    limit splits (SQLite: a statement per ~30 messages)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    lucia = _client("lucia", world["north"])
    counts = []
    for size in (3, 100):
        with CaptureQueriesContext(connection) as queries:
            response = _post(lucia, [_mail(n, account=world["norte"].pk) for n in range(size)],
                             django_capture_on_commit_callbacks)
        assert [r["status"] for r in response.json()] == ["queued"] * size
        counts.append(len(queries.captured_queries))
    assert counts[1] - counts[0] <= 8, counts
    assert Message.objects.filter(conversation__isnull=True).count() == 0
    assert OutgoingEmail.objects.count() == 103


WHOLE_NUMBER = "Give the email account's id, a whole number."


@pytest.mark.parametrize(("raw", "answer"), [
    ("1e999", WHOLE_NUMBER), ("-1e999", WHOLE_NUMBER),  # infinities: raised in the database look-up (a 500)
    ("{pk}.5", WHOLE_NUMBER),  # was read as the account {pk} and sent through it
    ("true", WHOLE_NUMBER), ('"{pk}.0"', WHOLE_NUMBER), ("[{pk}]", WHOLE_NUMBER),
    ("18446744073709551616", NO_ACCOUNT), ("0", NO_ACCOUNT),  # whole numbers no key holds: no such account
])
def test_an_account_id_that_is_not_one_is_refused_alone_and_the_others_are_sent(
        world, smtp_starttls, pool, django_capture_on_commit_callbacks, raw, answer):  # noqa: F811
    """Raw JSON, as any client may send it: the item is refused with the single send's words and the
    batch's other items are queued and reach the SMTP server; a single send gets the same 400."""
    lucia = _client("lucia", world["north"])
    value = raw.format(pk=world["norte"].pk)
    good = json.dumps(_mail(0, account=world["norte"].pk))
    bad = json.dumps(_mail(1))[:-1] + f', "account": {value}}}'
    with django_capture_on_commit_callbacks(execute=True):
        response = lucia.post(URL, f"[{good}, {bad}]", content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()[1] == {"status": "refused", "errors": {"account": [answer]}}
    assert response.json()[0]["status"] == "queued"
    single = lucia.post("/api/v1/messages/send/", bad, content_type="application/json")
    assert single.status_code == 400 and single.json() == {"account": [answer]}, single.content
    assert Message.objects.count() == 1
    assert _received(smtp_starttls, pool) == {"Pedido 0": "norte@example.test"}


@pytest.mark.parametrize("raw", ["1e999", "2.5", "18446744073709551616", '"abc"'])
def test_any_related_id_the_api_takes_is_refused_as_a_400_not_a_500(world, raw):
    """Every relation a model serializer writes takes its id the same way (buzon.api.fields.IdField):
    a customer's store given as an infinity, a fraction, a number past 64 bits or text."""
    admin = get_user_model().objects.create_superuser("jefa", "jefa@personal.example", "pw-admin-12345")
    client = APIClient()
    client.force_authenticate(admin)
    response = client.post("/api/v1/customers/", f'{{"name": "Ana", "store": {raw}}}', content_type="application/json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["store"]
    assert not Customer.objects.exists()

"""Bad input is refused at once, naming its field; a queued message that cannot be composed fails
visibly with its reason instead of staying claimed and failing the delivery task forever.

Refusals are checked through the API and the compose form; the failures through the real queue and
delivery task (and, on PostgreSQL, a real `buzon worker` process) against an aiosmtpd sink.
"""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.module_loading import import_string
from rest_framework.test import APIClient

from buzon.messages.models import Direction, Message, MessageStatus
from buzon.messages.outbox import queue_outgoing
from buzon.outbound.models import AttemptOutcome, DeliveryAttempt, OutgoingAttachment, OutgoingEmail, QueueState
from tests.support.smtpd import SMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db: Any) -> Any:
    return get_user_model().objects.create_user("jefa", "jefa@example.test", "jefa-pass", is_staff=True)


@pytest.fixture
def api(admin: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin)
    return client


def _attachment(filename: str = "a.txt", mimetype: str = "text/plain") -> dict[str, str]:
    return {"filename": filename, "content_base64": base64.b64encode(b"hola").decode(), "mimetype": mimetype}


BAD_FIELDS = [
    ("subject", {"subject": "Hola\r\nBcc: spy@evil.test"}),
    ("subject", {"subject": "Hola\nmundo"}),
    ("subject", {"subject": "Hola\u2028mundo"}),
    ("subject", {"subject": "Hola\x00"}),
    ("attachments", {"attachments": [_attachment(filename="a.txt\r\nX-Evil: 1")]}),
    ("attachments", {"attachments": [_attachment(mimetype="text/plain\r\nX-Evil: 1")]}),
    ("attachments", {"attachments": [_attachment(mimetype="text/\nplain")]}),
    ("attachments", {"attachments": [_attachment(mimetype="no type at all")]}),
    ("to", {"to": ["Ana\r\nBcc: spy@evil.test <ana@example.org>"]}),
    ("cc", {"cc": ['"Luis\nX" <luis@example.org>']}),
    ("bcc", {"bcc": ["x@exa\r\nmple.org"]}),
]


@pytest.mark.parametrize(("field", "given"), BAD_FIELDS)
def test_api_refuses_header_breaking_input_naming_the_field(api: APIClient, make_account: Any, field: str,
                                                            given: dict[str, Any], smtp_starttls: SMTPServer,
                                                            pool: Any) -> None:
    account = make_account(smtp_starttls)
    payload = {"to": ["c@example.org"], "subject": "Hola", "text": "Cuerpo", "account": account.pk, **given}
    response = api.post("/api/v1/messages/send/", payload, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field], response.json()
    assert not Message.objects.filter(direction=Direction.OUTGOING).exists()
    assert not OutgoingEmail.objects.exists()
    from buzon.outbound.sender import deliver_due

    deliver_due(pool=pool)
    assert smtp_starttls.messages == []


def test_api_refusals_say_what_is_wrong(api: APIClient, make_account: Any) -> None:
    account = make_account()
    base = {"to": ["c@example.org"], "text": "Cuerpo", "account": account.pk}
    subject = api.post("/api/v1/messages/send/", {**base, "subject": "a\nb"}, format="json").json()
    assert subject == {"subject": ["The subject must be a single line, without line breaks or control characters."]}
    second = api.post("/api/v1/messages/send/", {**base, "subject": "s", "attachments": [
        _attachment(), _attachment(mimetype="text/html\r\nX: y")]}, format="json").json()
    assert second == {"attachments": ["Attachment 2: its content type is not a type such as application/pdf or "
                                      "image/png."]}
    # A tab is ordinary white space in a subject, and a long one is folded: both are sent.
    fine = api.post("/api/v1/messages/send/", {**base, "subject": "Pedido\t42 " + "muy largo " * 40},
                    format="json")
    assert fine.status_code == 202, fine.content


def test_api_refuses_a_lone_surrogate_in_a_body_naming_it(api: APIClient, make_account: Any) -> None:
    account = make_account()
    raw = '{"to": ["c@example.org"], "subject": "s", "account": ACCOUNT, "text": "Hola \\ud83d adi\u00f3s"}'
    raw = raw.replace("ACCOUNT", str(account.pk))  # JSON's escape of half a character (a lone surrogate)
    refused = api.post("/api/v1/messages/send/", raw, content_type="application/json")
    assert refused.status_code == 400 and refused.json() == {"text": ["Surrogate characters are not allowed: U+D83D."]}
    whole = api.post("/api/v1/messages/send/", {"to": ["c@example.org"], "subject": "s", "account": account.pk,
                                               "html": "<p>Hola 😀 adiós</p>"}, format="json")
    assert whole.status_code == 202, whole.content  # the same character written whole is fine


def test_compose_form_shows_the_refusal_under_the_field(admin: Any, make_account: Any) -> None:
    make_account(default_outgoing=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    page = client.get("/compose/")
    token = page.cookies["csrftoken"].value
    response = client.post("/compose/", {"csrfmiddlewaretoken": token, "to": "c@example.org",
                                         "subject": "Hola\r\nBcc: spy@evil.test", "text": "Cuerpo"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors == {"subject": ["The subject must be a single line, without line breaks or control characters."]}
    assert b"The subject must be a single line" in response.content
    assert not Message.objects.filter(direction=Direction.OUTGOING).exists()


# Rows queued before such input was refused (or by a path that skipped the checks) are made here by
# writing the bad value into the stored row, as an older Buzón would have left it.

def _queued(account: Any, subject: str = "Pedido 1") -> Message:
    return queue_outgoing(to=["c@example.org"], subject=subject, text="Cuerpo", account=account)


def _spoil(message: Message, how: str) -> None:
    if how == "subject":
        Message.objects.filter(pk=message.pk).update(subject="Hola\r\nBcc: spy@evil.test")
    else:
        OutgoingAttachment.objects.create(outgoing_id=message.pk, filename="a.txt", content=b"hola",
                                          mimetype="text/plain\r\nX-Evil: 1")


def _assert_failed_visibly(message: Message, admin: Any) -> None:
    row = OutgoingEmail.objects.get(pk=message.pk)
    assert (row.state, row.attempts, row.claimed_by) == (QueueState.FAILED, 1, "")
    stored = Message.objects.get(pk=message.pk)
    assert stored.status == MessageStatus.SEND_FAILED
    assert stored.status_reason.startswith("The message could not be put together for sending, so it was not sent")
    [attempt] = DeliveryAttempt.objects.filter(outgoing_id=message.pk)
    assert attempt.outcome == AttemptOutcome.FAILED
    client = Client()
    client.force_login(admin)
    page = client.get(f"/sent/{message.pk}/").content.decode()
    assert 'id="status-reason"' in page and "could not be put together for sending" in page
    detail = APIClient()
    detail.force_authenticate(admin)
    body = detail.get(f"/api/v1/messages/{message.pk}/").json()
    assert body["status"] == "send_failed" and "could not be put together" in body["status_reason"]


@pytest.mark.parametrize("how", ["subject", "attachment type"])
def test_a_row_that_cannot_be_composed_fails_visibly_through_the_delivery_task(
        how: str, admin: Any, make_account: Any, smtp_starttls: SMTPServer, settings: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    account = make_account(smtp_starttls)
    bad = _queued(account)
    _spoil(bad, how)
    good = _queued(account, subject="Pedido 2")
    # The task the queue enqueues, run by the task backend as a worker runs it: it does not raise.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    with django_capture_on_commit_callbacks(execute=True):
        result = import_string(settings.OUTBOUND_TASK).enqueue(bad.pk)
    assert result.status == "SUCCESSFUL", result
    _assert_failed_visibly(bad, admin)
    [received] = smtp_starttls.messages  # the good message of the same batch went out; nothing else did
    mail = message_from_bytes(received.data, policy=policy.default)
    assert mail["Subject"] == "Pedido 2" and mail["Bcc"] is None and mail["X-Evil"] is None
    assert received.rcpt_tos == ["c@example.org"]
    assert OutgoingEmail.objects.get(pk=good.pk).state == QueueState.SENT


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_worker_process_fails_an_uncomposable_row_once_and_goes_on(
        admin: Any, make_account: Any, smtp_plain: SMTPServer, postgres_url: str, tmp_path: Any,
        settings: Any) -> None:
    from tests.ops.test_worker import _database_url
    from tests.sync.helpers import wait_for
    from tests.sync.procs import buzon, buzon_env, stop

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend",  # the worker's queue
                                    "QUEUES": settings.TASK_QUEUES}}
    account = make_account(smtp_plain, smtp_security="none", smtp_host="127.0.0.1")
    bad = _queued(account)  # each queued message enqueues its delivery task once committed
    _spoil(bad, "subject")
    good = _queued(account, subject="Pedido 2")
    worker = buzon(buzon_env(_database_url(), tmp_path), "worker", log=tmp_path / "worker.log")
    try:
        wait_for(lambda: OutgoingEmail.objects.get(pk=good.pk).state == QueueState.SENT, 60)
        wait_for(lambda: OutgoingEmail.objects.get(pk=bad.pk).state == QueueState.FAILED, 30)
    finally:
        code = stop(worker)
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    _assert_failed_visibly(bad, admin)
    assert [message_from_bytes(m.data, policy=policy.default)["Subject"] for m in smtp_plain.messages] == ["Pedido 2"]


def test_an_account_display_name_that_would_break_the_from_header_is_refused(api: APIClient, make_account: Any,
                                                                              admin: Any) -> None:
    """The display name goes into the From of every mail the account sends: refused at save, in the API
    and in the account form, rather than failing every message later."""
    account = make_account()
    response = api.patch(f"/api/v1/email-accounts/{account.pk}/", {"display_name": "Soporte\r\nBcc: spy@evil.test"},
                         format="json")
    assert response.status_code == 400
    assert response.json()["display_name"] == ["The display name must be a single line, without line breaks or "
                                                "control characters."]
    account.refresh_from_db()
    assert account.display_name == "Soporte"


def test_buzons_own_mail_quoting_an_incoming_subject_makes_it_one_line(make_account: Any, smtp_starttls: SMTPServer,
                                                                        pool: Any) -> None:
    """An auto-reply answers whatever subject came in (an encoded word may decode to a line break): it
    is sent on one line, never refused nor split into headers."""
    from buzon.outbound.sender import deliver_due

    account = make_account(smtp_starttls, incoming_enabled=True)
    queued = queue_outgoing(to=["c@example.org"], subject="Re: Hola\r\nBcc: spy@evil.test", text="Recibido.",
                            account=account, kind="auto_reply")
    assert queued.subject == "Re: Hola Bcc: spy@evil.test"
    deliver_due(pool=pool)
    mail = message_from_bytes(smtp_starttls.messages[0].data, policy=policy.default)
    assert mail["Subject"] == "Re: Hola Bcc: spy@evil.test" and mail["Bcc"] is None

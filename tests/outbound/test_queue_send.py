"""The queue end to end against real aiosmtpd servers: STARTTLS, implicit TLS, plain, faults."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from buzon.messages.models import MessageStatus
from buzon.messages.outbox import SendRefused, queue_outgoing
from buzon.outbound import queue
from buzon.outbound.models import DeliveryAttempt, OutgoingEmail, QueueState
from buzon.outbound.sender import deliver_due

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("mode", ["starttls", "ssl", "plain"])
def test_sends_through_each_security_mode(request: Any, make_account: Any, pool: Any, mode: str) -> None:
    server = request.getfixturevalue(f"smtp_{mode}")
    account = make_account(server, smtp_security="none" if mode == "plain" else mode)
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="Cuerpo", account=account)
    assert message.status == MessageStatus.QUEUED
    stats = deliver_due(pool=pool)
    assert stats.sent == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    received = server.messages[0]
    assert received.rcpt_tos == ["ana@example.org"]
    assert received.message["Message-ID"] == message.message_id
    assert received.login == "sender@example.test"


def test_auth_off_for_a_relay_without_login(test_certs: Any, make_account: Any, pool: Any) -> None:
    from tests.support.smtpd import SMTPServer

    relay = SMTPServer(test_certs, mode="plain", require_auth=False).start()
    try:
        account = make_account(relay, smtp_security="none", smtp_auth=False)
        queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
        assert deliver_due(pool=pool).sent == 1
        assert relay.messages[0].login is None
    finally:
        relay.stop()


def test_a_single_message_is_not_held_back_waiting_for_a_group(smtp_plain: Any, make_account: Any, pool: Any,
                                                               monkeypatch: Any) -> None:
    """Commits are grouped while other messages are in flight; a task with one message (the common
    case under steady load, one task per queued message) never waits for requests that cannot come."""
    import time

    from buzon.outbound import sender

    monkeypatch.setattr(sender, "GROUP_S", 5.0)
    account = make_account(smtp_plain, smtp_security="none")
    queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    deliver_due(pool=pool)  # the connection is open now
    queue_outgoing(to=["luis@example.org"], subject="Hola", text="x", account=account)
    started = time.monotonic()
    assert deliver_due(pool=pool).sent == 1
    assert time.monotonic() - started < 2.5  # neither the gate's commit nor the outcome's waited 5 s
    assert len(smtp_plain.messages) == 2


def test_connections_are_reused_across_messages(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls)
    for n in range(12):
        queue_outgoing(to=[f"c{n}@example.org"], subject=f"n{n}", text="x", account=account)
    assert deliver_due(pool=pool).sent == 12
    assert len(smtp_starttls.messages) == 12
    assert pool.opened <= pool.per_account
    queue_outgoing(to=["again@example.org"], subject="later", text="x", account=account)
    deliver_due(pool=pool)
    assert pool.opened <= pool.per_account  # the second run used the idle connections


def test_4xx_is_retried_with_backoff_then_sent(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls)
    smtp_starttls.handler.fail_data.append("451 4.3.0 Try again later")
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    stats = deliver_due(pool=pool)
    assert stats.retrying == 1
    outgoing = OutgoingEmail.objects.get(pk=message.pk)
    assert outgoing.state == QueueState.PENDING and outgoing.attempts == 1
    assert outgoing.next_attempt_at > timezone.now() + datetime.timedelta(seconds=30)
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED and "451" in message.status_reason
    assert deliver_due(pool=pool).sent == 0  # not due yet
    OutgoingEmail.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert deliver_due(pool=pool).sent == 1
    log = list(DeliveryAttempt.objects.filter(outgoing=message.pk).values_list("outcome", "code"))
    assert log == [("retry", 451), ("sent", 250)]
    # The retry resent the very bytes composed the first time.
    assert smtp_starttls.messages[0].message["Message-ID"] == message.message_id


def test_backoff_grows_exponentially(settings: Any) -> None:
    settings.OUTBOUND_RETRY_BASE_S, settings.OUTBOUND_RETRY_MAX_S = 60, 3600
    assert [queue.backoff(n).total_seconds() for n in (1, 2, 3, 4, 10)] == [60, 120, 240, 480, 3600]


def test_5xx_fails_at_once_keeping_the_reply(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls)
    smtp_starttls.handler.fail_rcpt["nobody@example.org"] = "550 5.1.1 No such user here"
    message = queue_outgoing(to=["nobody@example.org"], subject="Hola", text="x", account=account)
    assert deliver_due(pool=pool).failed == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SEND_FAILED
    assert "550 5.1.1 No such user here" in message.status_reason
    assert OutgoingEmail.objects.get(pk=message.pk).last_code == 550


def test_421_closes_and_retries(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls)
    smtp_starttls.handler.fail_data.append("421 4.3.2 Service shutting down")
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    assert deliver_due(pool=pool).retrying == 1
    assert OutgoingEmail.objects.get(pk=message.pk).last_code == 421


def test_partial_recipient_refusal_is_sent_and_noted(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls)
    smtp_starttls.handler.fail_rcpt["gone@example.org"] = "550 5.1.1 Gone"
    message = queue_outgoing(to=["ana@example.org", "gone@example.org"], subject="Hola", text="x", account=account)
    assert deliver_due(pool=pool).sent == 1
    assert smtp_starttls.messages[0].rcpt_tos == ["ana@example.org"]
    assert "gone@example.org" in DeliveryAttempt.objects.get(outgoing=message.pk).reply


def test_connection_refused_is_retried_in_plain_words(make_account: Any, pool: Any) -> None:
    from tests.support.ports import free_port

    account = make_account(None, smtp_port=free_port(), smtp_security="none", smtp_auth=False)
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    assert deliver_due(pool=pool).retrying == 1
    message.refresh_from_db()
    assert "refused the connection" in message.status_reason


def test_wrong_password_fails_in_plain_words_without_hammering(smtp_starttls: Any, make_account: Any,
                                                                 pool: Any) -> None:
    account = make_account(smtp_starttls, password="wrong")
    messages = [queue_outgoing(to=[f"c{n}@example.org"], subject="Hola", text="x", account=account) for n in range(6)]
    stats = deliver_due(pool=pool)
    assert stats.failed == 6 and stats.retrying == 0
    for message in messages:
        message.refresh_from_db()
        assert message.status == MessageStatus.SEND_FAILED
        assert "rejected the login" in message.status_reason
        assert "Correct the account's password" in message.status_reason
    assert OutgoingEmail.objects.filter(state=QueueState.FAILED, last_code=535).count() == 6
    logins = pool.opened
    assert logins <= pool.per_account  # at most one try per connection slot, not one per message
    # More mail for the account soon after: failed at once, not one more login with the same password.
    later = queue_outgoing(to=["later@example.org"], subject="Hola", text="x", account=account)
    assert deliver_due(pool=pool).failed == 1
    assert pool.opened == logins
    assert not smtp_starttls.messages
    # Once the password is corrected (new settings), the requeued message goes out.
    account.set_password("smtp-secret")
    account.save()
    queue.requeue(OutgoingEmail.objects.get(pk=later.pk))
    assert deliver_due(pool=pool).sent == 1


def test_priority_and_scheduled_time(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, default_outgoing=True)
    later = queue_outgoing(to=["a@example.org"], subject="later", text="x", account=account,
                           send_at=timezone.now() + datetime.timedelta(hours=1))
    queue_outgoing(to=["b@example.org"], subject="bulk", text="x", kind="bulk")
    queue_outgoing(to=["c@example.org"], subject="normal", text="x", account=account)
    # one at a time: connections send in parallel, so the order they reach the server is not the claims'
    assert deliver_due(pool=pool, batch=1, limit=1).sent == 1
    assert [m.message["Subject"] for m in smtp_starttls.messages] == ["normal"]
    assert deliver_due(pool=pool, batch=1).sent == 1
    assert [m.message["Subject"] for m in smtp_starttls.messages] == ["normal", "bulk"]
    assert OutgoingEmail.objects.get(pk=later.pk).state == QueueState.PENDING


def test_a_crashed_claim_is_resumed_after_the_lease(smtp_starttls: Any, make_account: Any, pool: Any,
                                                    settings: Any) -> None:
    account = make_account(smtp_starttls)
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    assert queue.claim_due("dead-worker", 10) == [message.pk]  # ...and that worker died here
    assert deliver_due(pool=pool).sent == 0  # still leased to the dead worker
    past = timezone.now() - datetime.timedelta(seconds=settings.OUTBOUND_CLAIM_LEASE_S + 1)
    OutgoingEmail.objects.filter(pk=message.pk).update(claimed_at=past)
    assert deliver_due(pool=pool).sent == 1
    assert len(smtp_starttls.messages) == 1


def test_a_late_worker_cannot_overwrite_a_resumed_message(smtp_starttls: Any, make_account: Any) -> None:
    account = make_account(smtp_starttls)
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    queue.claim_due("slow", 10)
    OutgoingEmail.objects.filter(pk=message.pk).update(claimed_by="other")
    assert queue.record_outcome(message.pk, sent=False, permanent=True, code=550, reply="x", server="",
                                worker="slow") == ""


def test_unconfirmed_sender_is_refused_in_plain_words(smtp_starttls: Any, make_account: Any) -> None:
    account = make_account(smtp_starttls, confirmed=False)
    with pytest.raises(SendRefused, match="has not been confirmed"):
        queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    assert not OutgoingEmail.objects.exists()


def test_a_message_left_sending_is_logged_maybe_sent_and_resent_byte_identical(
        smtp_starttls: Any, make_account: Any, pool: Any, settings: Any) -> None:
    from buzon.outbound import compose

    account = make_account(smtp_starttls)
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    assert queue.claim_due("dead-worker", 10) == [message.pk]
    outgoing = OutgoingEmail.objects.select_related("message__account").get(pk=message.pk)
    data = compose.compose(outgoing).data
    assert queue.mark_sending([(outgoing, data)], "another-worker") == set()  # not its claim: may not send
    assert queue.mark_sending([(outgoing, data)], "dead-worker") == {message.pk}  # ...and that worker died here
    assert OutgoingEmail.objects.get(pk=message.pk).state == QueueState.SENDING
    assert deliver_due(pool=pool).sent == 0  # still leased to the dead worker
    past = timezone.now() - datetime.timedelta(seconds=settings.OUTBOUND_CLAIM_LEASE_S + 1)
    OutgoingEmail.objects.filter(pk=message.pk).update(claimed_at=past)
    assert deliver_due(pool=pool).sent == 1
    assert smtp_starttls.messages[0].data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    log = list(DeliveryAttempt.objects.filter(outgoing=message.pk).values_list("number", "outcome", "reply"))
    assert [(n, o) for n, o, _r in log] == [(1, "unknown"), (2, "sent")]
    assert "may have been delivered" in log[0][2]


@pytest.mark.django_db(transaction=True)
def test_sending_state_is_committed_before_the_transaction(smtp_starttls: Any, make_account: Any,
                                                           pool: Any) -> None:
    """The bytes stored are the very bytes sent, DKIM signature included."""
    from buzon.mailboxes.models import EmailDomain
    from buzon.outbound import signing

    domain = EmailDomain.objects.create(domain_name="example.test")
    signing.generate(domain)
    account = make_account(smtp_starttls, domain=domain)
    message = queue_outgoing(to=["ana@example.org"], subject="Hola", text="x", account=account)
    seen: list[tuple[str, bool]] = []
    submit = pool.submit

    def spy(*args: Any, gate: Any = None, **kwargs: Any) -> Any:
        def checked_gate(data: bytes) -> bool:
            allowed = gate(data)
            # Read on this thread's own database connection, so only committed rows are seen: by the
            # time the gate opens, the row says sending and holds the bytes about to be sent.
            row = OutgoingEmail.objects.filter(pk=message.pk).values_list("state", "mime").first()
            connection.close()  # this thread's own connection
            seen.append((row[0], row[1] is not None and bytes(row[1]) == data) if row else ("", False))
            return allowed
        return submit(*args, gate=checked_gate, **kwargs)

    pool.submit = spy
    assert deliver_due(pool=pool).sent == 1
    assert seen == [(QueueState.SENDING, True)]
    stored = bytes(OutgoingEmail.objects.get(pk=message.pk).mime)
    assert stored.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert smtp_starttls.messages[0].data.replace(b"\r\n", b"\n") == stored.replace(b"\r\n", b"\n")


def test_a_queued_message_shows_its_sender_name_and_sending_leaves_it_as_it_was(
        smtp_plain: Any, make_account: Any, pool: Any, django_user_model: Any) -> None:
    """The From name is known when the message is queued: the outbox and search show it at once, and
    the message is not indexed again for search when it is sent (its sender columns do not change)."""
    import email
    from email.policy import default

    agent = django_user_model.objects.create_superuser("ana", "ana@tienda.test", "x-Pass-1234567",
                                                       first_name="Ana", last_name="Pérez")
    account = make_account(smtp_plain, smtp_security="none", display_name="Tienda Norte")
    message = queue_outgoing(to=["cliente@example.org"], subject="Pedido", text="Enviado.", account=account,
                             user=agent)
    queued = type(message).objects.get(pk=message.pk)
    assert (queued.from_name, queued.from_address) == ("Ana Pérez via Tienda Norte", account.email_address)
    assert deliver_due(pool=pool).sent == 1
    sent = type(message).objects.get(pk=message.pk)
    assert (sent.status, sent.from_name, sent.from_address) == (MessageStatus.SENT, queued.from_name,
                                                                queued.from_address)
    received = email.message_from_bytes(smtp_plain.messages[0].data, policy=default)  # as a mail client reads it
    assert received["From"].addresses[0].display_name == "Ana Pérez via Tienda Norte"


def test_the_sender_name_is_written_in_the_language_of_the_person_sending(
        smtp_plain: Any, make_account: Any, pool: Any, django_user_model: Any) -> None:
    """"Marta vía Tienda Norte" for an agent who chose Spanish, "Tom via Tienda Norte" for one who
    chose English, whatever the worker's language: queued, shown and in the From header alike."""
    import email
    from email.policy import default

    from django.utils import translation

    from buzon.core.models import UserPreferences

    account = make_account(smtp_plain, smtp_security="none", display_name="Tienda Norte")
    sent = {}
    for username, first, language in (("marta", "Marta", "es"), ("tom", "Tom", "en")):
        agent = django_user_model.objects.create_superuser(username, f"{username}@tienda.test", "x-Pass-1234567",
                                                           first_name=first)
        UserPreferences.objects.create(user=agent, language=language)
        with translation.override("en" if language == "es" else "es"):  # the request's language is not theirs
            message = queue_outgoing(to=["cliente@example.org"], subject=f"Pedido {first}", text="Enviado.",
                                     account=account, user=agent)
        sent[first] = type(message).objects.get(pk=message.pk).from_name
    assert sent == {"Marta": "Marta vía Tienda Norte", "Tom": "Tom via Tienda Norte"}
    with translation.override("en"):
        assert deliver_due(pool=pool).sent == 2
    received = {m["Subject"]: m["From"].addresses[0].display_name  # as a mail client reads the header
                for m in (email.message_from_bytes(x.data, policy=default) for x in smtp_plain.messages)}
    assert received == {"Pedido Marta": "Marta vía Tienda Norte", "Pedido Tom": "Tom via Tienda Norte"}


def test_a_long_sender_name_is_kept_to_its_field_queued_and_sent_alike(
        smtp_plain: Any, make_account: Any, pool: Any, django_user_model: Any) -> None:
    agent = django_user_model.objects.create_superuser("bea", "bea@tienda.test", "x-Pass-1234567",
                                                       first_name="Beatriz " * 18, last_name="  Gómez  ")
    account = make_account(smtp_plain, smtp_security="none", display_name="Tienda  Norte " * 14)
    message = queue_outgoing(to=["cliente@example.org"], subject="Pedido", text="Enviado.", account=account,
                             user=agent)
    queued = type(message).objects.get(pk=message.pk).from_name
    assert len(queued) == 320 and "  " not in queued  # as a mail client reads the From header back
    assert deliver_due(pool=pool).sent == 1
    assert type(message).objects.get(pk=message.pk).from_name == queued


def test_a_task_queue_that_cannot_take_a_helper_never_stops_delivery(
        smtp_plain: Any, make_account: Any, pool: Any, monkeypatch: Any, settings: Any) -> None:
    """Asking another worker to help is a bonus: Redis restarting must not leave the claimed mail to the lease."""
    from buzon.outbound import sender

    settings.OUTBOUND_BATCH = 2
    account = make_account(smtp_plain, smtp_security="none")
    for n in range(5):
        queue_outgoing(to=[f"cliente{n}@example.org"], subject=str(n), text="x", account=account)
    asked: list[int] = []

    def unreachable(message_id: int, run_after: Any = None) -> None:
        asked.append(message_id)
        raise ConnectionError("Redis is restarting")

    real = sender.import_string
    backend = type("Backend", (), {"supports_defer": True})()
    monkeypatch.setattr(sender, "import_string", lambda path: type("Task", (), {"get_backend": lambda self: backend})()
                        if path == settings.OUTBOUND_TASK else real(path))
    monkeypatch.setattr(sender, "enqueue_delivery", unreachable)
    assert deliver_due(pool=pool).sent == 5
    assert len(asked) == 1 and len(smtp_plain.messages) == 5

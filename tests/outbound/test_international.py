"""International addresses (RFC 5890, 6531, 6532) end to end against aiosmtpd, with and without SMTPUTF8.

The bytes the sink receives are checked: the envelope (MAIL FROM parameters, RCPT TO addresses)
and the headers, ASCII with A-label domains for a server without SMTPUTF8, UTF-8 for one with it.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from email import message_from_string
from email.policy import SMTPUTF8
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from buzon.messages.models import Message, MessageStatus
from buzon.messages.outbox import SendRefused, queue_outgoing, split_addresses
from buzon.outbound import addresses
from buzon.outbound.models import AttemptOutcome, DeliveryAttempt, OutgoingEmail, QueueState
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import transmit
from tests.support.certs import TestCerts
from tests.support.smtpd import PipeliningHandler, SMTPServer

pytestmark = pytest.mark.django_db


def _sink(certs: TestCerts, smtputf8: bool) -> SMTPServer:
    server = SMTPServer(certs, mode="plain", require_auth=False)
    server.handler = server.controller.handler = PipeliningHandler()
    server.controller.SMTP_kwargs["enable_SMTPUTF8"] = smtputf8
    return server.start()


@pytest.fixture
def utf8_sink(test_certs: TestCerts) -> Iterator[SMTPServer]:
    server = _sink(test_certs, smtputf8=True)
    yield server
    server.stop()


@pytest.fixture
def ascii_sink(test_certs: TestCerts) -> Iterator[SMTPServer]:
    server = _sink(test_certs, smtputf8=False)
    yield server
    server.stop()


def _headers(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


# --- addresses.parse -------------------------------------------------------------------------------------


def test_unicode_domain_is_sent_as_idna2008_a_labels() -> None:
    box = addresses.parse("Ana Pérez <ana@Correos.España>")
    assert (box.name, box.local, box.domain, box.ascii_domain) == ("Ana Pérez", "ana", "correos.españa",
                                                                   "correos.xn--espaa-rta")
    assert box.envelope == "ana@correos.xn--espaa-rta" and not box.utf8
    assert box.header(utf8=False) == "=?utf-8?q?Ana_P=C3=A9rez?= <ana@correos.xn--espaa-rta>"
    assert box.header(utf8=True) == "Ana Pérez <ana@correos.españa>"
    # IDNA 2008, not Python's IDNA 2003 codec, which would turn faß.de into fass.de (another domain).
    assert addresses.parse("x@faß.de").envelope == "x@xn--fa-hia.de"
    assert "faß.de".encode("idna") == b"fass.de"


def test_non_ascii_local_part_needs_smtputf8_and_has_no_ascii_form() -> None:
    box = addresses.parse("josé@ejemplo.es")
    assert box.utf8 and box.envelope == "josé@ejemplo.es"
    assert box.header(utf8=True) == "josé@ejemplo.es"
    with pytest.raises(addresses.AddressError, match="josé@ejemplo.es"):
        box.header(utf8=False)
    assert addresses.parse("用户@例え.テスト").envelope == "用户@xn--r8jz45g.xn--zckzah"  # IANA's IDN test names


@pytest.mark.parametrize(("typed", "why"), [
    ("ana@-correos.es", "-correos.es is not a valid domain"),
    ("ana@xn--zz.es", "xn--zz.es is not a valid domain"),
    ("ana@correos..es", "is not a valid domain"),
    ("jo sé@ejemplo.es", "is not a valid email address"),
    ("jo\u200bsé@ejemplo.es", "the part before the @ has characters"),  # a zero-width space hides in it
    ("josé..x@ejemplo.es", "the part before the @ has characters"),
    ("ñ" * 33 + "@ejemplo.es", "longer than 64 bytes"),
    ("ana@ejemplo.es\r\nBcc: x@evil.example", "is not a valid email address"),
    ("ana", "ana is not a valid email address"),
    ("ana@ejemplo.es, luis@ejemplo.es", "is not a valid email address"),
])
def test_addresses_that_can_never_be_sent_are_refused_in_plain_words(typed: str, why: str) -> None:
    with pytest.raises(addresses.AddressError, match=why):
        addresses.parse(typed)


def test_split_keeps_quoted_names_whole() -> None:
    assert split_addresses('"Pérez, Ana" <ana@correos.españa>; josé@ejemplo.es,') == [
        '"Pérez, Ana" <ana@correos.españa>', "josé@ejemplo.es"]


# --- the whole queue against aiosmtpd ---------------------------------------------------------------------


def test_smtputf8_server_gets_utf8_envelope_and_headers_pipelined(utf8_sink: SMTPServer, make_account: Any,
                                                                  pool: Any) -> None:
    account = make_account(utf8_sink, smtp_security="none", smtp_auth=False, display_name="Soporte Ñandú")
    message = queue_outgoing(to=["José Núñez <josé@ejemplo.es>", "ana@correos.españa"], cc=["bob@example.org"],
                             bcc=["ñoño@münchen.de"], subject="Añadido", text="Hola", account=account)
    stats = deliver_due(pool=pool)
    assert stats.sent == 1, OutgoingEmail.objects.get(pk=message.pk).last_reply
    received = utf8_sink.messages[0]
    assert received.rcpt_tos == ["josé@ejemplo.es", "ana@correos.xn--espaa-rta", "bob@example.org",
                                 "ñoño@xn--mnchen-3ya.de"]
    assert "SMTPUTF8" in utf8_sink.handler.mail_options[0]
    head = _headers(received.data)
    head.decode("utf-8")  # RFC 6532: the headers are UTF-8, not RFC 2047 words, around the addresses
    assert "To: José Núñez <josé@ejemplo.es>, ana@correos.españa".encode() in head
    assert b"Cc: bob@example.org" in head
    assert "ñoño".encode() not in head  # Bcc stays out of the headers
    assert "From: Soporte Ñandú <sender@example.test>".encode() in head
    parsed = message_from_string(received.data.decode("utf-8"), policy=SMTPUTF8)
    assert parsed["Subject"] == "Añadido" and parsed["From"].addresses[0].display_name == "Soporte Ñandú"
    assert [a.username for a in parsed["To"].addresses] == ["josé", "ana"]
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_without_smtputf8_idn_domains_go_as_a_labels_in_ascii_headers(ascii_sink: SMTPServer, make_account: Any,
                                                                      pool: Any) -> None:
    account = make_account(ascii_sink, smtp_security="none", smtp_auth=False)
    queue_outgoing(to=["Ana Pérez <ana@correos.españa>"], subject="x", text="Hola", account=account)
    assert deliver_due(pool=pool).sent == 1
    received = ascii_sink.messages[0]
    assert received.rcpt_tos == ["ana@correos.xn--espaa-rta"]
    assert "SMTPUTF8" not in ascii_sink.handler.mail_options[0]
    head = _headers(received.data)
    assert head.isascii()
    assert b"To: =?utf-8?q?Ana_P=C3=A9rez?= <ana@correos.xn--espaa-rta>" in head


def test_without_smtputf8_a_non_ascii_local_part_fails_at_once(ascii_sink: SMTPServer, make_account: Any,
                                                               pool: Any) -> None:
    account = make_account(ascii_sink, smtp_security="none", smtp_auth=False)
    message = queue_outgoing(to=["josé@ejemplo.es", "ana@example.org"], subject="x", text="Hola",
                             account=account)
    stats = deliver_due(pool=pool)
    assert (stats.sent, stats.failed, stats.retrying) == (0, 1, 0)
    outgoing = OutgoingEmail.objects.get(pk=message.pk)
    assert outgoing.state == QueueState.FAILED and outgoing.attempts == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SEND_FAILED
    assert "josé@ejemplo.es" in message.status_reason and "SMTPUTF8" in message.status_reason
    assert "127.0.0.1" in message.status_reason or "localhost" in message.status_reason
    assert list(DeliveryAttempt.objects.filter(outgoing=outgoing).values_list("outcome", flat=True)) == [
        AttemptOutcome.FAILED]
    assert ascii_sink.messages == [] and ascii_sink.handler.mail_options == []  # nothing was sent at all
    assert deliver_due(pool=pool).sent == 0  # and it is not tried again


def test_pipelining_with_smtputf8_is_still_two_writes(utf8_sink: SMTPServer) -> None:
    client = smtplib.SMTP("127.0.0.1", utf8_sink.port, timeout=10)
    client.ehlo()
    writes: list[bytes] = []
    send = client.send

    def counted(data: Any) -> None:
        writes.append(data if isinstance(data, bytes) else data.encode())
        send(data)

    client.send = counted  # type: ignore[method-assign]
    data = "From: josé@ejemplo.es\r\nTo: ana@correos.españa\r\nSubject: x\r\n\r\nhola\r\n".encode()
    try:
        outcome = transmit(client, "josé@ejemplo.es", ["ana@correos.xn--espaa-rta", "luis@example.org"], data,
                           utf8_addresses=["josé@ejemplo.es"])
        assert outcome.sent, outcome.reply
        assert len(writes) == 2  # envelope and DATA in one write, then the content
        assert writes[0] == (f"MAIL FROM:<josé@ejemplo.es> SIZE={len(data)} SMTPUTF8\r\n"
                             "RCPT TO:<ana@correos.xn--espaa-rta>\r\nRCPT TO:<luis@example.org>\r\nDATA\r\n").encode()
        # The next, ASCII, message on the same connection goes without the parameter.
        assert transmit(client, "a@example.org", ["b@example.org"], b"Subject: y\r\n\r\nz\r\n").sent
        assert [[o for o in options if not o.startswith("SIZE=")] for options in utf8_sink.handler.mail_options
                ] == [["SMTPUTF8"], []]
        assert utf8_sink.messages[0].mail_from == "josé@ejemplo.es"
        assert utf8_sink.messages[0].data == data
    finally:
        client.quit()


def test_serial_smtputf8_without_pipelining(test_certs: TestCerts) -> None:
    server = SMTPServer(test_certs, mode="plain", require_auth=False)
    server.controller.SMTP_kwargs["enable_SMTPUTF8"] = True
    server.start()
    client = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
    try:
        client.ehlo()
        assert not client.has_extn("pipelining") and client.has_extn("smtputf8")
        data = "From: josé@ejemplo.es\r\nSubject: x\r\n\r\nhola\r\n".encode()
        outcome = transmit(client, "josé@ejemplo.es", ["zoë@example.org"], data,
                           utf8_addresses=["josé@ejemplo.es", "zoë@example.org"])
        assert outcome.sent, outcome.reply
        assert (server.messages[0].mail_from, server.messages[0].rcpt_tos) == ("josé@ejemplo.es", ["zoë@example.org"])
    finally:
        client.quit()
        server.stop()


def test_a_non_ascii_sender_address_needs_smtputf8_too(ascii_sink: SMTPServer, utf8_sink: SMTPServer,
                                                       make_account: Any, pool: Any) -> None:
    account = make_account(utf8_sink, address="josé@ejemplo.es", smtp_security="none", smtp_auth=False)
    queue_outgoing(to=["ana@example.org"], subject="x", text="Hola", account=account)
    assert deliver_due(pool=pool).sent == 1
    received = utf8_sink.messages[0]
    assert received.mail_from == "josé@ejemplo.es" and "SMTPUTF8" in utf8_sink.handler.mail_options[0]
    assert "From: Soporte <josé@ejemplo.es>".encode() in _headers(received.data)
    other = make_account(ascii_sink, address="zoë@ejemplo.es", smtp_security="none", smtp_auth=False,
                         default_outgoing=False)
    failed = queue_outgoing(to=["ana@example.org"], subject="x", text="Hola", account=other)
    assert deliver_due(pool=pool).failed == 1
    failed.refresh_from_db()
    assert "zoë@ejemplo.es" in failed.status_reason and ascii_sink.messages == []


def test_dkim_signs_an_idn_from_domain_with_its_a_labels(utf8_sink: SMTPServer, make_account: Any,
                                                         pool: Any) -> None:
    import dkim

    from buzon.mailboxes.models import EmailDomain
    from buzon.outbound import signing

    domain = EmailDomain.objects.create(domain_name="correos.españa")
    key = signing.generate(domain)
    account = make_account(utf8_sink, address="info@correos.españa", smtp_security="none", smtp_auth=False,
                           domain=domain)
    queue_outgoing(to=["josé@ejemplo.es"], subject="Firmado", text="Hola", account=account)
    assert deliver_due(pool=pool).sent == 1
    data = utf8_sink.messages[0].data
    assert b"d=correos.xn--espaa-rta;" in re.sub(rb"\s", b"", _headers(data))
    record = signing.record_value(key).encode()

    from buzon.outbound import deliverability

    assert [r.name for r in deliverability.expected_records(domain)] == [
        "correos.xn--espaa-rta", f"{key.selector}._domainkey.correos.xn--espaa-rta", "_dmarc.correos.xn--espaa-rta"]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{key.selector}._domainkey.correos.xn--espaa-rta.".encode()
        return record

    assert dkim.verify(data, dnsfunc=dns)


# --- refused before queueing ------------------------------------------------------------------------------


def test_queue_refuses_an_unsendable_address_naming_it(make_account: Any) -> None:
    account = make_account()
    with pytest.raises(SendRefused, match="ana@-correos.es is not a valid email address"):
        queue_outgoing(to=["luis@example.org", "ana@-correos.es"], subject="x", text="y", account=account)
    assert not Message.objects.exists() and not OutgoingEmail.objects.exists()
    # A non-ASCII local part is accepted here: whether it can go depends on the server (SMTPUTF8).
    assert queue_outgoing(to=["josé@ejemplo.es"], subject="x", text="y", account=account).pk
    typed = queue_outgoing(to='"Pérez, Ana" <ana@correos.españa>; luis@example.org', subject="x", text="y",
                           account=account)
    assert typed.to == ['"Pérez, Ana" <ana@correos.españa>', "luis@example.org"]


def test_api_answers_400_naming_the_address(make_account: Any) -> None:
    user = get_user_model().objects.create_user("agent", "agent@example.org", "pw", is_staff=True)
    api = APIClient()
    api.force_authenticate(user)
    account = make_account()
    response = api.post("/api/v1/messages/send/", {"to": ["ana@correos..españa"], "subject": "s", "text": "x",
                                                   "account": account.pk}, format="json")
    assert response.status_code == 400
    assert "ana@correos..españa is not a valid email address" in response.json()["to"][0]  # keyed by its field
    assert not OutgoingEmail.objects.exists()
    response = api.post("/api/v1/messages/send/", {"to": ["josé@correos.españa"], "subject": "s", "text": "x",
                                                   "account": account.pk}, format="json")
    assert response.status_code == 202, response.content


def test_compose_form_names_the_address(make_account: Any) -> None:
    user = get_user_model().objects.create_user("agent", "agent@example.org", "pw", is_staff=True)
    client = Client()
    client.force_login(user)
    account = make_account()
    response = client.post("/compose/", {"account": account.pk, "to": "bob@example.org; jo sé@ejemplo.es",
                                         "subject": "s", "text": "x"})
    assert response.status_code == 200
    assert "jo sé@ejemplo.es is not a valid email address" in response.content.decode()
    assert not Message.objects.exists()
    typed = '"Pérez, Ana" <ana@correos.españa>, josé@ejemplo.es'
    response = client.post("/compose/", {"account": account.pk, "to": typed, "subject": "s", "text": "x"})
    assert response.status_code == 302
    assert Message.objects.get().to == ['"Pérez, Ana" <ana@correos.españa>', "josé@ejemplo.es"]


def test_utf8_message_is_copied_to_the_sent_folder_byte_for_byte(test_certs: TestCerts, dovecot: Any,
                                                                  make_account: Any, pool: Any, settings: Any,
                                                                  django_capture_on_commit_callbacks: Any) -> None:
    from buzon.outbound.models import OutgoingEmail as Outgoing

    address = dovecot.add_user(password="smtp-secret")
    smtp = SMTPServer(test_certs, mode="starttls", users={address: "smtp-secret"})
    smtp.controller.SMTP_kwargs["enable_SMTPUTF8"] = True
    smtp.start()
    try:
        account = make_account(smtp, address=address, incoming_enabled=True, incoming_protocol="imap",
                               incoming_host="localhost", incoming_port=dovecot.imap_port,
                               incoming_security="starttls", append_to_sent=True)
        message = queue_outgoing(to="José <josé@ejemplo.es>", subject="Año", text="x", account=account)
        settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                        "QUEUES": settings.TASK_QUEUES}}
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver_due(pool=pool).sent == 1
        assert smtp.messages[0].rcpt_tos == ["josé@ejemplo.es"]
        assert dovecot.message_count(address, "Sent") == 1
        stored = next((dovecot.maildir(address, "Sent") / "cur").iterdir()).read_bytes()
        mime = bytes(Outgoing.objects.get(pk=message.pk).mime)
        assert "To: José <josé@ejemplo.es>".encode() in mime
        assert stored.replace(b"\r\n", b"\n") == mime.replace(b"\r\n", b"\n")
    finally:
        smtp.stop()


@pytest.mark.parametrize("utf8", [False, True])
def test_long_address_headers_fold_and_read_back_exactly(make_account: Any, utf8: bool) -> None:
    from email import message_from_bytes
    from email.policy import default

    from buzon.outbound import compose

    account = make_account(display_name="Soporte Técnico, Madrid")
    local = "josé" if utf8 else "ana"
    to = [f'"Núñez Pérez, {local} {n}" <{local}{n}@correos.españa>' for n in range(6)]
    message = queue_outgoing(to=to, subject="Añadido " * 12, text="x", account=account)
    composed = compose.compose(OutgoingEmail.objects.get(pk=message.pk), None, "")
    head = _headers(composed.data)
    assert bool(composed.utf8_addresses) is utf8 and head.isascii() is not utf8
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    parsed = (message_from_string(composed.data.decode("utf-8"), policy=SMTPUTF8) if utf8
              else message_from_bytes(composed.data, policy=default))
    domain = "correos.españa" if utf8 else "correos.xn--espaa-rta"
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        (f"Núñez Pérez, {local} {n}", f"{local}{n}@{domain}") for n in range(6)]
    assert parsed["From"].addresses[0].display_name == "Soporte Técnico, Madrid"
    assert parsed["Subject"].rstrip() == ("Añadido " * 12).rstrip()
    assert composed.recipients == [f"{local}{n}@correos.xn--espaa-rta" for n in range(6)]


def test_an_unsendable_address_already_queued_fails_at_once_without_retries(ascii_sink: SMTPServer,
                                                                             make_account: Any, pool: Any) -> None:
    account = make_account(ascii_sink, smtp_security="none", smtp_auth=False)
    message = queue_outgoing(to=["ana@example.org"], subject="x", text="Hola", account=account)
    Message.objects.filter(pk=message.pk).update(to=["ana@correos..españa"])  # queued before addresses were checked
    stats = deliver_due(pool=pool)
    assert (stats.sent, stats.failed, stats.retrying) == (0, 1, 0)
    message.refresh_from_db()
    assert message.status == MessageStatus.SEND_FAILED
    assert message.status_reason == ("The message was not sent: ana@correos..españa is not a valid email address: "
                                     "correos..españa is not a valid domain.")
    assert OutgoingEmail.objects.get(pk=message.pk).attempts == 1 and ascii_sink.messages == []

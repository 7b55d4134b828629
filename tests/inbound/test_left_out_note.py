"""Attachments the account's limit left out: named to each reader in their language, beside the message,
never written into the sender's text; bodies stored with the old English note are cleaned once."""

from __future__ import annotations

import hashlib
import importlib
import json
from email.message import EmailMessage

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client

from buzon.inbound import pipeline
from buzon.messages.models import Direction, Message, MessageStatus
from buzon.sync.models import RawMessage
from buzon.sync.truncate import truncate_bytes
from tests.inbound.helpers import support_account

pytestmark = pytest.mark.django_db
migration = importlib.import_module("buzon.inbound.migrations.0003_attachment_notes_as_data")
OLD_NOTE = ("Attachments left out because the message is larger than the account's attachment limit:\n"
            "- factura (2).pdf (application/pdf, 395 KB)\n- (no name) (image/png, 12 KB)")


def _big_mail(html: bool = False) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "Ana <ana@customer.test>", "support@shop.test", "Factura"
    message["Message-ID"] = "<big@customer.test>"
    if html:
        message.set_content("<p>Adjunto la <b>factura</b>.</p>", subtype="html")
    else:
        message.set_content("Adjunto la factura.\n")
    message.add_attachment(b"%PDF" + b"x" * 300_000, maintype="application", subtype="pdf", filename="factura.pdf")
    return message.as_bytes()


def _store_truncated(data: bytes, note: str, account) -> RawMessage:
    return RawMessage.objects.create(
        account=account, account_address=account.email_address, folder="INBOX", uidvalidity=1, uid=1, data=data,
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), truncated=True, truncation_note=note)


def _reader(language: str) -> Client:
    user = User.objects.get_or_create(username=f"staff-{language}", defaults={"is_staff": True})[0]
    browser = Client()
    browser.force_login(user)
    browser.cookies["django_language"] = language
    return browser


def test_the_note_is_not_in_the_body_and_each_reader_reads_it_in_their_language():
    account = support_account(append_to="")
    cut = truncate_bytes(_big_mail(), 50_000)
    assert cut is not None
    data, note = cut
    assert b"Attachments left out" in data  # the stored original still says so, for anyone opening it
    raw = _store_truncated(data, note, account)
    assert pipeline.run_pipeline(raw.pk) == "processed"
    message = Message.objects.get(raw=raw)
    assert message.text.strip() == "Adjunto la factura."
    assert not message.attachments.exists()

    spanish = _reader("es").get(f"/inbox/{message.pk}/").content.decode()
    assert "Adjuntos omitidos porque el mensaje supera el límite de adjuntos de la cuenta:" in spanish
    assert "- factura.pdf (application/pdf, " in spanish and "left out" not in spanish
    english = _reader("en").get(f"/inbox/{message.pk}/").content.decode()
    assert "Attachments left out because the message is larger than the account&#x27;s attachment limit:" in english

    api = _reader("es").get(f"/api/v1/messages/{message.pk}/").json()
    assert api["truncated"] is True and api["truncation_note"].startswith("Adjuntos omitidos")
    assert [(item["name"], item["type"]) for item in api["left_out"]] == [("factura.pdf", "application/pdf")]
    assert "omitidos" not in api["text"] and "left out" not in api["text"]


def test_a_sender_cannot_forge_the_note_or_hide_text_with_it():
    account = support_account(append_to="")
    forged = (b"From: x@customer.test\r\nTo: support@shop.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
              b'Content-Type: multipart/mixed; boundary="buzon-truncated-0123456789abcdef"\r\n\r\n'
              b'--buzon-truncated-0123456789abcdef\r\nContent-Type: text/plain; charset="utf-8"\r\n'
              b"Content-Transfer-Encoding: 8bit\r\nContent-Disposition: inline\r\n\r\nVisible text\r\n"
              b"--buzon-truncated-0123456789abcdef--\r\n")
    raw = RawMessage.objects.create(account=account, account_address=account.email_address, folder="INBOX",
                                    uidvalidity=1, uid=2, data=forged, size=len(forged),
                                    sha256=hashlib.sha256(forged).hexdigest())
    pipeline.run_pipeline(raw.pk)
    message = Message.objects.get(raw=raw)
    assert message.text.strip() == "Visible text"  # not truncated by Buzón: nothing is taken for a note
    page = _reader("en").get(f"/inbox/{message.pk}/").content.decode()
    assert 'id="left-out"' not in page


def test_old_notes_become_data_and_leave_the_bodies_they_were_written_into():
    account = support_account(append_to="")

    def stored(text: str, html: str = "", note: str = OLD_NOTE, truncated: bool = True, uid: int = 0) -> Message:
        data = f"Subject: s{uid}\r\n\r\nx".encode()
        raw = RawMessage.objects.create(account=account, account_address="support@shop.test", folder="INBOX",
                                        uidvalidity=1, uid=uid, data=data, size=len(data), sha256=str(uid),
                                        truncated=truncated, truncation_note=note)
        return Message.objects.create(direction=Direction.INCOMING, status=MessageStatus.PROCESSED, raw=raw,
                                      account=account, text=text, html=html)

    plain = stored("Adjunto la factura.\n\n" + OLD_NOTE, uid=1)
    html_only = stored(OLD_NOTE, html="<p>Adjunto la <b>factura</b>.</p>", uid=2)
    spanish = stored("Hola\n\n" + "Adjuntos omitidos porque el mensaje supera el límite de adjuntos de la cuenta:\n"
                     "- a.zip (application/zip, 1 KB)",
                     note="Adjuntos omitidos porque el mensaje supera el límite de adjuntos de la cuenta:\n"
                          "- a.zip (application/zip, 1 KB)", uid=3)
    # Not Buzón's: the same words typed by a sender into an untruncated mail, and a note edited by hand.
    typed = stored("Mire:\n\n" + OLD_NOTE, note="", truncated=False, uid=4)
    odd = stored("Texto\n\n" + OLD_NOTE + "\nmás", note=OLD_NOTE + "\nmás", uid=5)

    migration.forwards(apps, None)

    for message in (plain, html_only, spanish, typed, odd):
        message.refresh_from_db()
        message.raw.refresh_from_db()
    assert plain.text == "Adjunto la factura."
    assert json.loads(plain.raw.truncation_note) == [
        {"name": "factura (2).pdf", "type": "application/pdf", "size": 395 * 1024},
        {"name": "", "type": "image/png", "size": 12 * 1024}]
    assert "factura" in html_only.text and "left out" not in html_only.text
    assert spanish.text == "Hola" and json.loads(spanish.raw.truncation_note)[0]["name"] == "a.zip"
    assert typed.text.endswith(OLD_NOTE) and odd.text.endswith("más") and odd.raw.truncation_note.endswith("más")
    migration.forwards(apps, None)  # twice changes nothing
    plain.refresh_from_db()
    assert plain.text == "Adjunto la factura."

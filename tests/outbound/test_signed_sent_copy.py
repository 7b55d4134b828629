"""X-Buzon-Ref is signed: only Buzón's own sent copies are recognised as such.

A stranger's mail carrying a guessed (or old-style, unsigned) X-Buzon-Ref is imported as normal
mail and changes no sent message, one by one and in bulk; Buzón's own copy in the account's Sent
folder (appended by append_to_sent to a real Dovecot, synced back) is still recognised. A ref
written before refs were signed is believed only for a copy read from the sending account's own
Sent folder (buzon.inbound.steps.deduplicate.own_sent_copy).
"""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest

from buzon.inbound import batch, pipeline
from buzon.inbound.steps import deduplicate
from buzon.messages import targets
from buzon.messages.models import Direction, Message, MessageStatus
from buzon.messages.outbox import queue_outgoing
from buzon.outbound.models import OutgoingEmail
from buzon.outbound.sender import deliver_due
from buzon.outbound.sent_folder import USUAL_NAMES
from buzon.sync.models import RawMessage
from tests.inbound.helpers import mail, store_raw, support_account
from tests.sync.helpers import sync

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("bulk", [False, True])
def test_a_forged_ref_is_normal_mail_and_buzons_own_sent_copy_is_recognised(
        smtp_starttls: Any, dovecot: Any, make_account: Any, pool: Any, settings: Any,
        django_capture_on_commit_callbacks: Any, bulk: bool) -> None:
    address = dovecot.add_user(password="smtp-secret")
    smtp_starttls.users[address] = "smtp-secret"
    account = make_account(smtp_starttls, address=address, incoming_enabled=True, incoming_protocol="imap",
                           incoming_host="localhost", incoming_port=dovecot.imap_port, incoming_security="starttls",
                           append_to_sent=True, folders=["INBOX", "Sent"], create_customer_if_not_found=True)
    message = queue_outgoing(to="c@example.org", subject="Su pedido", text="Enviado hoy.", account=account)
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due(pool=pool)
    sent = Message.objects.get(pk=message.pk)
    assert sent.status == MessageStatus.SENT and dovecot.message_count(address, "Sent") == 1
    header = message_from_bytes(bytes(OutgoingEmail.objects.get(pk=message.pk).mime),
                                policy=policy.default)["X-Buzon-Ref"]
    assert header == f"m={sent.pk}-{targets.ref_tag(sent.pk)}"
    # Strangers write to the inbox with guesses: the bare id, a made-up tag, an old-style ref.
    guesses = [f"m={sent.pk}", f"m={sent.pk}-{'a' * targets.REF_TAG_LENGTH}", f"m={sent.pk}; [#T-1]"]
    for number, guess in enumerate(guesses):
        dovecot.deliver(address, mail(sender=f"extrano{number}@outside.test", to=address,
                                      subject=f"Adivino {number}", message_id=f"<forged-{number}@outside.test>",
                                      headers={"X-Buzon-Ref": guess}))
    sync(account)
    raws = list(RawMessage.objects.filter(account=account).order_by("id"))
    assert sorted(raw.folder for raw in raws) == ["INBOX", "INBOX", "INBOX", "Sent"]
    if bulk:
        batch.run_batch([raw.pk for raw in raws])
    else:
        for raw in raws:
            pipeline.run_pipeline(raw.pk)
    copy = next(raw for raw in raws if raw.folder == "Sent")
    copy.refresh_from_db()
    assert copy.status == RawMessage.Status.PROCESSED and str(sent.pk) in copy.status_reason, copy.status_reason
    incoming = Message.objects.filter(direction=Direction.INCOMING, account=account)
    assert sorted(incoming.values_list("subject", flat=True)) == ["Adivino 0", "Adivino 1", "Adivino 2"]
    assert sorted(incoming.values_list("from_address", flat=True)) == [
        "extrano0@outside.test", "extrano1@outside.test", "extrano2@outside.test"]
    assert not incoming.filter(subject="Su pedido").exists()  # Buzón's own copy was not imported
    sent.refresh_from_db()
    assert sent.provider_message_id == "" and sent.status == MessageStatus.SENT  # no guess changed it


def test_an_unsigned_ref_counts_only_from_the_sending_accounts_sent_folder() -> None:
    account = support_account(email_address="support@shop.test")
    other = support_account(email_address="ventas@shop.test")
    sent = Message.objects.create(direction=Direction.OUTGOING, status=MessageStatus.SENT, account=account,
                                  message_id="<buzon-9@shop.test>", subject="Pedido", to=["ana@customer.test"])
    old_ref = {"X-Buzon-Ref": f"m={sent.pk}"}
    # In the inbox, or in another account's Sent folder: anyone's text, imported as mail.
    inbox = store_raw(mail(sender="x@outside.test", message_id="<x1@outside.test>", headers=old_ref), account)
    elsewhere = store_raw(mail(sender="support@shop.test", message_id="<x2@provider.test>", headers=old_ref),
                          other, folder="Sent")
    assert pipeline.run_pipeline(inbox.pk) != "duplicate"
    assert pipeline.run_pipeline(elsewhere.pk) != "duplicate"
    sent.refresh_from_db()
    assert sent.provider_message_id == ""
    # The sending account's own Sent folder: a copy of mail sent before refs were signed.
    own = store_raw(mail(sender="support@shop.test", message_id="<rewritten@provider.test>", headers=old_ref),
                    account, folder="Sent Items")
    assert pipeline.run_pipeline(own.pk) == "duplicate"
    sent.refresh_from_db()
    assert sent.provider_message_id == "<rewritten@provider.test>"


def test_the_sent_folder_names_are_those_buzon_appends_to() -> None:
    assert deduplicate.SENT_FOLDER_NAMES == {name.lower() for name in USUAL_NAMES}

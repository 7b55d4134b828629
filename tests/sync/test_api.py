"""GET /api/v1/messages/ lists what the sync brought in; /raw/ gives the exact bytes back."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from buzon.inbound.pipeline import run_pipeline
from buzon.messages.models import Message
from buzon.sync.models import RawMessage
from buzon.sync.progress import account_progress
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    # An administrator: store-less accounts' mail is not every signed-in user's (buzon.crm.roles).
    reader = get_user_model().objects.create_user("reader", password="x-long-password", is_staff=True)
    client.force_authenticate(reader)
    return client


def test_messages_list_detail_and_raw(dovecot, api):
    account = make_account(dovecot, folders=["INBOX", "Ventas"])
    other = make_account(dovecot)
    mail = make_mail(1, html=True)
    dovecot.deliver(account.email_address, mail, folder="Ventas", seen=True)
    dovecot.deliver(other.email_address, make_mail(2))
    sync(account, other)
    for raw in RawMessage.objects.all():
        run_pipeline(raw.pk)  # what the worker does with each enqueued task

    listing = api.get(f"/api/v1/messages/?account={account.pk}").json()
    assert len(listing["results"]) == 1
    item = listing["results"][0]
    assert item["account"] == account.pk and item["folder"] == "Ventas"
    assert item["from"] == "Sender 1 <sender1@example.test>" and item["subject"] == "Message 1"
    assert item["size"] == len(mail) and "\\Seen" in item["flags"]
    assert item["message_id"].startswith("<") and item["date"].startswith("2026-01-01")

    detail = api.get(f"/api/v1/messages/{item['id']}/").json()
    assert detail["truncated"] is False and detail["folder"] == "Ventas"

    raw = api.get(f"/api/v1/messages/{item['id']}/raw/")
    assert raw.status_code == 200 and raw["Content-Type"] == "message/rfc822"
    assert raw.content == mail and "attachment" in raw["Content-Disposition"]

    assert api.get("/api/v1/messages/?account=x").status_code == 400
    assert api.get(f"/api/v1/messages/?account={account.pk}&folder=INBOX").json()["results"].__len__() == 0


def test_deleted_message_is_not_listed_and_anonymous_is_refused(dovecot, api):
    account = make_account(dovecot)
    dovecot.deliver(account.email_address, make_mail(1))
    sync(account)
    raw = RawMessage.objects.get(account=account)
    run_pipeline(raw.pk)
    message = Message.objects.get(raw=raw)
    raw.deleted_at = timezone.now()
    raw.save()
    assert api.get(f"/api/v1/messages/?account={account.pk}").json()["results"].__len__() == 0
    assert api.get(f"/api/v1/messages/{message.pk}/raw/").status_code == 404
    assert APIClient().get("/api/v1/messages/").status_code in (401, 403)


def test_progress_reports_done_total_and_eta(dovecot):
    from buzon.sync import progress

    account = make_account(dovecot)
    assert account_progress(account) is None
    progress.add_work(account.pk, 100)
    progress.add_done(account.pk, 40)
    value = account_progress(account)
    assert value is not None and value["done"] == 40 and value["total"] == 100
    assert value["eta_s"] is not None and value["eta_s"] >= 0
    progress.finish(account.pk)
    assert account_progress(account) is None

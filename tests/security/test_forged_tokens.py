"""Forged, altered, cross-purpose, foreign-key and stale mail-link tokens are rejected and change nothing.

tests/outbound/test_endpoints.py proves tampered pixel and unsubscribe tokens and a tampered
confirmation link; this adds what it leaves out: the confirmation link given an unsubscribe token
(the same [account, address] payload, so only the purpose tells them apart), tokens signed with
another installation's key, a confirmation link for an address the account no longer has, expired
links, and GET/POST on every endpoint with garbage.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from buzon.mailboxes.models import EmailAccount
from buzon.outbound import confirm, tokens
from buzon.outbound.models import SenderConfirmation, Unsubscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(settings) -> EmailAccount:
    settings.OUTBOUND_CONFIRM_SENDERS = True
    return EmailAccount.objects.create(email_address="ventas@shop.test", outgoing_enabled=True,
                                       smtp_host="smtp.shop.test", smtp_port=587, smtp_security="starttls")


def foreign(purpose: str, payload: object) -> str:
    """A well-formed token signed with some other secret key (another installation, a guess)."""
    return signing.dumps(payload, key="not-this-installation's-secret-key-" + "x" * 20, salt=purpose)


def _confirmed(account: EmailAccount) -> bool:
    return SenderConfirmation.objects.filter(account=account, confirmed_at__isnull=False).exists()


def test_confirmation_refuses_an_unsubscribe_token_with_the_same_payload(account):
    """Anyone who gets bulk mail holds an unsubscribe token for [account, their address]; with the
    account's own address in it, it must still not confirm the sender."""
    cross = tokens.make(tokens.UNSUBSCRIBE, [account.pk, account.email_address])
    response = Client().post(f"/confirm-sender/{cross}/")
    assert response.status_code == 400
    assert not _confirmed(account) and not confirm.is_confirmed(account)


@pytest.mark.parametrize("path", ["/confirm-sender/{}/", "/unsubscribe/{}/", "/o/{}.gif"])
def test_tokens_signed_with_another_key_are_rejected(account, path):
    payload = account.pk if path.startswith("/o/") else [account.pk, account.email_address]
    purpose = {"/confirm-sender/{}/": tokens.CONFIRM, "/unsubscribe/{}/": tokens.UNSUBSCRIBE,
               "/o/{}.gif": tokens.PIXEL}[path]
    token = foreign(purpose, payload)
    client = Client()
    url = path.format(token)
    for response in (client.get(url), client.post(url, {"List-Unsubscribe": "One-Click"})):
        assert response.status_code in (400, 404)
    assert not _confirmed(account) and not Unsubscribe.objects.exists()


def test_confirmation_link_for_a_previous_address_is_rejected(account):
    token = tokens.confirm_token(account.pk, account.email_address)
    account.email_address = "otra@shop.test"
    account.save()
    assert Client().post(f"/confirm-sender/{token}/").status_code == 400
    with pytest.raises(tokens.BadToken):
        confirm.confirm_token(token)
    assert not _confirmed(account)


def test_confirmation_link_for_another_account_cannot_be_re_pointed(account):
    other = EmailAccount.objects.create(email_address="rrhh@shop.test")
    token = tokens.confirm_token(other.pk, other.email_address)
    payload, signature = token.rsplit(":", 1)[0], token.rsplit(":", 1)[1]
    mine = tokens.confirm_token(account.pk, account.email_address)
    re_pointed = mine.rsplit(":", 1)[0] + ":" + signature  # my payload, another token's signature
    assert re_pointed != mine and payload
    assert Client().post(f"/confirm-sender/{re_pointed}/").status_code == 400
    assert not _confirmed(account) and not _confirmed(other)


def test_expired_confirmation_link_is_rejected(account, monkeypatch):
    token = tokens.confirm_token(account.pk, account.email_address)
    later = timezone.now() + timedelta(days=8)
    monkeypatch.setattr("time.time", lambda: later.timestamp())  # signing's clock: the link is a week old
    assert Client().post(f"/confirm-sender/{token}/").status_code == 400
    assert not _confirmed(account)


@pytest.mark.parametrize("garbage", ["", "x", "..", "%00", "a" * 4000, "W10:1:", "null:abc:def",
                                     "eyJhbGciOiJub25lIn0.e30."])
def test_garbage_tokens_are_rejected_everywhere(account, garbage):
    client = Client()
    for url in (f"/confirm-sender/{garbage}/", f"/unsubscribe/{garbage}/", f"/o/{garbage}.gif"):
        for response in (client.get(url), client.post(url, {"List-Unsubscribe": "One-Click"})):
            assert response.status_code in (400, 404, 405), (url, response.status_code)
    assert not _confirmed(account) and not Unsubscribe.objects.exists()

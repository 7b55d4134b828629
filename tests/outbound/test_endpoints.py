"""Pixel, unsubscribe and confirmation endpoints: real tokens work once sent; forged or altered ones never."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from buzon.messages.models import MessageStatus
from buzon.messages.outbox import SendRefused, queue_outgoing
from buzon.outbound import tokens
from buzon.outbound.models import OutgoingEmail, Unsubscribe
from buzon.outbound.sender import deliver_due

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    return urlsplit(url).path


def tamper(token: str) -> str:
    """Change one character of the payload part (before the signature)."""
    i = 1
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def test_first_pixel_load_marks_opened(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, track_opens=True)
    message = queue_outgoing(to=["a@example.org", "b@example.org"], subject="s", text="x", account=account)
    deliver_due(pool=pool)
    html = message_from_bytes(smtp_starttls.messages[0].data, policy=default).get_body(("html",)).get_content()
    url = re.search(r'<img src="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    client = Client()
    response = client.get(path_of(url))
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    message.refresh_from_db()
    assert message.status == MessageStatus.OPENED
    first = OutgoingEmail.objects.get(pk=message.pk).opened_at
    client.get(path_of(url))
    outgoing = OutgoingEmail.objects.get(pk=message.pk)
    assert outgoing.opened_at == first and outgoing.open_count == 2


@pytest.mark.parametrize("forge", [
    lambda pk: tamper(tokens.pixel_token(pk)),
    lambda pk: tokens.make(tokens.UNSUBSCRIBE, pk),  # right payload, wrong purpose
    lambda pk: "bm9uc2Vuc2U:1:abc",
    lambda pk: tokens.pixel_token(pk)[:-2],
])
def test_forged_pixel_tokens_change_nothing(smtp_starttls: Any, make_account: Any, pool: Any, forge: Any) -> None:
    account = make_account(smtp_starttls, track_opens=True)
    message = queue_outgoing(to="a@example.org", subject="s", text="x", account=account)
    deliver_due(pool=pool)
    response = Client().get(f"/o/{forge(message.pk)}.gif")
    assert response.status_code == 404
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def _unsubscribe_url(server: Any) -> str:
    mail = message_from_bytes(server.messages[-1].data, policy=default)
    return path_of(mail["List-Unsubscribe"].strip("<>"))


def test_one_click_unsubscribe_stops_bulk_mail(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, unsubscribe_link=True, default_outgoing=True)
    queue_outgoing(to="fan@example.org", subject="n1", text="x", kind="bulk")
    deliver_due(pool=pool)
    url = _unsubscribe_url(smtp_starttls)
    # RFC 8058: the mail client POSTs this body, with no cookie and no CSRF token.
    response = Client(enforce_csrf_checks=True).post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Unsubscribe.objects.filter(account=account, address="fan@example.org").exists()
    with pytest.raises(SendRefused, match="unsubscribed"):
        queue_outgoing(to="fan@example.org", subject="n2", text="x", kind="bulk")
    kept = queue_outgoing(to=["fan@example.org", "other@example.org"], subject="n3", text="x", kind="bulk")
    assert kept.to == ["other@example.org"]
    # A personal message to the same address still goes: unsubscribing stops bulk mail only.
    queue_outgoing(to="fan@example.org", subject="personal", text="x", account=account)


def test_unsubscribe_page_get_changes_nothing(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, unsubscribe_link=True, default_outgoing=True)
    queue_outgoing(to="fan@example.org", subject="n1", text="x", kind="bulk")
    deliver_due(pool=pool)
    response = Client().get(_unsubscribe_url(smtp_starttls))
    assert response.status_code == 200 and b"fan@example.org" in response.content
    assert not Unsubscribe.objects.filter(account=account).exists()


def test_altered_unsubscribe_token_is_rejected(make_account: Any) -> None:
    account = make_account()
    genuine = tokens.unsubscribe_token(account.pk, "fan@example.org")
    other = tokens.unsubscribe_token(account.pk, "victim@example.org")
    spliced = genuine.split(":")[0] + ":" + other.split(":", 1)[1]
    for token in (tamper(genuine), spliced, tokens.make(tokens.PIXEL, [account.pk, "victim@example.org"])):
        response = Client().post(f"/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400
    assert not Unsubscribe.objects.exists()


def test_multi_recipient_unsubscribe_asks_which_address(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    make_account(smtp_starttls, unsubscribe_link=True, default_outgoing=True)
    queue_outgoing(to=["a@example.org", "b@example.org"], subject="n", text="x", kind="bulk")
    deliver_due(pool=pool)
    url = _unsubscribe_url(smtp_starttls)
    assert Client().post(url, {"address": "stranger@example.org"}).status_code == 400
    assert Client().post(url, {"address": "b@example.org"}).status_code == 200
    assert list(Unsubscribe.objects.values_list("address", flat=True)) == ["b@example.org"]


def test_sender_confirmation_by_link(smtp_starttls: Any, make_account: Any) -> None:
    from buzon.outbound import confirm

    account = make_account(smtp_starttls, confirmed=False)
    confirm.start(account)
    mail = message_from_bytes(smtp_starttls.messages[0].data, policy=default)
    assert smtp_starttls.messages[0].rcpt_tos == ["sender@example.test"]
    text = mail.get_body(("plain",)).get_content()
    url = re.search(r"(http\S+/confirm-sender/\S+/)", text).group(1)  # type: ignore[union-attr]
    client = Client()
    assert client.get(path_of(url)).status_code == 200
    assert not confirm.is_confirmed(account)  # a link scanner's GET confirms nothing
    assert client.post(path_of(tamper_path(path_of(url)))).status_code == 400
    assert not confirm.is_confirmed(account)
    assert client.post(path_of(url)).status_code == 200
    assert confirm.is_confirmed(account)
    queue_outgoing(to="c@example.org", subject="s", text="x", account=account)


def tamper_path(path: str) -> str:
    token = path.rstrip("/").rsplit("/", 1)[1]
    return path.replace(token, tamper(token))


def test_sender_confirmation_by_code_with_limited_tries(smtp_starttls: Any, make_account: Any) -> None:
    from buzon.outbound import confirm

    account = make_account(smtp_starttls, confirmed=False)
    confirm.start(account)
    text = message_from_bytes(smtp_starttls.messages[0].data, policy=default).get_body(("plain",)).get_content()
    code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert not confirm.confirm_code(account, wrong)
    assert confirm.confirm_code(account, code)
    assert confirm.is_confirmed(account)


def test_provider_accounts_need_no_confirmation(make_account: Any) -> None:
    from buzon.outbound import confirm

    account = make_account(address="someone@gmail.com", confirmed=False)
    assert confirm.is_confirmed(account)

"""URL and Message-ID headers reach the receiver as written (folded, never RFC 2047-encoded): a mail
client finds the one-click unsubscribe (RFC 8058) and threads on In-Reply-To / References."""

from __future__ import annotations

import re
import urllib.request
from email import message_from_bytes
from email.policy import default
from typing import Any

import dkim
import pytest

from buzon.mailboxes.models import EmailDomain
from buzon.messages.models import Direction, MessageStatus
from buzon.messages.models import Message as StoredMessage
from buzon.messages.outbox import SendRefused, queue_outgoing
from buzon.outbound import signing
from buzon.outbound.models import Unsubscribe
from buzon.outbound.sender import deliver_due
from tests.outbound.test_dkim_dns import dns_server, dns_txt, publish  # noqa: F401 - dns_server is a fixture

LONG_ID = "<" + "1734567890123456789.98765.1234567890123456789" + "@mail.a-rather-long-subdomain.example-company.com>"


def raw_header(data: bytes, name: bytes) -> bytes:
    """The header exactly as on the wire, continuation lines included."""
    match = re.search(rb"^" + name + rb":(.*?)\r\n(?! )", data, re.M | re.S | re.I)
    assert match is not None, name
    return match.group(1)


@pytest.mark.django_db(transaction=True)
def test_one_click_unsubscribe_header_is_a_plain_signed_url_that_unsubscribes(
        smtp_starttls: Any, make_account: Any, pool: Any, dns_server: Any, live_server: Any,  # noqa: F811
        settings: Any) -> None:
    settings.BASE_URL = live_server.url
    domain = EmailDomain.objects.create(domain_name="example.test")
    signing.generate(domain)
    publish(dns_server, domain)
    account = make_account(smtp_starttls, domain=domain, unsubscribe_link=True, default_outgoing=True)
    queue_outgoing(to="Cliente <cliente@example.org>", subject="Novedades", text="Hola", kind="bulk")
    deliver_due(pool=pool)
    data = smtp_starttls.messages[0].data

    wire = raw_header(data, b"List-Unsubscribe")
    assert b"=?" not in wire and wire.strip().startswith(b"<" + live_server.url.encode())
    assert raw_header(data, b"List-Unsubscribe-Post") == b" List-Unsubscribe=One-Click"
    mail = message_from_bytes(data, policy=default)
    url = re.fullmatch(r"<(https?://[^>]+)>", str(mail["List-Unsubscribe"]))
    assert url is not None, mail["List-Unsubscribe"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    assert dkim.verify(data, dnsfunc=dns_txt(dns_server))
    signed = re.search(rb"h=([^;]+);", raw_header(data, b"DKIM-Signature").replace(b"\r\n", b""))
    assert signed is not None and b"list-unsubscribe" in signed.group(1).replace(b" ", b"").split(b":")

    # RFC 8058: what a mail client does with those two headers, over real HTTP.
    post = urllib.request.Request(url.group(1), data=b"List-Unsubscribe=One-Click", method="POST",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310 - the test's own server
        assert response.status == 200
    assert Unsubscribe.objects.filter(account=account, address="cliente@example.org").exists()
    with pytest.raises(SendRefused, match="unsubscribed"):
        queue_outgoing(to="cliente@example.org", subject="Más novedades", text="Hola", kind="bulk")


@pytest.mark.django_db
def test_long_message_ids_are_written_whole_for_threading(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, incoming_enabled=True)
    parent = StoredMessage.objects.create(
        direction=Direction.INCOMING, account=account, status=MessageStatus.PROCESSED, message_id=LONG_ID,
        references=f"<root@example.org> {LONG_ID.replace('98765', '11111')}", subject="Pedido",
        from_address="c@example.org")
    queue_outgoing(to="c@example.org", subject="Re: Pedido", text="Respuesta", account=account, in_reply_to=parent)
    deliver_due(pool=pool)
    data = smtp_starttls.messages[0].data
    for name in (b"In-Reply-To", b"References"):
        wire = raw_header(data, name)
        assert b"=?" not in wire and LONG_ID.encode() in wire, (name, wire)
        assert all(len(line) <= 78 or line.strip().count(b" ") == 0 for line in wire.split(b"\r\n")), wire
    mail = message_from_bytes(data, policy=default)
    assert str(mail["In-Reply-To"]) == LONG_ID
    assert str(mail["References"]).split() == ["<root@example.org>", LONG_ID.replace("98765", "11111"), LONG_ID]

"""A sender whose address has a quoted local part ("Big Bug bb"@bug.com) can be answered.

The address is one mailbox, spaces and all (RFC 5321 4.1.2, RFC 5322 3.4.1): the stored sender keeps
its quotes, and the agent's reply reaches it, as the SMTP server (RCPT TO) and a mail client reading
the To header (policy.default) see it. Without the quotes it would be someone else's address.
"""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from html import unescape
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from buzon.crm.models import Agent, Store
from buzon.inbound import pipeline
from buzon.messages.models import Message
from buzon.outbound.sender import deliver_due
from tests.inbound.helpers import store_raw

pytestmark = pytest.mark.django_db

QUESTION = (b'From: "Big Bug bb"@bug.com\r\nTo: soporte@shop.test\r\nSubject: Pedido 77\r\n'
            b"Message-ID: <q77@bug.com>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xc2\xbfD\xc3\xb3nde est\xc3\xa1 mi pedido?\r\n")


def test_a_reply_to_a_quoted_local_part_reaches_it(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    store = Store.objects.create(name="Tienda Centro")
    account = make_account(smtp_starttls, store=store, incoming_enabled=True, append_to="ticket", auto_link=True)
    agent = get_user_model().objects.create_user("lucia", "lucia@shop.test", "pw-lucia-123")
    Agent.objects.create(user=agent, status=Agent.Status.FREE).stores.add(store)
    pipeline.run_pipeline(store_raw(QUESTION.replace(b"soporte@shop.test", account.email_address.encode()), account).pk)
    question = Message.objects.get(subject="Pedido 77")
    assert question.from_address == '"big bug bb"@bug.com'  # quoted, case folded as every stored address

    web = Client()
    web.force_login(agent)
    page = web.get(f"/compose/?reply={question.pk}").content.decode()
    assert 'value="&quot;big bug bb&quot;@bug.com"' in page  # the reply form offers the quoted address
    sent = web.post("/compose/", {"account": account.pk, "to": unescape('&quot;big bug bb&quot;@bug.com'),
                                  "subject": "Re: Pedido 77", "text": "Sale hoy.", "in_reply_to": question.pk})
    assert sent.status_code == 302, sent.content.decode()[:2000]
    assert deliver_due(pool=pool).sent == 1

    received = smtp_starttls.messages[-1]
    assert received.rcpt_tos == ['"big bug bb"@bug.com']
    mail = message_from_bytes(received.data, policy=default)
    assert [a.addr_spec for a in mail["To"].addresses] == ['"big bug bb"@bug.com']
    assert mail["In-Reply-To"] == "<q77@bug.com>"




ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"


@given(st.text(alphabet=ATEXT + '. "<>()@,;:[]\\ñ', min_size=1, max_size=30))
def test_a_bare_address_shortcut_agrees_with_the_email_package(value: str) -> None:
    """Envelope addresses skip the email package's parser only where it would give them back unchanged."""
    from email.utils import parseaddr
    from smtplib import quoteaddr

    from buzon.outbound import addresses, compose, smtp

    if addresses.is_bare(value):
        assert parseaddr(value)[1] == value
        assert quoteaddr(value) == f"<{value}>"
    assert smtp._path(value) == quoteaddr(value)
    if value.isascii():
        assert compose._envelope_address(value) == parseaddr(value)[1]


@pytest.mark.parametrize("value", ['"Big Bug bb"@bug.com', "Ana <ana@x.test>", "ana@[192.0.2.1]", "ana.@x.test",
                                   ".ana@x.test", "ana..b@x.test", "ana@x.test.", "ñu@x.test", "ana@x.test (Ana)"])
def test_addresses_with_anything_to_parse_are_not_bare(value: str) -> None:
    from buzon.outbound.addresses import is_bare

    assert not is_bare(value)

"""DKIM signatures verified by dkimpy against the key published in a real (local) DNS server; DNS checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dkim
import dns.resolver
import pytest

from buzon.core import crypto
from buzon.mailboxes.models import EmailDomain
from buzon.messages.outbox import queue_outgoing
from buzon.outbound import deliverability, signing
from buzon.outbound.models import DkimKey
from buzon.outbound.sender import deliver_due
from tests.outbound.dns_server import DNSServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def dns_server(settings: Any) -> Iterator[DNSServer]:
    server = DNSServer().start()
    settings.OUTBOUND_DNS_SERVERS = [server.address]
    yield server
    server.stop()


def dns_txt(server: DNSServer) -> Any:
    """dkimpy's DNS lookup, pointed at the local server."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    return lookup


def publish(server: DNSServer, domain: EmailDomain) -> None:
    for record in deliverability.expected_records(domain):
        server.txt[record.name] = [record.value]


def test_private_key_is_encrypted_at_rest(db: Any) -> None:
    domain = EmailDomain.objects.create(domain_name="example.test")
    key = signing.generate(domain)
    stored = DkimKey.objects.get(pk=key.pk).private_key_encrypted
    assert "PRIVATE KEY" not in stored
    assert "BEGIN RSA PRIVATE KEY" in crypto.decrypt(stored)


def test_sent_mail_is_signed_and_verifies_against_published_key(smtp_starttls: Any, make_account: Any, pool: Any,
                                                                 dns_server: DNSServer) -> None:
    domain = EmailDomain.objects.create(domain_name="example.test")
    signing.generate(domain)
    publish(dns_server, domain)
    account = make_account(smtp_starttls, domain=domain, unsubscribe_link=True, track_opens=True)
    queue_outgoing(to="c@example.org", subject="Firmado ñ", text="Hola áé", html="<p>Hola</p>", account=account)
    deliver_due(pool=pool)
    data = smtp_starttls.messages[0].data
    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=dns_txt(dns_server))
    # Altered in transit: the signature no longer verifies.
    assert not dkim.verify(data.replace(b"Hola", b"Adios", 1), dnsfunc=dns_txt(dns_server))


@pytest.mark.parametrize("message", [
    b"From: a@example.test\r\nTo: b@example.org\r\nSubject: x\r\n"
    b"Date: Thu, 26 Nov 2026 13:00:00 +0000\r\n\r\nhi\r\n",
    # folded and repeated headers, trailing blank lines and spaces in the body
    b"Received: from x\r\nFrom: \"Ana  P\" <a@example.test>\r\nTo: b@example.org,\r\n   c@example.org\r\n"
    b"Subject:  =?utf-8?q?Firmado_=C3=B1?=  \r\nTo: d@example.org\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain;\r\n\tcharset=\"utf-8\"\r\n\r\nline one  \r\n\r\n.dot\r\n\r\n\r\n",
])
def test_signature_is_byte_for_byte_dkimpys(db: Any, message: bytes) -> None:
    domain = EmailDomain.objects.create(domain_name="example.test")
    key = signing.generate(domain)
    pem = crypto.decrypt(key.private_key_encrypted).encode()
    for _attempt in range(3):  # t= is the current second: retry if the two fall on either side of one
        ours = signing.Signer().sign(message, "a@example.test")
        theirs = dkim.sign(message, b"buzon", b"example.test", pem, include_headers=signing.SIGNED_HEADERS)
        if ours.startswith(theirs):
            break
    assert ours == theirs + message
    # ...and signing left dkimpy itself as it was (no monkeypatching of the library).
    assert dkim.RSASSA_PKCS1_v1_5_sign is dkim.crypto.RSASSA_PKCS1_v1_5_sign
    assert dkim.parse_pem_private_key is dkim.crypto.parse_pem_private_key


def _outcome(parse: Any, message: bytes) -> Any:
    try:
        return parse(message)
    except (dkim.MessageFormatError, IndexError) as exc:  # dkimpy's answers to a malformed header block
        return (type(exc).__name__, str(exc))


def test_the_signers_message_split_is_dkimpys(corpus: Any) -> None:
    """Signing splits a CRLF message at its blank line instead of through dkimpy's parser, which
    splits every line of the body to join them again: the result is dkimpy's for every message of
    the corpus, as it is and with its lines ending in CRLF, and for the odd shapes below."""
    odd = [b"From sender Thu Nov 26 2026\r\nSubject: x\r\n\r\nbody\r\n", b"\r\nno headers\r\n",
           b" continued\r\nSubject: x\r\n\r\nb\r\n", b"Subject: x\r\n", b"Subject: x\r\n\r\n",
           b"Bad header line\r\n\r\nb\r\n", b"Subject: a\r\n\tb\r\n c\r\n\r\n\r\nbody\n", b"X:\r\n\r\n"]
    messages = [*odd, *(path.read_bytes() for path in sorted(corpus.rglob("*.eml")))]
    assert len(messages) > 100
    for message in messages:
        for variant in (message, message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")):
            assert _outcome(signing._parse, variant) == _outcome(dkim.rfc822_parse, variant), variant[:200]


def test_dns_check_reports_present_missing_and_wrong(dns_server: DNSServer, db: Any) -> None:
    domain = EmailDomain.objects.create(domain_name="example.test", smtp_host="smtp.example.test")
    signing.generate(domain)
    records = deliverability.expected_records(domain)
    assert [r.kind for r in records] == ["spf", "dkim", "dmarc"]
    assert records[0].value == "v=spf1 a:smtp.example.test ~all"
    assert all(r.status == "missing" for r in deliverability.check(records))
    dns_server.txt["example.test"] = ["v=spf1 mx a:smtp.example.test -all", "google-site-verification=x"]
    dns_server.txt["buzon._domainkey.example.test"] = ["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCg"]
    dns_server.txt["_dmarc.example.test"] = ["v=DMARC1; p=reject"]
    status = {r.kind: r.status for r in deliverability.check(records)}
    assert status == {"spf": "ok", "dkim": "wrong", "dmarc": "ok"}
    publish(dns_server, domain)
    assert {r.status for r in deliverability.check(records)} == {"ok"}
    dns_server.txt["example.test"] = ["v=spf1 -all", "v=spf1 a:smtp.example.test ~all"]
    assert deliverability.check(records)[0].status == "wrong"


def test_provider_domain_spf_uses_the_providers_include(db: Any) -> None:
    domain = EmailDomain.objects.create(domain_name="tienda.example", preset="google_workspace")
    assert deliverability.expected_records(domain)[0].value == "v=spf1 include:_spf.google.com ~all"

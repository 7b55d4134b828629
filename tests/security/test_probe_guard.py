"""The connection probe cannot scan ports or reach into the host; sync and send share the address guard.

Real servers throughout (aiosmtpd, a listening socket that counts connections); the only stand-in is
the name resolver, because no real DNS peer here can answer a name with a metadata address, or answer
differently the second time (DNS rebinding).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import threading
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from buzon.core import api_tokens
from buzon.mailboxes import guard
from buzon.mailboxes.connections import open_smtp
from buzon.mailboxes.endpoints import ServerSettings
from buzon.mailboxes.errors import AddressRefused
from buzon.mailboxes.models import EmailAccount
from buzon.mailboxes.probe import probe_account
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db
TIMEOUT = 2.0


class CountingListener:
    """A real listening socket on a port the tests never allowed: counts who connects."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    server = CountingListener()
    yield server
    server.close()


@pytest.fixture
def fake_dns(monkeypatch):
    """Answer chosen names with chosen addresses (a list per call, the last one repeating)."""
    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}
    calls: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        calls.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [(family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, calls


def smtp_account(host: str, port: int, **fields) -> EmailAccount:
    account = EmailAccount(email_address="sender@example.test", outgoing_enabled=True, smtp_host=host,
                           smtp_port=port, smtp_security="none", smtp_auth=True, **fields)
    account.set_password("smtp-secret")
    return account


@pytest.mark.parametrize("address", [
    "169.254.169.254", "169.254.170.2", "169.254.1.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "100.100.100.200",
])
def test_link_local_metadata_and_special_addresses_are_always_refused(settings, address):
    settings.PROBE_ALLOW_PRIVATE = True
    assert guard.refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.1.10", "172.16.0.5", "fd12::1"])
def test_loopback_and_private_allowed_by_default_and_refusable(settings, address):
    settings.PROBE_ALLOW_PRIVATE = True
    assert guard.refusal(ipaddress.ip_address(address)) == ""
    settings.PROBE_ALLOW_PRIVATE = False
    assert guard.refusal(ipaddress.ip_address(address)) == "private"


def test_public_addresses_pass(settings):
    settings.PROBE_ALLOW_PRIVATE = False
    assert guard.refusal(ipaddress.ip_address("8.8.8.8")) == ""
    assert guard.refusal(ipaddress.ip_address("2001:4860:4860::8888")) == ""


def test_default_ports_are_the_mail_ports():
    from buzon import settings as project_settings

    assert {25, 110, 143, 465, 587, 993, 995, 2525} <= set(project_settings.PROBE_ALLOWED_PORTS)
    assert not {22, 80, 443, 3306, 5432, 6379, 8080} & set(project_settings.PROBE_ALLOWED_PORTS)


def test_probe_never_connects_to_a_port_that_is_not_allowed(listener):
    report = probe_account(smtp_account("127.0.0.1", listener.port), incoming=False, timeout=TIMEOUT)
    error = report.outgoing.error
    assert isinstance(error, AddressRefused) and error.reason == "port"
    assert "not a mail port" in error.message() and str(listener.port) in error.message()
    assert listener.connections == 0


def test_admin_can_allow_another_port(settings, listener):
    settings.PROBE_ALLOWED_PORTS = frozenset({listener.port})
    report = probe_account(smtp_account("127.0.0.1", listener.port), incoming=False, timeout=TIMEOUT)
    assert not isinstance(report.outgoing.error, AddressRefused)
    assert listener.connections == 1


def test_metadata_name_refused_before_any_lookup(fake_dns):
    _answers, calls = fake_dns
    report = probe_account(smtp_account("metadata.google.internal", 587), incoming=False, timeout=TIMEOUT)
    assert isinstance(report.outgoing.error, AddressRefused) and report.outgoing.error.reason == "metadata"
    assert calls == []


def test_every_resolved_address_is_checked(fake_dns, smtp_plain):
    answers, _calls = fake_dns
    answers["mail.mixed.test"] = [["127.0.0.1", "169.254.169.254"]]
    report = probe_account(smtp_account("mail.mixed.test", smtp_plain.port), incoming=False, timeout=TIMEOUT)
    error = report.outgoing.error
    assert isinstance(error, AddressRefused) and error.reason == "metadata"
    assert "169.254.169.254" in error.detail
    assert "link-local or cloud-metadata" in error.message()


def test_dns_rebinding_cannot_redirect_the_connection(fake_dns, smtp_plain):
    """The name is resolved once, checked, and the connection goes to that address: a second answer
    pointing at the metadata service is never asked for."""
    answers, calls = fake_dns
    answers["mail.rebind.test"] = [["127.0.0.1"], ["169.254.169.254"]]
    report = probe_account(smtp_account("mail.rebind.test", smtp_plain.port), incoming=False, timeout=TIMEOUT)
    assert report.ok, report.outgoing.error
    assert calls == ["mail.rebind.test"]


def test_private_addresses_refusable_for_probe(settings, smtp_plain):
    settings.PROBE_ALLOW_PRIVATE = False
    report = probe_account(smtp_account("127.0.0.1", smtp_plain.port), incoming=False, timeout=TIMEOUT)
    error = report.outgoing.error
    assert isinstance(error, AddressRefused) and error.reason == "private"
    assert smtp_plain.messages == []


def test_send_path_uses_the_same_address_guard(fake_dns, smtp_plain, settings):
    """open_smtp without probe=True (the sender) has no port limit but the same address guard."""
    server = ServerSettings(protocol="smtp", host="127.0.0.1", port=smtp_plain.port, security="none",
                            tls_verify=True, username="sender@example.test", password="smtp-secret")
    settings.PROBE_ALLOWED_PORTS = frozenset({587})  # the send path ignores the probe's port list
    open_smtp(server, timeout=TIMEOUT).quit()
    answers, _calls = fake_dns
    answers["evil.test"] = [["169.254.169.254"]]
    with pytest.raises(AddressRefused):
        open_smtp(dataclasses.replace(server, host="evil.test"), timeout=TIMEOUT)


def test_sync_path_uses_the_same_address_guard(fake_dns, dovecot):
    from buzon.mailboxes.connections import open_imap, open_pop3
    from buzon.mailboxes.probe import run_async

    answers, _calls = fake_dns
    answers["evil.test"] = [["fe80::1"]]
    imap = ServerSettings(protocol="imap", host="evil.test", port=dovecot.imaps_port, security="ssl",
                          tls_verify=True, username="u", password="p")
    with pytest.raises(AddressRefused):
        run_async(lambda: open_imap(imap, timeout=TIMEOUT))
    with pytest.raises(AddressRefused):
        open_pop3(dataclasses.replace(imap, protocol="pop3", port=dovecot.pop3s_port),
                  timeout=TIMEOUT)


# ------------------------------------------------------------------------------------- rate limit
def _staff():
    return get_user_model().objects.create_user("admin", "admin@example.test", "admin-pass", is_staff=True)


def test_api_probe_rate_limited_per_user_with_429(settings):
    settings.PROBE_RATE_PER_MINUTE = 3
    user = _staff()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_tokens.create(user)[1]}")
    body = {"email_address": "sender@example.test", "password": "x", "outgoing_enabled": True,
            "smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_security": "none"}
    for _ in range(3):
        assert client.post("/api/v1/email-accounts/test/", body, format="json").status_code == 200
    limited = client.post("/api/v1/email-accounts/test/", body, format="json")
    assert limited.status_code == 429, limited.content
    assert "Too many connection tests" in limited.json()["detail"]
    assert 1 <= int(limited["Retry-After"]) <= 60
    other = get_user_model().objects.create_user("admin2", "admin2@example.test", "pw", is_staff=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_tokens.create(other)[1]}")
    assert client.post("/api/v1/email-accounts/test/", body, format="json").status_code == 200


def test_ui_probe_rate_limited_with_a_message(settings):
    settings.PROBE_RATE_PER_MINUTE = 1
    client = Client()
    client.force_login(_staff())
    data = {"email_address": "sender@example.test", "outgoing_enabled": "on", "smtp_host": "127.0.0.1",
            "smtp_port": str(free_port()), "smtp_security": "none", "password": "x", "sync_option": "all",
            "initial_sync_count": "250"}
    first = client.post("/settings/email/accounts/test/", data, HTTP_HX_REQUEST="true").content.decode()
    assert "Too many connection tests" not in first
    second = client.post("/settings/email/accounts/test/", data, HTTP_HX_REQUEST="true").content.decode()
    assert "Too many connection tests" in second

"""One SMTP transaction against aiosmtpd: PIPELINING (RFC 2920) where offered, SIZE (RFC 1870), refusals."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from typing import Any

import pytest

from buzon.outbound.smtp import SendOutcome, transmit
from tests.support.certs import TestCerts
from tests.support.smtpd import PipeliningHandler, SinkHandler, SMTPServer

MESSAGE = (b"From: a@example.test\r\nTo: b@example.org\r\nSubject: x\r\n\r\nfirst line\r\n"
           b".a line that starts with a dot\r\n.\r\nlast line\r\n")


def _server(certs: TestCerts, handler: SinkHandler | None = None, size_limit: int | None = None) -> SMTPServer:
    server = SMTPServer(certs, mode="plain", require_auth=False)
    if handler is not None:
        server.handler = server.controller.handler = handler
    if size_limit is not None:
        server.controller.SMTP_kwargs["data_size_limit"] = size_limit
    return server.start()


@pytest.fixture
def pipelining(test_certs: TestCerts) -> Iterator[SMTPServer]:
    server = _server(test_certs, PipeliningHandler())
    yield server
    server.stop()


@pytest.fixture
def serial(test_certs: TestCerts) -> Iterator[SMTPServer]:
    server = _server(test_certs)
    yield server
    server.stop()


class Counted:
    """An smtplib client whose writes are counted: one write per round trip the client waits on."""

    def __init__(self, server: SMTPServer) -> None:
        self.client = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
        self.client.ehlo()
        self.writes: list[bytes] = []
        send = self.client.send

        def counted(data: Any) -> None:
            self.writes.append(data if isinstance(data, bytes) else data.encode())
            send(data)

        self.client.send = counted  # type: ignore[method-assign]

    def transmit(self, recipients: list[str], data: bytes = MESSAGE, **kwargs: Any) -> SendOutcome:
        self.writes.clear()
        return transmit(self.client, "a@example.test", recipients, data, **kwargs)

    def close(self) -> None:
        self.client.quit()


def test_pipelined_transaction_is_two_writes(pipelining: SMTPServer) -> None:
    conn = Counted(pipelining)
    assert conn.client.has_extn("pipelining")
    pipelining.handler.fail_rcpt["gone@example.org"] = "550 5.1.1 Gone"
    outcome = conn.transmit(["b@example.org", "gone@example.org", "c@example.org"])
    assert outcome.sent and outcome.code == 250
    assert outcome.refused == {"gone@example.org": "550 5.1.1 Gone"}
    # MAIL, three RCPTs and DATA in one write, the content in the second.
    assert len(conn.writes) == 2
    assert conn.writes[0].count(b"\r\n") == 5 and conn.writes[0].endswith(b"DATA\r\n")
    received = pipelining.messages[0]
    assert received.rcpt_tos == ["b@example.org", "c@example.org"]
    assert received.data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")  # dots unstuffed intact
    assert conn.transmit(["d@example.org"]).sent  # the connection goes on to the next message
    assert len(conn.writes) == 2 and len(pipelining.messages) == 2
    conn.close()


def test_without_pipelining_each_command_waits_for_its_reply(serial: SMTPServer) -> None:
    conn = Counted(serial)
    assert not conn.client.has_extn("pipelining")
    assert conn.transmit(["b@example.org", "c@example.org"]).sent
    assert len(conn.writes) == 5  # MAIL, RCPT, RCPT, DATA, content
    assert serial.messages[0].data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")
    conn.close()


@pytest.mark.parametrize("server_name", ["pipelining", "serial"])
def test_every_recipient_refused_leaves_the_connection_usable(request: Any, server_name: str) -> None:
    server: SMTPServer = request.getfixturevalue(server_name)
    conn = Counted(server)
    server.handler.fail_rcpt.update({"x@example.org": "550 5.1.1 No such user", "y@example.org": "450 4.2.1 Busy"})
    outcome = conn.transmit(["x@example.org", "y@example.org"])
    assert not outcome.sent and not outcome.permanent and outcome.code == 450  # one deferral: worth a retry
    assert "every recipient" in outcome.reply
    assert not server.messages
    assert conn.transmit(["b@example.org"]).sent
    conn.close()


def test_pipelined_sender_refusal(test_certs: TestCerts) -> None:
    server = _server(test_certs, PipeliningHandler(refuse_sender="a@example.test"))
    try:
        conn = Counted(server)
        outcome = conn.transmit(["b@example.org"])
        assert not outcome.sent and outcome.permanent and outcome.code == 550
        assert "sender address" in outcome.reply and "Sender not allowed" in outcome.reply
        assert not server.messages
        conn.close()
    finally:
        server.stop()


def test_a_message_over_the_servers_size_is_failed_before_sending(test_certs: TestCerts) -> None:
    server = _server(test_certs, PipeliningHandler(), size_limit=2000)
    try:
        conn = Counted(server)
        assert conn.client.esmtp_features["size"] == "2000"
        outcome = conn.transmit(["b@example.org"], data=MESSAGE + b"x" * 3000 + b"\r\n")
        assert not outcome.sent and outcome.permanent
        assert "larger than the 2.0\xa0KB the server accepts" in outcome.reply
        assert conn.writes == []  # not one byte of it went out
        assert conn.transmit(["b@example.org"]).sent
        assert b"SIZE=%d" % len(MESSAGE) in conn.writes[0]  # and MAIL FROM declares the size
        conn.close()
    finally:
        server.stop()


def test_a_closed_gate_sends_nothing(pipelining: SMTPServer) -> None:
    conn = Counted(pipelining)
    outcome = conn.transmit(["b@example.org"], gate=lambda data: False)
    assert outcome.skipped and not outcome.sent
    assert conn.writes == [] and not pipelining.messages
    conn.close()


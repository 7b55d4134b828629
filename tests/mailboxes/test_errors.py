"""The error hierarchy: classification of low-level exceptions, scrubbing, messages, help topics."""

from __future__ import annotations

import errno
import poplib
import smtplib
import socket
import ssl

import aioimaplib
import pytest
from django.utils import translation

from buzon.mailboxes import errors
from buzon.mailboxes.troubleshooting import all_topics, troubleshooting_topic
from tests.mailboxes.conftest import settings_for

S = settings_for("imap", 993, host="mail.example.test", username="u", password="s3cr3t-Pw")


def smtp_disconnect_after_timeout():
    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError as exc:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out") from exc
    except smtplib.SMTPServerDisconnected as outer:
        return outer


CASES = [
    (socket.gaierror(-2, "Name or service not known"), "connect", errors.DNSError),
    (ConnectionRefusedError(111, "refused"), "connect", errors.ConnectionRefused),
    (TimeoutError(), "greeting", errors.ConnectTimeout),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "connect", errors.ConnectTimeout),
    (smtp_disconnect_after_timeout(), "connect", errors.ConnectTimeout),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "connect", errors.TLSHandshakeError),
    (ConnectionResetError(), "starttls", errors.TLSHandshakeError),
    (ConnectionResetError(), "login", errors.ProtocolError),
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication failed"), "login", errors.AuthenticationFailed),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), "starttls",
     errors.TLSHandshakeError),
    (smtplib.SMTPConnectError(554, b"go away"), "connect", errors.ProtocolError),
    (poplib.error_proto(b"-ERR [AUTH] Authentication failed."), "login", errors.AuthenticationFailed),
    (poplib.error_proto(b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."),
     "login", errors.TLSHandshakeError),
    (poplib.error_proto(b"* OK IMAP ready"), "connect", errors.ProtocolError),
    (poplib.error_proto("-ERR STLS not supported by server"), "starttls", errors.TLSHandshakeError),
    (aioimaplib.Abort("unexpected tagged response"), "folder", errors.ProtocolError),
    (UnicodeEncodeError("ascii", "ñ", 0, 1, "ordinal not in range"), "login", errors.ConfigurationError),
    (RuntimeError("something odd"), "login", errors.ProtocolError),
]


@pytest.mark.parametrize(("exc", "stage", "expected"), CASES, ids=[type(c[0]).__name__ + "-" + c[1] for c in CASES])
def test_classify(exc, stage, expected):
    error = errors.classify(exc, S, stage)
    assert type(error) is expected
    assert (error.host, error.port, error.stage, error.protocol) == ("mail.example.test", 993, stage, "imap")
    assert error.message()


def test_pop3_without_stls_says_so():
    error = errors.classify(poplib.error_proto("-ERR STLS not supported by server"), S, "starttls")
    assert error.reason == "starttls_unsupported" and "STARTTLS" in error.message()


def test_certificate_reasons():
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed: certificate has expired")
    exc.verify_code = 10
    error = errors.classify(exc, S, "connect")
    assert isinstance(error, errors.CertificateError) and error.reason == "expired"
    assert "expired" in error.message()


def test_password_never_in_detail():
    import base64

    plain = base64.b64encode(b"\0u\0s3cr3t-Pw").decode()
    for exc in (RuntimeError("LOGIN u s3cr3t-Pw"), RuntimeError(f"AUTH PLAIN {plain}"),
                smtplib.SMTPAuthenticationError(535, b"bad s3cr3t-Pw")):
        error = errors.classify(exc, S, "login")
        assert "s3cr3t-Pw" not in error.detail and plain not in error.detail
        assert "s3cr3t-Pw" not in str(error) and "s3cr3t-Pw" not in repr(error)


@pytest.mark.parametrize("cls", list(errors.ERRORS_BY_CODE.values()), ids=lambda c: c.code)
def test_every_error_speaks_both_languages_and_has_a_topic(cls):
    kwargs = dict(host="mail.example.test", port=993, stage="login", protocol="imap", folder="Ventas", timeout=5.0)
    error = errors.ConfigurationError("x", **kwargs) if cls is errors.ConfigurationError else cls(**kwargs)
    with translation.override("en"):
        english = error.message()
    with translation.override("es"):
        spanish = error.message()
    if cls is not errors.ConfigurationError:
        assert english != spanish
        assert "mail.example.test" in english and "mail.example.test" in spanish
    topic = troubleshooting_topic(cls.help_slug)
    assert topic is not None and topic.code == cls.code
    assert error.as_dict()["help_slug"] == cls.help_slug


def test_topics_are_complete_in_both_languages():
    for topic in all_topics():
        assert topic.causes and topic.fixes
        for text in (topic.title, topic.summary, *topic.causes, *topic.fixes):
            with translation.override("en"):
                english = str(text)
            with translation.override("es"):
                spanish = str(text)
            assert english and spanish and english != spanish, english
    assert troubleshooting_topic("nope") is None
    with translation.override("es"):
        gmail = " ".join(str(f) for f in troubleshooting_topic("login-rejected").causes)
    assert "IMAP" in gmail and "Gmail" in gmail

"""Which MailServerError a low-level exception means.

Order matters: ssl errors are OSErrors, socket.timeout is TimeoutError, and a closed connection
during a TLS handshake is a TLS problem, not a protocol one. Never raises.
"""

from __future__ import annotations

import base64
import errno
import poplib
import smtplib
import socket
import ssl
from typing import TYPE_CHECKING, Any

import aioimaplib

from buzon.mailboxes.errors import (
    AuthenticationFailed,
    CertificateError,
    ConfigurationError,
    ConnectionRefused,
    ConnectTimeout,
    DNSError,
    MailServerError,
    ProtocolError,
    TLSHandshakeError,
)
from buzon.mailboxes.tls_first import answered_in_plain_text

if TYPE_CHECKING:
    from buzon.mailboxes.endpoints import ServerSettings

MAX_DETAIL = 500

# OpenSSL X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code carries them.
_CERT_REASONS = {
    62: "wrong_host", 64: "wrong_host", 10: "expired", 9: "expired", 18: "self_signed", 19: "self_signed",
    20: "unknown_issuer", 2: "unknown_issuer", 21: "unknown_issuer", 23: "revoked",
}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
_CLOSED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, EOFError, smtplib.SMTPServerDisconnected)


def scrub(text: str, settings: ServerSettings | None) -> str:
    """Remove the password (plain, quoted or base64 inside an AUTH line) from technical text."""
    password = settings.password if settings is not None else ""
    if password:
        forms = {password, password.replace("\\", "\\\\").replace('"', '\\"')}
        for raw in (password.encode("utf-8"), f"\0{settings.username}\0{password}".encode() if settings else b""):
            forms.add(base64.b64encode(raw).decode("ascii"))
        for form in sorted(forms, key=len, reverse=True):
            if form:
                text = text.replace(form, "********")
    return text[:MAX_DETAIL]


def _detail(exc: BaseException, settings: ServerSettings | None) -> str:
    text = str(exc).strip()
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        text = f"{exc.smtp_code} {reply}"
    elif isinstance(exc, poplib.error_proto) and exc.args and isinstance(exc.args[0], bytes):
        text = exc.args[0].decode("utf-8", "replace")
    name = type(exc).__name__
    return scrub(f"{name}: {text}" if text else name, settings)


def _tls_stage(settings: ServerSettings | None, stage: str) -> bool:
    if stage in ("tls", "starttls"):
        return True
    return settings is not None and settings.security == "ssl" and stage == "connect"


def classify_exception(exc: BaseException, settings: ServerSettings | None, stage: str) -> MailServerError:
    kwargs: dict[str, Any] = {"stage": stage}
    if settings is not None:
        kwargs.update(host=settings.host, port=settings.port, protocol=settings.protocol, security=settings.security)
    if isinstance(exc, MailServerError):
        for name in ("host", "port", "protocol", "stage", "security"):
            if not getattr(exc, name) and kwargs.get(name):
                setattr(exc, name, kwargs[name])
        return exc
    kwargs["detail"] = _detail(exc, settings)
    error_type = _error_type(exc, settings, stage, kwargs)
    if error_type is ConfigurationError:
        return ConfigurationError(_config_text(exc), **kwargs)
    return error_type(**kwargs)


def _error_type(exc: BaseException, settings: ServerSettings | None, stage: str,
                kwargs: dict[str, Any]) -> type[MailServerError]:
    """Pick the class; may add `reason`/`timeout` to kwargs."""
    if isinstance(exc, socket.gaierror):
        return DNSError
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefused
    if isinstance(exc, TimeoutError | aioimaplib.CommandTimeout) or _timed_out_underneath(exc):
        return ConnectTimeout
    if isinstance(exc, ssl.SSLCertVerificationError):
        kwargs["reason"] = _CERT_REASONS.get(getattr(exc, "verify_code", 0) or 0, "")
        return CertificateError
    if isinstance(exc, ssl.SSLError):
        if settings is not None and settings.security == "ssl" and stage in ("connect", "tls") \
                and answered_in_plain_text(exc):
            kwargs["reason"] = "plaintext"  # SSL/TLS chosen for a port that starts unencrypted
        return TLSHandshakeError
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        kwargs["reason"] = "unreachable"
        return ConnectTimeout
    if isinstance(exc, UnicodeError | ValueError) and not isinstance(exc, aioimaplib.AioImapException):
        return ConfigurationError
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return AuthenticationFailed
    if isinstance(exc, smtplib.SMTPNotSupportedError) and stage == "starttls":
        kwargs["reason"] = "starttls_unsupported"
        return TLSHandshakeError
    if isinstance(exc, _CLOSED):
        if _tls_stage(settings, stage):
            return TLSHandshakeError
        kwargs["reason"] = "closed"
        return ProtocolError
    if isinstance(exc, poplib.error_proto):
        return _pop3_error_type(exc, stage, kwargs)
    if isinstance(exc, aioimaplib.AioImapException | smtplib.SMTPException) and stage == "starttls":
        return TLSHandshakeError
    return ProtocolError


def _timed_out_underneath(exc: BaseException) -> bool:
    """smtplib turns a read timeout into SMTPServerDisconnected; the timeout is its context."""
    inner = exc.__cause__ or exc.__context__
    return isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(inner, TimeoutError)


def _pop3_error_type(exc: poplib.error_proto, stage: str, kwargs: dict[str, Any]) -> type[MailServerError]:
    text = str(exc.args[0] if exc.args else "").lower()
    if stage == "starttls":
        if "not supported" in text:
            kwargs["reason"] = "starttls_unsupported"
        return TLSHandshakeError
    if stage == "login":
        if "plaintext authentication disallowed" in text:
            kwargs["reason"] = "tls_required"
            return TLSHandshakeError
        return AuthenticationFailed
    return ProtocolError


def _config_text(exc: BaseException) -> str:
    from django.utils.translation import gettext

    if isinstance(exc, UnicodeError):
        return gettext(
            "The password or login name contains characters that cannot be sent ASCII-encoded. "
            "Turn off “use ASCII encoding for the password”, or change the password."
        )
    return gettext("The account's settings cannot be used to connect: %(detail)s") % {"detail": str(exc)[:200]}

"""One error hierarchy for everything that talks to a mail server, each with a plain-words message.

`classify()` turns whatever socket, ssl, asyncio, aioimaplib, poplib or smtplib raised into one of
these, so the probe, the sync engine and the sender all report failures the same way. `detail` is
technical text for logs and support; it is scrubbed of the password before it is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from buzon.mailboxes.endpoints import ServerSettings

STAGES: dict[str, Promise] = {
    "connect": _("while connecting"),
    "tls": _("while setting up encryption"),
    "starttls": _("while switching to encryption (STARTTLS)"),
    "greeting": _("while waiting for the server's greeting"),
    "login": _("while logging in"),
    "folder": _("while opening a folder"),
    "stat": _("while counting messages"),
    "send": _("while sending"),
    "config": _("before connecting"),
}

PROTOCOL_NAMES = {"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP"}

# Which of an account's two connections failed, as every message starts.
SERVICES: dict[str, Promise] = {
    "imap": _("Incoming mail (IMAP)"), "pop3": _("Incoming mail (POP3)"), "smtp": _("Outgoing mail (SMTP)"),
}


class MailServerError(Exception):
    """A mail server could not be used. Subclasses fix `code` and `help_slug`."""

    code = "protocol"
    help_slug = "unexpected-answer"

    def __init__(
        self, host: str = "", port: int | None = None, stage: str = "", detail: str = "", *,
        protocol: str = "", reason: str = "", folder: str = "", timeout: float | None = None, security: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.stage = stage
        self.detail = detail
        self.protocol = protocol  # imap | pop3 | smtp, for the message
        self.reason = reason  # a finer cause within the code, e.g. "wrong_host" for a certificate
        self.folder = folder
        self.timeout = timeout
        self.security = security  # ssl | starttls | none: the security mode that was tried
        super().__init__(self.summary())

    def summary(self) -> str:
        """Technical one-liner for logs: never translated, never holds a password."""
        where = f"{self.host}:{self.port}" if self.port else self.host
        parts = [self.code, where or "?", self.stage or "-"]
        if self.reason:
            parts.append(self.reason)
        return " ".join(parts) + (f": {self.detail}" if self.detail else "")

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary()!r})"

    @property
    def where(self) -> str:
        if self.port:
            return gettext("%(host)s (port %(port)s)") % {"host": self.host, "port": self.port}
        return self.host

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES.get(self.protocol, gettext("mail"))

    @property
    def stage_text(self) -> str:
        stage = STAGES.get(self.stage)
        return str(stage) if stage is not None else ""

    def params(self) -> dict[str, Any]:
        return {
            "host": self.host, "port": self.port, "where": self.where, "protocol": self.protocol_name,
            "stage": self.stage_text, "folder": self.folder, "detail": self.detail,
            "seconds": f"{self.timeout:g}" if self.timeout else "",
        }

    def message(self) -> str:
        """What failed, in plain words and the active language: which service (incoming IMAP or POP3,
        outgoing SMTP), then what happened, naming the server."""
        service = SERVICES.get(self.protocol)
        if service is None:
            return self.explain()
        return gettext("%(service)s: %(explanation)s") % {"service": service, "explanation": self.explain()}

    def explain(self) -> str:
        """What happened, naming the server (message() says which service first)."""
        return gettext("The %(protocol)s server %(where)s could not be used.") % self.params()

    def as_state(self) -> dict[str, Any]:
        """What is kept on the account so the message can be shown in each reader's language
        (EmailAccount.error_message); never holds a password."""
        state: dict[str, Any] = {"code": self.code, "host": self.host, "port": self.port, "stage": self.stage,
                                 "detail": self.detail, "protocol": self.protocol, "reason": self.reason,
                                 "folder": self.folder, "timeout": self.timeout, "security": self.security}
        return {key: value for key, value in state.items() if value not in ("", None)}

    @staticmethod
    def from_state(state: dict[str, Any]) -> MailServerError | None:
        """The error as_state() described, or None for one this version does not know."""
        cls = ERRORS_BY_CODE.get(str(state.get("code", "")))
        if cls is None or cls is ConfigurationError:
            return None  # its text is free-form: the stored text is all there is
        known = ("host", "port", "stage", "detail", "protocol", "reason", "folder", "timeout", "security")
        return cls(**{key: state[key] for key in known if key in state})

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "message": self.message(), "help_slug": self.help_slug, "host": self.host,
            "port": self.port, "stage": self.stage, "reason": self.reason, "detail": self.detail,
        }


class DNSError(MailServerError):
    code = "dns"
    help_slug = "unknown-host"

    def explain(self) -> str:
        return gettext(
            "The server name “%(host)s” could not be found. Check it for typos; it must be a name "
            "that exists in DNS, such as imap.example.com."
        ) % self.params()


class ConnectionRefused(MailServerError):
    code = "refused"
    help_slug = "connection-refused"

    def explain(self) -> str:
        return gettext(
            "%(host)s refused the connection on port %(port)s: nothing accepts connections there. "
            "Check the port number and that the server is running."
        ) % self.params()


class ConnectTimeout(MailServerError):
    code = "timeout"
    help_slug = "no-answer"

    def explain(self) -> str:
        if self.reason == "unreachable":
            return gettext(
                "%(where)s could not be reached: the network has no route to it. A firewall or a network "
                "problem is in the way."
            ) % self.params()
        if self.params()["seconds"]:
            return gettext(
                "%(where)s did not answer within %(seconds)s seconds %(stage)s. A firewall may be blocking "
                "the port, or the server is down or overloaded."
            ) % self.params()
        return gettext(
            "%(where)s did not answer in time %(stage)s. A firewall may be blocking the port, or the "
            "server is down or overloaded."
        ) % self.params()


class TLSHandshakeError(MailServerError):
    code = "tls"
    help_slug = "tls-handshake"

    def explain(self) -> str:
        if self.reason == "tls_expected" and self.security == "none":
            return gettext(
                "The server at port %(port)s (%(host)s) expects TLS from the first byte: choose SSL/TLS instead "
                "of no encryption."
            ) % self.params()
        if self.reason == "tls_expected":
            return gettext(
                "The server at port %(port)s (%(host)s) expects TLS from the first byte: choose SSL/TLS instead "
                "of STARTTLS."
            ) % self.params()
        if self.reason == "plaintext":
            return gettext(
                "The server at port %(port)s (%(host)s) answered without encryption, so it does not expect TLS "
                "from the first byte: choose STARTTLS instead of SSL/TLS."
            ) % self.params()
        if self.reason == "starttls_unsupported":
            return gettext(
                "%(where)s does not offer STARTTLS. Choose SSL/TLS if the port expects encryption from "
                "the start (993, 995, 465), or check the port."
            ) % self.params()
        if self.reason == "tls_required":
            return gettext(
                "%(where)s refuses to log in without encryption. Choose SSL/TLS or STARTTLS as security."
            ) % self.params()
        return gettext(
            "A secure (TLS) connection to %(where)s could not be set up %(stage)s. The security setting "
            "probably does not match the port: SSL/TLS for 993, 995 and 465; STARTTLS for 143, 110 and 587."
        ) % self.params()


CERTIFICATE_REASONS: dict[str, Promise] = {
    "wrong_host": _("it was issued for a different server name"),
    "expired": _("it has expired or is not valid yet"),
    "self_signed": _("it is self-signed"),
    "unknown_issuer": _("it was issued by an authority this machine does not trust"),
    "revoked": _("it has been revoked"),
}


class CertificateError(MailServerError):
    code = "certificate"
    help_slug = "certificate"

    def explain(self) -> str:
        why = CERTIFICATE_REASONS.get(self.reason)
        if why is not None:
            return gettext(
                "The certificate of %(where)s cannot be trusted: %(why)s. Use the server name the "
                "certificate was issued for, or turn off certificate checks only if you trust this server."
            ) % {**self.params(), "why": why}
        return gettext(
            "The certificate of %(where)s could not be verified. Use the server name the certificate was "
            "issued for, or turn off certificate checks only if you trust this server."
        ) % self.params()


class AuthenticationFailed(MailServerError):
    code = "auth"
    help_slug = "login-rejected"

    def explain(self) -> str:
        if self.reason == "revoked":
            return gettext(
                "The provider no longer accepts Buzón's sign-in for this mailbox (consent was revoked or "
                "the password changed). Open the account and sign in with the provider again.")
        return gettext(
            "%(where)s rejected the login name or password. Check both; many providers need an app "
            "password, or IMAP/POP access switched on in the mailbox's settings."
        ) % self.params()


class ProtocolError(MailServerError):
    code = "protocol"
    help_slug = "unexpected-answer"

    def explain(self) -> str:
        if self.reason == "no_auth":
            return gettext(
                "%(where)s does not offer a login (SMTP AUTH). If it is a relay that accepts mail from this "
                "machine without one, turn off “SMTP server requires authentication”."
            ) % self.params()
        if self.reason == "closed":
            return gettext(
                "%(where)s closed the connection %(stage)s. Check the port and the security setting."
            ) % self.params()
        return gettext(
            "%(where)s did not answer the way a %(protocol)s mail server should %(stage)s. Check that the "
            "port belongs to the %(protocol)s service and that the protocol is right."
        ) % self.params()


class FolderMissing(MailServerError):
    code = "folder"
    help_slug = "missing-folder"

    def explain(self) -> str:
        return gettext(
            "The folder “%(folder)s” does not exist on %(host)s, or this account may not open it. "
            "Check its exact name and letter case (for example INBOX or Sent)."
        ) % self.params()


class ConfigurationError(MailServerError):
    """The account's settings themselves are wrong; `text` says how (already translatable)."""

    code = "config"
    help_slug = "configuration"

    def __init__(self, text: str | Promise, **kwargs: Any) -> None:
        self.text = text
        kwargs.setdefault("stage", "config")
        super().__init__(**kwargs)

    def summary(self) -> str:
        base = super().summary()
        return base if self.detail else f"{base}: {self.text}"

    def explain(self) -> str:
        return str(self.text)


class AddressRefused(MailServerError):
    """The server name or port is one Buzón refuses to connect to (see mailboxes.guard)."""

    code = "blocked"
    help_slug = "blocked-address"

    def explain(self) -> str:
        if self.reason == "port":
            return gettext(
                "Port %(port)s is not a mail port, so Buzón does not test connections to it. Mail servers use "
                "993 or 143 (IMAP), 995 or 110 (POP3) and 465, 587 or 25 (SMTP); an administrator can allow "
                "other ports with BUZON_PROBE_ALLOWED_PORTS."
            ) % self.params()
        if self.reason == "private":
            return gettext(
                "%(host)s is an address on this machine or a private network, and this installation does not "
                "connect to those (BUZON_PROBE_ALLOW_PRIVATE is off)."
            ) % self.params()
        return gettext(
            "Buzón never connects to %(host)s: it is a link-local or cloud-metadata address, not a mail server."
        ) % self.params()


ERRORS_BY_CODE: dict[str, type[MailServerError]] = {
    cls.code: cls
    for cls in (DNSError, ConnectionRefused, ConnectTimeout, TLSHandshakeError, CertificateError,
                AuthenticationFailed, ProtocolError, FolderMissing, ConfigurationError, AddressRefused)
}


def classify(exc: BaseException, settings: ServerSettings | None, stage: str) -> MailServerError:
    """Map what a socket, ssl, asyncio or mail library raised to one MailServerError (see classify.py)."""
    from buzon.mailboxes.classify import classify_exception

    return classify_exception(exc, settings, stage)


__all__ = [
    "MailServerError", "DNSError", "ConnectionRefused", "ConnectTimeout", "TLSHandshakeError",
    "CertificateError", "AuthenticationFailed", "ProtocolError", "FolderMissing", "ConfigurationError",
    "AddressRefused",
    "ERRORS_BY_CODE", "classify",
]

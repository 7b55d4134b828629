"""Where an account connects: its own settings, else its domain's, else its provider's preset.

Everything that opens a connection (probe, sync, send) asks here, so inheritance has one rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.mailboxes.presets import PRESETS, Endpoint, Preset, preset_for_address

DEFAULT_PORTS = {
    ("imap", "ssl"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
    ("pop3", "ssl"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110,
    ("smtp", "ssl"): 465, ("smtp", "starttls"): 587, ("smtp", "none"): 25,
}


@dataclass(frozen=True)
class ServerSettings:
    protocol: str  # imap | pop3 | smtp
    host: str
    port: int
    security: str  # ssl | starttls | none
    tls_verify: bool
    username: str
    password: str = field(repr=False)
    ascii_password: bool = False
    auth: bool = True
    oauth_token: str = field(default="", repr=False)  # set: log in with XOAUTH2/OAUTHBEARER, not the password
    # Where a long-lived connection (sync, the sender's pool) gets a fresh token once this one expires.
    oauth_account_id: int | None = None
    oauth_expires: float = 0.0  # epoch seconds

    def __str__(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port} ({self.security})"


class MissingServer(ValueError):
    """The account has no server to connect to: no own setting, no domain, no known provider."""


def provider_preset(account: EmailAccount) -> Preset | None:
    domain: EmailDomain | None = account.domain
    if domain is not None and domain.preset:
        return PRESETS.get(domain.preset)
    return preset_for_address(account.email_address)


def _pick(*values: object) -> object:
    for value in values:
        if value not in (None, ""):
            return value
    return None


def incoming_settings(account: EmailAccount, password: str | None = None) -> ServerSettings:
    domain = account.domain
    preset = provider_preset(account)
    protocol = str(_pick(account.incoming_protocol, domain and domain.incoming_protocol, "imap"))
    preset_ep: Endpoint | None = None
    if preset is not None:
        preset_ep = preset.imap if protocol == "imap" else preset.pop3
    host = _pick(account.incoming_host, domain and domain.incoming_host, preset_ep and preset_ep.host)
    if not host:
        raise MissingServer(account.email_address)
    security = str(_pick(account.incoming_security, domain and domain.incoming_security,
                         preset_ep and preset_ep.security, "ssl"))
    port = _pick(account.incoming_port, domain and domain.incoming_port,
                 preset_ep and preset_ep.port if preset_ep and preset_ep.security == security else None)
    return ServerSettings(
        protocol=protocol, host=str(host), port=int(port or DEFAULT_PORTS[(protocol, security)]),  # type: ignore[call-overload]
        security=security, tls_verify=account.tls_verify and (domain.tls_verify if domain else True),
        ascii_password=account.ascii_password, username=account.login_name, **_secret(account, password),
    )


def smtp_settings(account: EmailAccount, password: str | None = None) -> ServerSettings:
    domain = account.domain
    preset = provider_preset(account)
    preset_ep = preset.smtp if preset else None
    host = _pick(account.smtp_host, domain and domain.smtp_host, preset_ep and preset_ep.host)
    if not host:
        raise MissingServer(account.email_address)
    security = str(_pick(account.smtp_security, domain and domain.smtp_security,
                         preset_ep and preset_ep.security, "starttls"))
    port = _pick(account.smtp_port, domain and domain.smtp_port,
                 preset_ep and preset_ep.port if preset_ep and preset_ep.security == security else None)
    auth = account.smtp_auth if account.smtp_auth is not None else (domain.smtp_auth if domain else True)
    return ServerSettings(
        protocol="smtp", host=str(host), port=int(port or DEFAULT_PORTS[("smtp", security)]),  # type: ignore[call-overload]
        security=security, tls_verify=account.tls_verify and (domain.tls_verify if domain else True),
        ascii_password=account.ascii_password, auth=bool(auth), username=account.login_name,
        **_secret(account, password),
    )


def _secret(account: EmailAccount, password: str | None) -> dict[str, Any]:
    """The login: a password being tried, else a signed-in provider's access token (refreshed when due,
    mailboxes.oauth), else the stored password."""
    if password is None and account.uses_oauth:
        from buzon.mailboxes.oauth import access_token

        token = access_token(account)
        expires = account.oauth_expires_at.timestamp() if account.oauth_expires_at else 0.0
        return {"password": "", "oauth_token": token, "oauth_account_id": account.pk, "oauth_expires": expires}
    return {"password": account.get_password() if password is None else password}


def attachment_limit_mb(account: EmailAccount) -> int:
    if account.attachment_limit_mb is not None:
        return account.attachment_limit_mb
    return account.domain.attachment_limit_mb if account.domain else 25

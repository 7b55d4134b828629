"""The outgoing account a hosted install's implementer provides: BUZON_SYSTEM_SMTP_URL.

    smtps://user:pass@smtp.example.com:465          implicit TLS
    smtp+starttls://user:pass@smtp.example.com:587  STARTTLS
    smtp://relay.internal:25                         plain, no login (a trusted relay)

Optional query: `from=noreply@example.com` (the sender address; default: the user name if it is an
address, else noreply@<host>), `name=Display Name`, `verify=0` (self-signed relay). The account
appears as the default outgoing account, read-only, its secret never shown. It is created or
updated by `ensure_system_account()`, which runs after every `migrate` and from
`buzon system-account`; removing the variable disables it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction

from buzon.mailboxes.endpoints import DEFAULT_PORTS
from buzon.mailboxes.models import AccountState, EmailAccount

log = logging.getLogger(__name__)

SCHEMES = {"smtp": "none", "smtps": "ssl", "smtp+ssl": "ssl", "smtp+starttls": "starttls"}


class SystemSMTPURLError(ValueError):
    """BUZON_SYSTEM_SMTP_URL cannot be understood; the message never contains the password."""


@dataclass(frozen=True)
class SystemSMTP:
    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)
    from_address: str
    display_name: str
    tls_verify: bool


def parse_system_smtp_url(url: str) -> SystemSMTP:
    parts = urlsplit(url.strip())
    security = SCHEMES.get(parts.scheme.lower())
    if security is None:
        raise SystemSMTPURLError(
            f"BUZON_SYSTEM_SMTP_URL must start with smtp://, smtps:// or smtp+starttls://, not {parts.scheme!r}://"
        )
    try:
        port = parts.port or DEFAULT_PORTS[("smtp", security)]
    except ValueError as exc:
        raise SystemSMTPURLError("BUZON_SYSTEM_SMTP_URL has an invalid port") from exc
    if not parts.hostname:
        raise SystemSMTPURLError("BUZON_SYSTEM_SMTP_URL names no host")
    query = parse_qs(parts.query)
    username = unquote(parts.username or "")
    from_address = (query.get("from") or [""])[0] or (username if "@" in username else f"noreply@{parts.hostname}")
    return SystemSMTP(
        host=parts.hostname, port=port, security=security, username=username,
        password=unquote(parts.password or ""), from_address=from_address.strip().lower(),
        display_name=(query.get("name") or [""])[0],
        tls_verify=(query.get("verify") or ["1"])[0].lower() not in {"0", "false", "no", "off"},
    )


def ensure_system_account(url: str | None = None) -> EmailAccount | None:
    """Create, update or (when the variable is gone) disable the system account. Never probes:
    it runs at start-up, which must not wait on the network."""
    url = settings.SYSTEM_SMTP_URL if url is None else url
    if not url:
        _retire()
        return None
    config = parse_system_smtp_url(url)
    try:
        with transaction.atomic():
            return _apply(config)
    except IntegrityError:
        log.error("BUZON_SYSTEM_SMTP_URL: an ordinary account already uses %s; the system account was not set up",
                  config.from_address)
        return None


def _apply(config: SystemSMTP) -> EmailAccount:
    account = EmailAccount.objects.select_for_update().filter(is_system=True).first() or EmailAccount(is_system=True)
    created = account.pk is None
    account.email_address = config.from_address
    account.display_name = config.display_name or account.display_name
    account.login = config.username if config.username != config.from_address else ""
    account.smtp_host, account.smtp_port, account.smtp_security = config.host, config.port, config.security
    account.smtp_auth = bool(config.username)
    account.tls_verify = config.tls_verify
    account.outgoing_enabled, account.incoming_enabled, account.default_incoming = True, False, False
    account.awaiting_password = False
    if config.password and (not account.has_password or account.get_password() != config.password):
        account.set_password(config.password)
    elif not config.password:
        account.password_encrypted = ""
    if account.state in ("", AccountState.DISABLED, AccountState.AWAITING_PASSWORD):
        account.state = AccountState.IDLE
    others = EmailAccount.objects.exclude(pk=account.pk) if account.pk else EmailAccount.objects.all()
    if created or not others.filter(default_outgoing=True, outgoing_enabled=True).exists():
        others.filter(default_outgoing=True).update(default_outgoing=False)
        account.default_outgoing = True
    account.save()
    return account


def _retire() -> None:
    account = EmailAccount.objects.filter(is_system=True, outgoing_enabled=True).first()
    if account is None:
        return
    with transaction.atomic():
        was_default = account.default_outgoing
        account.outgoing_enabled = account.default_outgoing = False
        account.state = AccountState.DISABLED
        account.save()
        if was_default:
            successor = EmailAccount.objects.filter(outgoing_enabled=True).order_by("pk").first()
            if successor is not None:
                EmailAccount.objects.filter(pk=successor.pk).update(default_outgoing=True)

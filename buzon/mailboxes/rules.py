"""The rules an email account or domain must meet before it is saved.

Each check adds plain-words messages to an `Errors` map keyed by field name; services.py raises them
together as one ValidationError, so a form shows every problem at once. Nothing here talks to a
mail server (that is probe.py) or writes to the database (that is services.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import unicodedata
from collections import defaultdict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from buzon.mailboxes.hostnames import valid_server
from buzon.mailboxes.models import EmailAccount, EmailDomain, IncomingProtocol, Security
from buzon.mailboxes.presets import preset_for_address

DIRECTIONS = ("incoming", "outgoing")
MAX_FOLDER_LENGTH = 255


class Errors(defaultdict[str, list[ValidationError]]):
    def __init__(self) -> None:
        super().__init__(list)

    def add(self, field: str, message: str, code: str = "invalid", params: dict[str, object] | None = None) -> None:
        # Django applies `message % params` when params are given, so a literal "%" must be doubled then.
        self[field].append(ValidationError(message.replace("%", "%%") if params else message, code=code, params=params))

    def raise_if_any(self) -> None:
        if any(self.values()):
            raise ValidationError({field: messages for field, messages in self.items() if messages})


def direction_label(direction: str) -> str:
    return _("incoming") if direction == "incoming" else _("outgoing")


def account_domain(account: EmailAccount) -> EmailDomain | None:
    """The account's Email Domain: the one chosen, else the one named like its address's domain."""
    if account.domain_id is not None:
        return account.domain
    return EmailDomain.objects.filter(domain_name__iexact=account.address_domain).first()


def check_address_has_server(account: EmailAccount, errors: Errors) -> None:
    """An address on a known provider needs no domain; any other needs an Email Domain first."""
    if account.is_template or preset_for_address(account.email_address) is not None:
        return
    if account.domain_id is not None or not account.address_domain:
        return
    errors.add("email_address", _(
        "“%(domain)s” is not a known email provider. Create an Email Domain for “%(domain)s” first, "
        "with its incoming and outgoing servers."
    ) % {"domain": account.address_domain}, code="domain_required")


def check_template_address(account: EmailAccount, errors: Errors) -> None:
    if account.is_template and (account.incoming_enabled or account.outgoing_enabled):
        errors.add("email_address", _(
            "This is a template account: give it a real email address before enabling it."
        ), code="template_address")


def check_choices(account: EmailAccount, errors: Errors) -> None:
    if account.incoming_protocol and account.incoming_protocol not in IncomingProtocol.values:
        errors.add("incoming_protocol", _("Choose IMAP or POP3."))
    for field in ("incoming_security", "smtp_security"):
        value = getattr(account, field)
        if value and value not in Security.values:
            errors.add(field, _("Choose SSL/TLS, STARTTLS or none."))
    for field in ("incoming_host", "smtp_host"):
        value = getattr(account, field).strip()
        setattr(account, field, value)
        if value and not valid_server(value):
            errors.add(field, _("“%(name)s” is not a server name such as mail.example.com.") % {"name": value[:80]})
    for field in ("incoming_port", "smtp_port"):
        value = getattr(account, field)
        if value is not None and not 1 <= value <= 65535:
            errors.add(field, _("A port is a number from 1 to 65535."))
    if account.attachment_limit_mb is not None and account.attachment_limit_mb < 1:
        errors.add("attachment_limit_mb", _("The attachment limit must be at least 1 MB."))


def check_pop3_offered(account: EmailAccount, errors: Errors) -> None:
    domain = account.domain
    protocol = account.incoming_protocol or (domain.incoming_protocol if domain else "imap")
    if not account.incoming_enabled or protocol != "pop3" or account.incoming_host or (domain and domain.incoming_host):
        return
    from buzon.mailboxes.endpoints import provider_preset

    preset = provider_preset(account)
    if preset is not None and preset.pop3 is None:
        errors.add("incoming_protocol", _("%(provider)s does not offer POP3: choose IMAP.") % {"provider": preset.name})


def normalise_folders(account: EmailAccount, errors: Errors) -> None:
    """IMAP syncs the folders listed (INBOX when none); names are kept exactly as typed, minus blanks."""
    raw = account.folders if isinstance(account.folders, list) else None
    if raw is None:
        errors.add("folders", _("List folder names, one per entry."))
        return
    folders: list[str] = []
    for item in raw:
        name = str(item).strip() if item is not None else ""
        if not name or name in folders:
            continue
        if any(ch in name for ch in "\r\n\0") or len(name) > MAX_FOLDER_LENGTH:
            errors.add("folders", _("“%(name)s” is not a valid folder name.") % {"name": name[:60]})
            continue
        folders.append(name)
    account.folders = folders or ["INBOX"]


def check_append_to(account: EmailAccount, errors: Errors) -> None:
    """`append_to` must name a registered record type.

    The registry lives in buzon.messages (a layer that builds on this one), so it is looked up at
    run time, and the check is skipped on an install without it.
    """
    if not account.append_to:
        return
    if importlib.util.find_spec("buzon.messages.targets") is None:
        return
    targets = importlib.import_module("buzon.messages.targets")
    known = dict(targets.targets())
    if account.append_to not in known:
        names = ", ".join(f"{key} ({label})" for key, label in known.items()) or _("none")
        errors.add("append_to", _("“%(value)s” is not a kind of record mail can create. Choose one of: %(names)s.")
                   % {"value": account.append_to, "names": names}, code="unknown_target")


def check_options(account: EmailAccount, errors: Errors) -> None:
    """Options that need a companion value to mean anything; a display name fit for a From header."""
    if any(char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in account.display_name):
        # Every mail from the account carries it in its From: a line break would end that header.
        errors.add("display_name", _("The display name must be a single line, without line breaks or control "
                                     "characters."))
    if account.auto_reply_enabled and not account.auto_reply_message.strip():
        errors.add("auto_reply_message", _("Write the automatic reply, or turn automatic replies off."))
    if account.add_signature and not account.signature.strip():
        errors.add("signature", _("Write the signature, or turn “add signature” off."))
    recipients = [part.strip() for part in account.notify_unreplied_to.split(",") if part.strip()]
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            errors.add("notify_unreplied_to", _("“%(address)s” is not an email address.") % {"address": address[:80]})
    account.notify_unreplied_to = ", ".join(recipients)
    if account.notify_unreplied_after_minutes is not None and not recipients:
        errors.add("notify_unreplied_to", _("Say who is notified when mail stays unreplied."))
    if recipients and not account.notify_unreplied_after_minutes:
        errors.add("notify_unreplied_after_minutes", _("Say after how many minutes unreplied mail is notified."))


def check_store_limit(account: EmailAccount, errors: Errors) -> None:
    if not account.incoming_enabled or account.store_id is None:
        return
    limit = settings.MAX_INCOMING_ACCOUNTS_PER_STORE
    others = EmailAccount.objects.filter(store_id=account.store_id, incoming_enabled=True).exclude(pk=account.pk)
    if others.count() >= limit:
        errors.add("store", _(
            "The store “%(store)s” already has %(limit)s incoming email accounts, the most allowed "
            "(the BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE setting). Disable one of them, or use another store."
        ) % {"store": account.store, "limit": limit}, code="store_limit")


def check_defaults(account: EmailAccount, previous: EmailAccount | None, errors: Errors) -> None:
    """The default account of a direction cannot be disabled or un-marked while others remain."""
    for direction in DIRECTIONS:
        if previous is None or not (previous.enabled_for(direction) and previous.is_default_for(direction)):
            continue
        others = enabled_accounts(direction).exclude(pk=account.pk).exists()
        if not others:
            continue
        if not account.enabled_for(direction):
            errors.add(f"{direction}_enabled", _(
                "This is the default %(direction)s account. Mark another account as the default "
                "%(direction)s account before disabling this one."
            ) % {"direction": direction_label(direction)}, code="default_required")
        elif not account.is_default_for(direction):
            errors.add(f"default_{direction}", _(
                "An account must stay the default %(direction)s account: mark another account as "
                "default instead, which moves the mark."
            ) % {"direction": direction_label(direction)}, code="default_required")


def enabled_accounts(direction: str) -> QuerySet[EmailAccount]:
    field = "incoming_enabled" if direction == "incoming" else "outgoing_enabled"
    return EmailAccount.objects.filter(**{field: True})

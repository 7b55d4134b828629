"""What the web UI and the API do to accounts and domains: validate, probe, save, delete.

Every change to an EmailAccount goes through here, so the rules (rules.py) hold whichever face
made it. Errors are one django ValidationError keyed by field name, in the active language; a
probe failure carries its troubleshooting page in `params["help_slug"]`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.mailboxes import audit, guard, rules
from buzon.mailboxes.errors import MailServerError
from buzon.mailboxes.models import AccountState, EmailAccount, EmailDomain
from buzon.mailboxes.probe import ProbeReport, probe_account
from buzon.mailboxes.rules import DIRECTIONS, Errors

_HOST_CODES = {"dns", "refused", "timeout", "tls", "certificate", "protocol"}
# Written by the sync engine while an admin may be editing; a settings save must not overwrite them.
_SYNC_OWNED = {"id", "created_at", "last_synced_at"}


def _refuse_system(account: EmailAccount) -> None:
    previous = EmailAccount.objects.filter(pk=account.pk).first() if account.pk else None
    if account.is_system or (previous is not None and previous.is_system):
        raise ValidationError(_(
            "This outgoing account is set up by the installation (BUZON_SYSTEM_SMTP_URL) and cannot be "
            "changed or deleted here."
        ), code="system_account")


def probe_field(error: MailServerError, direction: str) -> str:
    """The form field a probe failure is about."""
    if error.code == "auth":
        return "password"
    if error.code == "folder":
        return "folders"
    if error.code == "config":
        return "password" if error.reason == "no_password" else "__all__"
    if error.code in _HOST_CODES:
        return "incoming_host" if direction == "incoming" else "smtp_host"
    return "__all__"


def report_errors(report: ProbeReport) -> Errors:
    errors = Errors()
    for result in report.results:
        if result.error is None:
            continue
        error = result.error
        errors.add(probe_field(error, result.direction), error.message(), code=error.code, params={
            "help_slug": error.help_slug, "direction": result.direction, "server": result.server,
            "detail": error.detail,
        })
    return errors


def _needs_password(account: EmailAccount) -> bool:
    if account.awaiting_password or account.uses_oauth:
        return False
    domain = account.domain
    smtp_auth = account.smtp_auth if account.smtp_auth is not None else (domain.smtp_auth if domain else True)
    return account.incoming_enabled or (account.outgoing_enabled and bool(smtp_auth))


def _validate(account: EmailAccount, previous: EmailAccount | None, has_password: bool) -> Errors:
    errors = Errors()
    account.email_address = account.email_address.strip()
    try:
        account.full_clean(exclude=["password_encrypted"], validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.error_dict.items():
            errors[field].extend(messages)
    rules.check_template_address(account, errors)
    rules.check_address_has_server(account, errors)
    rules.check_choices(account, errors)
    rules.check_pop3_offered(account, errors)
    rules.normalise_folders(account, errors)
    rules.check_append_to(account, errors)
    rules.check_options(account, errors)
    _check_shared(account, previous, errors)
    if _needs_password(account) and not has_password:
        errors.add("password", _("Enter the account's password, or mark it as awaiting the password."),
                   code="password_required")
    return errors


def _check_shared(account: EmailAccount, previous: EmailAccount | None, errors: Errors) -> None:
    """Rules that depend on the other accounts: checked before probing and again under the lock."""
    rules.check_store_limit(account, errors)
    rules.check_defaults(account, previous, errors)


def _state(account: EmailAccount) -> str:
    if not (account.incoming_enabled or account.outgoing_enabled):
        return AccountState.DISABLED
    if account.awaiting_password:
        return AccountState.AWAITING_PASSWORD
    return AccountState.IDLE


def _apply_defaults(account: EmailAccount) -> None:
    """First enabled account of a direction becomes its default; marking one moves the mark."""
    for direction in DIRECTIONS:
        field = f"default_{direction}"
        enabled = "incoming_enabled" if direction == "incoming" else "outgoing_enabled"
        others = EmailAccount.objects.exclude(pk=account.pk)
        others.filter(**{field: True, enabled: False}).update(**{field: False})  # stale marks on disabled ones
        if not account.enabled_for(direction):
            setattr(account, field, False)
        elif getattr(account, field):
            others.filter(**{field: True}).update(**{field: False})
        elif not others.filter(**{field: True}).exists():
            setattr(account, field, True)


def _lock_accounts() -> None:
    """Serialise account writes so the default and store-limit checks see every committed account.

    Row locks would miss the accounts being created concurrently (two "first" accounts, two 10th
    accounts of a store), so PostgreSQL locks the table against other writers for this short
    transaction (reads go on; no network I/O happens inside it). SQLite already has one writer at a
    time (the settings open transactions IMMEDIATE).
    """
    if connection.vendor != "postgresql":
        return
    table = connection.ops.quote_name(EmailAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


def save_account(account: EmailAccount, *, password: str | None = None, probe: bool = True,
                 may_choose_defaults: bool = True) -> EmailAccount:
    """Validate, probe the enabled directions (unless awaiting a password), and save atomically.

    A new `password` is tested before it is stored, encrypted. Giving one ends `awaiting_password`.
    Marking the account as a default moves the mark to it; `may_choose_defaults` is whether the
    person saving may do that (roles.may_choose_default_accounts).
    """
    _refuse_system(account)
    previous = EmailAccount.objects.filter(pk=account.pk).first() if account.pk else None
    password = password or None
    if password is not None:
        account.awaiting_password = False
    if account.domain_id is None:
        account.domain = rules.account_domain(account)
    errors = _validate(account, previous, has_password=password is not None or account.has_password)
    if not may_choose_defaults:
        _refuse_new_default_marks(account, previous, errors)
    errors.raise_if_any()
    wants_probe = probe and not account.awaiting_password and (account.incoming_enabled or account.outgoing_enabled)
    if wants_probe:
        _take_probe_slot(saving=True)
        report = probe_account(account, password, incoming=account.incoming_enabled,
                               outgoing=account.outgoing_enabled)
        report_errors(report).raise_if_any()
        account.last_error, account.last_error_code, account.last_error_state = "", "", {}
        account.last_contact_at = timezone.now()
    account.state = _state(account)
    if password is not None:
        account.set_password(password)
    with transaction.atomic():
        _lock_accounts()
        shared = Errors()
        _check_shared(account, previous, shared)
        shared.raise_if_any()
        _apply_defaults(account)
        if previous is None:
            account.save()
        else:
            fields = [f.name for f in EmailAccount._meta.concrete_fields if f.name not in _SYNC_OWNED]
            account.save(update_fields=fields)
    return account


def refuse_new_default_marks(account: EmailAccount, previous: EmailAccount | None = None) -> None:
    """Raise a ValidationError naming each default mark `account` would take from another account."""
    errors = Errors()
    _refuse_new_default_marks(account, previous, errors)
    errors.raise_if_any()


def _refuse_new_default_marks(account: EmailAccount, previous: EmailAccount | None, errors: Errors) -> None:
    """The default accounts are the whole installation's (answers to the company, notifications and
    bulk mail go through them), so only an administrator moves a mark from the account that holds it,
    as with the star on the list. (With no holder, the first enabled account takes it anyway.)"""
    for direction in DIRECTIONS:
        field = f"default_{direction}"
        if not getattr(account, field) or (previous is not None and getattr(previous, field)):
            continue
        held = EmailAccount.objects.exclude(pk=account.pk).filter(
            **{field: True, "incoming_enabled" if direction == "incoming" else "outgoing_enabled": True})
        if held.exists():
            errors.add(field, _("Only an administrator chooses the default accounts: they serve the whole "
                                "installation."), code="default_admins_only")


def _take_probe_slot(*, saving: bool = False) -> None:
    """Probes are rate-limited per user (guard.take_probe_slot), so they cannot scan a network.

    A save reports the limit as a validation error (the form shows it); a bare test raises
    guard.ProbeRateLimited for the caller to answer 429.
    """
    user = audit.current_user()
    try:
        guard.take_probe_slot(user.pk if user is not None else None)
    except guard.ProbeRateLimited as exc:
        if saving:
            raise ValidationError(exc.message(), code="rate_limited") from exc
        raise


def test_account(account: EmailAccount, password: str | None = None) -> ProbeReport:
    """Probe the enabled directions without saving; a direction that is off is left as None.

    Raises guard.ProbeRateLimited when the acting user has probed too often in the last minute.
    """
    if account.domain_id is None:
        account.domain = rules.account_domain(account)
    if not (account.incoming_enabled or account.outgoing_enabled):
        return ProbeReport()
    _take_probe_slot()
    return probe_account(account, password or None, incoming=account.incoming_enabled,
                         outgoing=account.outgoing_enabled)


def delete_account(account: EmailAccount) -> None:
    _refuse_system(account)
    with transaction.atomic():
        _lock_accounts()
        current = EmailAccount.objects.filter(pk=account.pk).first()
        if current is None:
            return
        for direction in DIRECTIONS:
            if not (current.enabled_for(direction) and current.is_default_for(direction)):
                continue
            if rules.enabled_accounts(direction).exclude(pk=current.pk).exists():
                raise ValidationError(_(
                    "This is the default %(direction)s account. Mark another account as the default "
                    "%(direction)s account before deleting this one."
                ) % {"direction": rules.direction_label(direction)}, code="default_required")
        try:
            current.delete()
        except ProtectedError:
            raise ValidationError(_(
                "Mail or records are stored for this account, so it cannot be deleted. Disable it instead."
            ), code="protected") from None


def set_default(account: EmailAccount, direction: str) -> EmailAccount:
    """Make `account` the default for "incoming" or "outgoing", moving the mark from the current one."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    field = f"default_{direction}"
    with transaction.atomic():
        _lock_accounts()
        current = EmailAccount.objects.get(pk=account.pk)
        if not current.enabled_for(direction):
            raise ValidationError({field: ValidationError(_(
                "Enable %(direction)s email on this account before making it the default."
            ) % {"direction": rules.direction_label(direction)}, code="not_enabled")})
        for previous in EmailAccount.objects.exclude(pk=current.pk).filter(**{field: True}):
            audit.record(previous, "changed", [{"field": field, "old": True, "new": False}])
        EmailAccount.objects.exclude(pk=current.pk).filter(**{field: True}).update(**{field: False})
        EmailAccount.objects.filter(pk=current.pk).update(**{field: True})
        if not getattr(current, field):
            audit.record(current, "changed", [{"field": field, "old": False, "new": True}])
    setattr(account, field, True)
    return account


def save_domain(domain: EmailDomain) -> EmailDomain:
    """Validate and save a domain; accounts on it that had no domain yet now inherit from it."""
    from buzon.mailboxes.domains import clean_domain

    clean_domain(domain)
    with transaction.atomic():
        domain.save()
        EmailAccount.objects.filter(domain=None, email_address__iendswith="@" + domain.domain_name).update(
            domain=domain
        )
    return domain


def delete_domain(domain: EmailDomain) -> None:
    try:
        domain.delete()
    except ProtectedError:
        raise ValidationError(_(
            "Email accounts still use the domain “%(domain)s”. Delete them or move them to another domain first."
        ) % {"domain": domain.domain_name}, code="protected") from None

"""save_account() and friends: validation, probing, defaults, limits, against real servers."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from buzon.crm.models import Store
from buzon.mailboxes import services
from buzon.mailboxes.models import AccountState, EmailAccount, EmailDomain
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db


def errors_of(call, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kwargs)
    return caught.value


def saved(account, password="secret", **kwargs) -> EmailAccount:
    return services.save_account(account, password=password, **kwargs)


# --- saving and probing ------------------------------------------------------------------------
def test_saving_probes_and_stores_the_password_encrypted(new_account):
    account = saved(new_account(outgoing=True))
    account.refresh_from_db()
    assert account.state == AccountState.IDLE
    assert account.domain.domain_name == "example.test"  # found from the address
    assert account.folders == ["INBOX"]
    assert account.password_encrypted and "secret" not in account.password_encrypted
    assert account.get_password() == "secret"
    assert account.last_contact_at is not None
    assert account.default_incoming and account.default_outgoing  # the first of each direction


def test_wrong_password_is_a_password_error_with_help(dovecot, example_domain):
    account = EmailAccount(email_address=dovecot.add_user(), incoming_enabled=True)
    error = errors_of(saved, account, password="wrong")
    assert list(error.error_dict) == ["password"]
    item = error.error_dict["password"][0]
    assert item.code == "auth" and item.params["help_slug"] == "login-rejected"
    assert "localhost" in item.message
    assert not EmailAccount.objects.filter(email_address=account.email_address).exists()


def test_unknown_host_goes_to_the_host_field_in_spanish(new_account):
    account = new_account(incoming_host="imap.no-such-place.invalid")
    with translation.override("es"):
        error = errors_of(saved, account)
    item = error.error_dict["incoming_host"][0]
    assert item.code == "dns" and item.params["help_slug"] == "unknown-host"
    assert "imap.no-such-place.invalid" in item.messages[0]
    assert "no se encontró" in item.messages[0].lower() or "no existe" in item.messages[0].lower()


def test_smtp_failure_goes_to_the_smtp_field(new_account):
    account = new_account(incoming=False, outgoing=True, smtp_port=free_port(), smtp_host="127.0.0.1")
    error = errors_of(saved, account)
    assert error.error_dict["smtp_host"][0].code == "refused"


def test_missing_folder_goes_to_folders(new_account):
    error = errors_of(saved, new_account(folders=["INBOX", "Nope"]))
    item = error.error_dict["folders"][0]
    assert item.code == "folder" and "Nope" in item.messages[0]


def test_test_account_does_not_save(new_account):
    account = new_account(outgoing=True)
    report = services.test_account(account, "secret")
    assert report.ok, report.errors
    assert account.pk is None and not EmailAccount.objects.filter(email_address=account.email_address).exists()
    off = EmailAccount(email_address="x@example.test")
    report = services.test_account(off)
    assert report.incoming is None and report.outgoing is None


def test_probe_false_and_disabled_accounts_do_not_connect(example_domain):
    account = EmailAccount(email_address="quiet@example.test", incoming_enabled=True,
                           incoming_host="127.0.0.1", incoming_port=free_port())
    assert services.save_account(account, password="x", probe=False).state == AccountState.IDLE
    disabled = services.save_account(EmailAccount(email_address="off@example.test"))
    assert disabled.state == AccountState.DISABLED and not disabled.default_incoming


def test_password_required_unless_awaiting(example_domain):
    error = errors_of(services.save_account, EmailAccount(email_address="a@example.test", incoming_enabled=True))
    assert error.error_dict["password"][0].code == "password_required"


def test_awaiting_password_skips_the_probe(example_domain):
    account = EmailAccount(email_address="later@example.test", incoming_enabled=True, awaiting_password=True,
                           incoming_host="127.0.0.1", incoming_port=free_port())  # nothing listens there
    account = services.save_account(account)
    assert account.state == AccountState.AWAITING_PASSWORD and not account.has_password


def test_giving_the_password_ends_awaiting(new_account):
    account = services.save_account(new_account(awaiting_password=True))
    account = saved(account)
    assert not account.awaiting_password and account.state == AccountState.IDLE


# --- domains and providers ---------------------------------------------------------------------
def test_unknown_domain_needs_an_email_domain(db):
    error = errors_of(saved, EmailAccount(email_address="info@acme-shop.es", incoming_enabled=True))
    item = error.error_dict["email_address"][0]
    assert item.code == "domain_required" and "acme-shop.es" in item.messages[0]


def test_provider_address_needs_no_domain(db):
    account = services.save_account(EmailAccount(email_address="someone@gmail.com", incoming_enabled=True,
                                                 outgoing_enabled=True, awaiting_password=True))
    assert account.domain is None and account.pk


def test_pop3_on_a_provider_without_pop3(db):
    account = EmailAccount(email_address="a@icloud.com", incoming_enabled=True, incoming_protocol="pop3",
                           awaiting_password=True)
    assert "incoming_protocol" in errors_of(services.save_account, account).error_dict


def test_save_domain_normalises_and_checks_names(db):
    domain = services.save_domain(EmailDomain(domain_name="  Tienda-Ejemplo.ES. ", smtp_host="smtp.tienda-ejemplo.es"))
    assert domain.domain_name == "tienda-ejemplo.es"
    assert "domain_name" in errors_of(services.save_domain, EmailDomain(domain_name="not a domain")).error_dict
    bad_host = EmailDomain(domain_name="ok.es", smtp_host="bad host")
    assert "smtp_host" in errors_of(services.save_domain, bad_host).error_dict


def test_domain_in_use_cannot_be_deleted(new_account, example_domain):
    saved(new_account())
    assert errors_of(services.delete_domain, example_domain).code == "protected"


# --- defaults ------------------------------------------------------------------------------------
def test_default_rules(new_account):
    first = saved(new_account())
    second = saved(new_account())
    assert first.default_incoming and not second.default_incoming
    # Marking another moves the mark.
    second.default_incoming = True
    saved(second, password=None)
    first.refresh_from_db()
    assert not first.default_incoming
    # The default cannot be disabled or un-marked while another incoming account exists.
    second.incoming_enabled = False
    assert errors_of(saved, second, password=None).error_dict["incoming_enabled"][0].code == "default_required"
    second.refresh_from_db()
    second.default_incoming = False
    assert "default_incoming" in errors_of(saved, second, password=None).error_dict
    # Nor deleted.
    assert errors_of(services.delete_account, second).code == "default_required"
    # set_default moves it back; then the other one can go.
    services.set_default(first, "incoming")
    second.refresh_from_db()
    assert not second.default_incoming
    services.delete_account(second)
    # The last one can be disabled; it stops being default.
    first.refresh_from_db()
    first.incoming_enabled = False
    first = saved(first, password=None)
    assert not first.default_incoming and first.state == AccountState.DISABLED
    assert EmailAccount.objects.filter(default_incoming=True).count() == 0


def test_set_default_needs_the_direction_enabled(new_account):
    account = saved(new_account())
    assert "default_outgoing" in errors_of(services.set_default, account, "outgoing").error_dict


def test_database_refuses_two_defaults(new_account):
    from django.db import IntegrityError, transaction

    first, second = saved(new_account()), saved(new_account())
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailAccount.objects.filter(pk=second.pk).update(default_incoming=True)
    assert first.default_incoming


# --- stores, options, targets ----------------------------------------------------------------
def test_incoming_accounts_per_store_are_limited(new_account, settings):
    settings.MAX_INCOMING_ACCOUNTS_PER_STORE = 2
    store = Store.objects.create(name="Madrid")
    for _ in range(2):
        services.save_account(new_account(store=store, awaiting_password=True))
    error = errors_of(services.save_account, new_account(store=store, awaiting_password=True))
    item = error.error_dict["store"][0]
    assert item.code == "store_limit" and "Madrid" in item.messages[0] and "2" in item.messages[0]
    # An outgoing-only account does not count.
    services.save_account(new_account(incoming=False, outgoing=True, store=store, awaiting_password=True))


def test_append_to_must_be_a_registered_target(new_account, ticket_target):
    error = errors_of(services.save_account, new_account(append_to="spaceship", awaiting_password=True))
    assert error.error_dict["append_to"][0].code == "unknown_target"
    assert services.save_account(new_account(append_to=ticket_target, awaiting_password=True)).pk


def test_options_that_need_a_value(new_account):
    account = new_account(awaiting_password=True, auto_reply_enabled=True, add_signature=True,
                          notify_unreplied_after_minutes=30, notify_unreplied_to="boss@example.test, nope")
    fields = errors_of(services.save_account, account).error_dict
    assert {"auto_reply_message", "signature", "notify_unreplied_to"} <= set(fields)


def test_folders_are_cleaned(new_account):
    account = services.save_account(new_account(awaiting_password=True, folders=[" INBOX ", "", "INBOX", "Sent"]))
    assert account.folders == ["INBOX", "Sent"]
    bad = new_account(awaiting_password=True, folders=["a\r\nb"])
    assert "folders" in errors_of(services.save_account, bad).error_dict


# --- templates -------------------------------------------------------------------------------------
def test_fresh_install_offers_disabled_templates():
    templates = {a.template_role: a for a in EmailAccount.objects.exclude(template_role="")}
    assert set(templates) == {"support", "jobs", "notifications", "sales"}
    assert all(a.is_template and a.state == AccountState.DISABLED for a in templates.values())
    assert not any(a.default_incoming or a.default_outgoing for a in templates.values())


def test_template_becomes_real_with_valid_details(dovecot, example_domain, ticket_target):
    template = EmailAccount.objects.get(template_role="support")
    template.incoming_enabled = True
    assert "email_address" in errors_of(saved, template).error_dict  # placeholder address
    template.email_address = dovecot.add_user()
    template.outgoing_enabled = False
    account = saved(template)
    assert not account.is_template and account.state == AccountState.IDLE and account.template_role == "support"

"""Serializers for email domains and accounts. They collect input; buzon.mailboxes.services
validates, probes and saves, so the API enforces exactly the rules the web forms do."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

import buzon.mailboxes.services as services
from buzon.api.errors import service_error
from buzon.api.fields import ModelSerializer
from buzon.crm import roles
from buzon.mailboxes.models import DEFAULT_FIELDS, EmailAccount, EmailDomain
from buzon.sync.progress import account_progress

GENERAL_FIELDS = (
    "email_address", "display_name", "domain", "store", "owner", "login", "password", "awaiting_password",
    "ascii_password", "tls_verify",
)
INCOMING_FIELDS = (
    "incoming_enabled", "incoming_protocol", "incoming_host", "incoming_port", "incoming_security",
    "default_incoming", "attachment_limit_mb", "sync_option", "initial_sync_count", "folders",
    "delete_after_download", "append_to", "auto_link", "create_customer_if_not_found", "agent_group",
    "notify_agent", "notify_unreplied_after_minutes", "notify_unreplied_to",
)
OUTGOING_FIELDS = (
    "outgoing_enabled", "smtp_host", "smtp_port", "smtp_security", "smtp_auth", "default_outgoing",
    "add_signature", "signature", "always_use_account_address", "replies_to_agent", "unsubscribe_link",
    "track_opens", "append_to_sent", "auto_reply_enabled", "auto_reply_message",
)
STATE_FIELDS = ("state", "last_error", "last_error_code", "last_synced_at", "progress", "has_password",
                "is_system", "template_role", "created_at", "updated_at")


class EmailDomainSerializer(ModelSerializer[EmailDomain]):
    class Meta:
        model = EmailDomain
        fields = (
            "id", "domain_name", "preset", "incoming_protocol", "incoming_host", "incoming_port",
            "incoming_security", "smtp_host", "smtp_port", "smtp_security", "smtp_auth", "attachment_limit_mb",
            "tls_verify", "created_at", "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def create(self, validated_data: dict[str, Any]) -> EmailDomain:
        return self._save(EmailDomain(), validated_data)

    def update(self, instance: EmailDomain, validated_data: dict[str, Any]) -> EmailDomain:
        return self._save(instance, validated_data)

    def _save(self, domain: EmailDomain, data: dict[str, Any]) -> EmailDomain:
        for name, value in data.items():
            setattr(domain, name, value)
        try:
            services.save_domain(domain)
        except DjangoValidationError as error:
            raise service_error(error, self.context.get("request")) from error
        return domain


class ProgressSerializer(serializers.Serializer[dict[str, Any]]):
    """A download under way (null when none is): messages done of total, seconds left if known."""

    done = serializers.IntegerField()
    total = serializers.IntegerField()
    eta_s = serializers.IntegerField(allow_null=True)


class EmailAccountSerializer(ModelSerializer[EmailAccount]):
    # Write-only: accepted, encrypted by the services, never returned.
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False, style={"input_type": "password"},
        help_text="The mailbox password (or app password). Write-only; omit or leave blank to keep the saved one.",
    )
    folders = serializers.ListField(child=serializers.CharField(max_length=500), required=False,
                                    help_text="IMAP folders to sync; empty means INBOX.")
    progress = serializers.SerializerMethodField()
    has_password = serializers.BooleanField(read_only=True)
    last_error = serializers.CharField(source="error_message", read_only=True,
                                       help_text="The last error in plain words, in the request's language.")

    class Meta:
        model = EmailAccount
        fields = ("id", *GENERAL_FIELDS, *INCOMING_FIELDS, *OUTGOING_FIELDS, *STATE_FIELDS)
        read_only_fields = ("state", "last_error", "last_error_code", "last_synced_at", "is_system",
                            "template_role", "created_at", "updated_at")
        # Marking an account as a default moves the mark to it (services); DRF would otherwise turn
        # the one-default database constraints into "already exists" and refuse the move.
        extra_kwargs: dict[str, dict[str, Any]] = {name: {"validators": []} for name in DEFAULT_FIELDS}

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, account: EmailAccount) -> dict[str, Any] | None:
        progress = account_progress(account) if account.pk else None
        return dict(progress) if progress is not None else None

    def create(self, validated_data: dict[str, Any]) -> EmailAccount:
        return self._save(EmailAccount(), validated_data)

    def update(self, instance: EmailAccount, validated_data: dict[str, Any]) -> EmailAccount:
        return self._save(instance, validated_data)

    def _save(self, account: EmailAccount, data: dict[str, Any]) -> EmailAccount:
        password = data.pop("password", None) or None
        for name, value in data.items():
            setattr(account, name, value)
        user = getattr(self.context.get("request"), "user", None)
        try:
            return services.save_account(account, password=password,
                                         may_choose_defaults=roles.may_choose_default_accounts(user))
        except DjangoValidationError as error:
            raise service_error(error, self.context.get("request")) from error

    def unsaved(self) -> tuple[EmailAccount, str | None]:
        """The account as the request would change it, not saved: what the connection test probes."""
        data = dict(self.validated_data)
        password = data.pop("password", None) or None
        account = self.instance if isinstance(self.instance, EmailAccount) else EmailAccount()
        for name, value in data.items():
            setattr(account, name, value)
        return account, password


class ProbeResultSerializer(serializers.Serializer[dict[str, Any]]):
    ok = serializers.BooleanField()
    server = serializers.CharField(allow_null=True, help_text="Where the test connected, e.g. imap://host:993 (ssl).")
    code = serializers.CharField(allow_null=True, help_text="Failure class: dns, refused, timeout, tls, "
                                 "certificate, auth, protocol, folder, config.")
    message = serializers.CharField(help_text="What happened, in plain words in the request's language.")
    help_url = serializers.CharField(allow_null=True, help_text="Troubleshooting page for the failure.")


class ProbeReportSerializer(serializers.Serializer[dict[str, Any]]):
    ok = serializers.BooleanField(help_text="True when every tested direction worked.")
    incoming = ProbeResultSerializer(allow_null=True, help_text="Null when incoming mail is not enabled.")
    outgoing = ProbeResultSerializer(allow_null=True, help_text="Null when outgoing mail is not enabled.")

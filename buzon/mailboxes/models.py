"""Email domains and email accounts: where mail comes from and leaves through."""

from __future__ import annotations

from collections.abc import Collection

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from buzon.core import crypto
from buzon.crm.models import AgentGroup, Store
from buzon.mailboxes.presets import preset_choices


class Security(models.TextChoices):
    SSL = "ssl", _("SSL/TLS")
    STARTTLS = "starttls", _("STARTTLS")
    NONE = "none", _("None (plain text)")


class IncomingProtocol(models.TextChoices):
    IMAP = "imap", "IMAP"
    POP3 = "pop3", "POP3"


class EmailDomain(models.Model):
    """Server settings shared by every account on one domain; accounts may override them."""

    domain_name = models.CharField(_("domain"), max_length=253, unique=True)
    preset = models.CharField(
        _("hosted at"), max_length=32, blank=True, choices=preset_choices(),
        help_text=_("Pick the provider if this domain's mail is hosted by one (e.g. Google Workspace)."),
    )
    incoming_protocol = models.CharField(
        _("incoming protocol"), max_length=4, choices=IncomingProtocol.choices, default=IncomingProtocol.IMAP
    )
    incoming_host = models.CharField(_("incoming server"), max_length=253, blank=True)
    incoming_port = models.PositiveIntegerField(_("incoming port"), null=True, blank=True)
    incoming_security = models.CharField(
        _("incoming security"), max_length=8, choices=Security.choices, default=Security.SSL
    )
    smtp_host = models.CharField(_("SMTP server"), max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(_("SMTP port"), null=True, blank=True)
    smtp_security = models.CharField(_("SMTP security"), max_length=8, choices=Security.choices, default=Security.SSL)
    smtp_auth = models.BooleanField(
        _("SMTP server requires authentication"), default=True,
        help_text=_("Turn off only for a relay that accepts mail from this machine without a login."),
    )
    attachment_limit_mb = models.PositiveIntegerField(
        _("attachment limit (MB)"), default=25,
        help_text=_("Incoming: larger attachments are left out of stored mail, named in a note instead. "
                    "Outgoing: a message sent from this domain's accounts may carry at most this many MB of "
                    "attachments in total."),
    )
    tls_verify = models.BooleanField(
        _("verify TLS certificates"), default=True,
        help_text=_("Turn off only for a server with a self-signed certificate you trust."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["domain_name"]
        verbose_name = _("email domain")
        verbose_name_plural = _("email domains")

    def __str__(self) -> str:
        return self.domain_name


class SyncOption(models.TextChoices):
    ALL = "all", _("All mail")
    UNSEEN = "unseen", _("Only unread mail")
    # What the mailbox holds at the first sync stays out; only mail that arrives after it comes in.
    NEW = "new", _("Only mail received from now on")


#: Template accounts (seed 3.1) carry a placeholder address on this reserved domain until an admin
#: gives them real details; the rules that need a real address skip them meanwhile.
TEMPLATE_DOMAIN = "example.invalid"

#: The predefined accounts' names, shown in the reader's language while they are unfilled (the
#: stored display name is the English one the migration wrote).
TEMPLATE_ROLE_NAMES = {
    "support": _("Support"),
    "jobs": _("Jobs"),
    "notifications": _("Notifications"),
    "sales": _("Sales"),
}


#: The fields that mark an account as the default for a direction (one each; the services move them).
DEFAULT_FIELDS = ("default_incoming", "default_outgoing")


class AccountState(models.TextChoices):
    IDLE = "idle", _("Idle")
    SYNCING = "syncing", _("Syncing")
    ERROR = "error", _("Error")
    AWAITING_PASSWORD = "awaiting_password", _("Awaiting password")
    SIGN_IN_REVOKED = "sign_in_revoked", _("Sign-in revoked: sign in with the provider again")
    DISABLED = "disabled", _("Disabled")


class EmailAccount(models.Model):
    # General
    email_address = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    domain = models.ForeignKey(
        EmailDomain, verbose_name=_("email domain"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="accounts",
    )
    store = models.ForeignKey(
        Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.PROTECT, related_name="email_accounts"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="email_accounts",
        help_text=_("The user this account belongs to; asked for the password when awaiting one."),
    )
    login = models.CharField(
        _("different login ID"), max_length=320, blank=True,
        help_text=_("Log in with this name and password instead of the email address. "
                    "Recipients still see the email address as the sender."),
    )
    password_encrypted = models.TextField(blank=True, editable=False)
    # OAuth 2.0 sign-in (mailboxes.oauth) instead of a password: the provider's key and its tokens.
    oauth_provider = models.CharField(_("sign in with"), max_length=32, blank=True, editable=False)
    oauth_access_token_encrypted = models.TextField(blank=True, editable=False)
    oauth_refresh_token_encrypted = models.TextField(blank=True, editable=False)
    oauth_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    awaiting_password = models.BooleanField(
        _("awaiting password"), default=False,
        help_text=_("You are creating this account for someone else and do not know the password: "
                    "they will be asked for it when they next sign in. Nothing syncs until then."),
    )
    ascii_password = models.BooleanField(
        _("use ASCII encoding for the password"), default=False,
        help_text=_("Send the password ASCII-encoded, for old servers that reject other characters."),
    )
    tls_verify = models.BooleanField(
        _("verify TLS certificates"), default=True,
        help_text=_("Turn off only for a server with a self-signed certificate you trust."),
    )
    template_role = models.CharField(max_length=32, blank=True, editable=False)
    is_system = models.BooleanField(default=False, editable=False)

    # Incoming
    incoming_enabled = models.BooleanField(_("enable incoming"), default=False)
    incoming_protocol = models.CharField(
        _("incoming protocol"), max_length=4, choices=IncomingProtocol.choices, blank=True,
        help_text=_("IMAP keeps folders and read state on the server; POP3 downloads the inbox only."),
    )
    incoming_host = models.CharField(_("incoming server"), max_length=253, blank=True)
    incoming_port = models.PositiveIntegerField(_("incoming port"), null=True, blank=True)
    incoming_security = models.CharField(_("incoming security"), max_length=8, choices=Security.choices, blank=True)
    default_incoming = models.BooleanField(
        _("default incoming"), default=False,
        help_text=_("Replies to the company (e.g. to an address that does not receive) arrive in this account."),
    )
    attachment_limit_mb = models.PositiveIntegerField(_("attachment limit (MB)"), null=True, blank=True)
    sync_option = models.CharField(
        _("email sync option"), max_length=8, choices=SyncOption.choices, default=SyncOption.ALL,
        help_text=_("Sync every message; only those not yet read when Buzón first sees them; or only mail "
                    "received from now on: what the mailbox already holds at the account's first sync is "
                    "left there and not brought in, and every message that arrives after it is."),
    )
    initial_sync_count = models.PositiveIntegerField(
        _("initial sync count"), default=250,
        help_text=_("How many of the newest messages to bring in the first time; 0 brings all of them. "
                    "Not used with “Only mail received from now on”, which brings none of them."),
    )
    folders = models.JSONField(_("folders"), default=list, blank=True, help_text=_("IMAP folders to sync."))
    delete_after_download = models.BooleanField(
        _("delete downloaded messages"), default=False,
        help_text=_("Once Buzón has imported a message, delete it from the mail server (IMAP or POP3), "
                    "including messages imported before this was turned on. Mail that is not imported "
                    "(for example from senders who are not customers) stays on the server, and so does "
                    "everything in the Sent and Drafts folders. An IMAP server without UIDPLUS only gets "
                    "the messages marked as deleted."),
    )
    append_to = models.CharField(
        _("append to"), max_length=64, blank=True,
        help_text=_("Create this kind of record for every new conversation received here."),
    )
    auto_link = models.BooleanField(
        _("enable automatic linking in documents"), default=False,
        help_text=_("Link replies to the record they answer (record token or plus address)."),
    )
    create_customer_if_not_found = models.BooleanField(
        _("create customer if not found"), default=True,
        help_text=_("Otherwise mail from senders who are not customers is not imported."),
    )
    agent_group = models.ForeignKey(
        AgentGroup, verbose_name=_("agent group for new customers"), null=True, blank=True,
        on_delete=models.SET_NULL,
    )
    notify_agent = models.BooleanField(
        _("notify agent"), default=False, help_text=_("Tell the customer's agent about each incoming email.")
    )
    notify_unreplied_after_minutes = models.PositiveIntegerField(
        _("notify if unreplied for (minutes)"), null=True, blank=True
    )
    notify_unreplied_to = models.TextField(
        _("notify if unreplied to"), blank=True, help_text=_("Email addresses, separated by commas.")
    )

    # Outgoing
    outgoing_enabled = models.BooleanField(_("enable outgoing"), default=False)
    smtp_host = models.CharField(_("SMTP server"), max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(_("SMTP port"), null=True, blank=True)
    smtp_security = models.CharField(_("SMTP security"), max_length=8, choices=Security.choices, blank=True)
    smtp_auth = models.BooleanField(
        _("SMTP server requires authentication"), null=True, blank=True,
        help_text=_("Leave unset to use the domain's setting."),
    )
    default_outgoing = models.BooleanField(
        _("default outgoing"), default=False,
        help_text=_("Notifications and bulk mail are sent from this account."),
    )
    add_signature = models.BooleanField(_("add signature"), default=False)
    signature = models.TextField(_("signature"), blank=True)
    always_use_account_address = models.BooleanField(
        _("always use this account's address as sender"), default=False,
        help_text=_("Mail agents send shows only this account as the sender (its name and address). When off, "
                    "it is sent as “Agent Name via Account Name” from this address. Either way customers' "
                    "answers come back to this account."),
    )
    replies_to_agent = models.BooleanField(
        _("replies go to the agent's personal address"), default=False,
        help_text=_("Customers' answers to mail an agent sends go to that agent's own address (Reply-To) "
                    "instead of this account, so they are not received in Buzón nor added to the "
                    "conversation."),
    )
    unsubscribe_link = models.BooleanField(
        _("include unsubscribe link"), default=False,
        help_text=_("Add a link to unsubscribe from mail sent from this address."),
    )
    track_opens = models.BooleanField(
        _("track email status"), default=False,
        help_text=_("Track whether mail was read. With many recipients, one opening marks it opened."),
    )
    append_to_sent = models.BooleanField(
        _("append emails to sent folder"), default=False,
        help_text=_("Store a copy in the account's Sent folder (servers such as Zimbra or cPanel do not)."),
    )
    auto_reply_enabled = models.BooleanField(_("enable auto reply"), default=False)
    auto_reply_message = models.TextField(_("auto reply message"), blank=True)

    # State (written by the sync engine and the probe)
    state = models.CharField(_("state"), max_length=20, choices=AccountState.choices, default=AccountState.DISABLED)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_code = models.CharField(max_length=32, blank=True)
    # What the error was (MailServerError.as_state()), so each reader sees it in their language;
    # last_error keeps the text in the language of the process that saw it, for errors without state.
    last_error_state = models.JSONField(default=dict, blank=True)
    last_synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    last_contact_at = models.DateTimeField(_("last talked to its server"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["email_address"]
        verbose_name = _("email account")
        verbose_name_plural = _("email accounts")
        constraints = [
            # The services keep exactly one default per direction; the database refuses a second.
            models.UniqueConstraint(fields=["default_incoming"], condition=models.Q(default_incoming=True),
                                    name="mailboxes_one_default_incoming"),
            models.UniqueConstraint(fields=["default_outgoing"], condition=models.Q(default_outgoing=True),
                                    name="mailboxes_one_default_outgoing"),
        ]

    def __str__(self) -> str:
        return self.email_address

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        """Every constraint but the one-default ones: marking this account as a default is how the
        mark moves to it (services._apply_defaults takes it from the old default under a lock, and
        the database still refuses two). Checked here, a form would refuse the move before the
        services could make it."""
        super().validate_constraints(exclude={*(exclude or ()), *DEFAULT_FIELDS})

    # Secrets are write-only: set through here, read only where a connection is made.
    def set_password(self, plain: str) -> None:
        self.password_encrypted = crypto.encrypt(plain)

    def get_password(self) -> str:
        return crypto.decrypt(self.password_encrypted)

    @property
    def error_message(self) -> str:
        """The last error in plain words, in the active language (the reader's, not the syncer's)."""
        from buzon.mailboxes.errors import MailServerError

        error = MailServerError.from_state(self.last_error_state) if self.last_error_state else None
        return error.message() if error is not None else self.last_error

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted) or self.uses_oauth

    @property
    def uses_oauth(self) -> bool:
        """Signs in with a provider; stays true after consent is revoked, so the error says so."""
        return bool(self.oauth_provider)

    @property
    def login_name(self) -> str:
        return self.login or self.email_address

    @property
    def address_domain(self) -> str:
        return self.email_address.rpartition("@")[2].strip().lower()

    @property
    def is_template(self) -> bool:
        """A predefined account not yet given a real address (see TEMPLATE_DOMAIN)."""
        return bool(self.template_role) and self.address_domain == TEMPLATE_DOMAIN

    @property
    def template_title(self) -> str:
        """The name to show for a predefined account that is still a template (else the display name)."""
        if self.is_template and self.template_role in TEMPLATE_ROLE_NAMES:
            return str(TEMPLATE_ROLE_NAMES[self.template_role])
        return self.display_name

    def enabled_for(self, direction: str) -> bool:
        return self.incoming_enabled if direction == "incoming" else self.outgoing_enabled

    def is_default_for(self, direction: str) -> bool:
        return self.default_incoming if direction == "incoming" else self.default_outgoing


from buzon.mailboxes.models_audit import AuditEntry  # noqa: E402,F401 - registered with the app
from buzon.mailboxes.models_guard import ProbeCount  # noqa: E402,F401 - registered with the app

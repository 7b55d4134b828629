"""Forms for the settings pages. They collect input only: the mailboxes services validate and save.

Rules (defaults, providers, store limits, the connection probe) live in buzon.mailboxes.services;
a ValidationError from there is attached to the fields it names with add_service_errors().
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.web.help import DOMAIN_HELP, FALLBACK_HELP


class FoldersField(forms.CharField):
    """IMAP folder names, one per line, as a list. Not comma-separated: a folder name may hold a comma."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(folder) for folder in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class BootstrapFormMixin:
    """Gives each widget its Bootstrap class and each field a help text."""

    fields: dict[str, forms.Field]

    def style_fields(self) -> None:
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
            if not field.help_text and name in FALLBACK_HELP:
                field.help_text = FALLBACK_HELP[name]

    def bound(self, names: tuple[str, ...]) -> list[forms.BoundField]:
        """Bound fields by name, each marked is-invalid when it has errors (for Bootstrap's red outline)."""
        form: Any = self
        shown = []
        for name in names:
            if name not in self.fields:
                continue
            if form.errors.get(name):
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
            shown.append(form[name])
        return shown

    def add_service_errors(self, error: ValidationError) -> None:
        """Attach a services ValidationError to the fields it names (unknown names: the whole form)."""
        form: Any = self
        if not hasattr(error, "error_dict"):
            form.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            form.add_error(field if field in self.fields else None, errors)


DOMAIN_GROUPS: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("general", _("General"), ("domain_name", "preset", "attachment_limit_mb", "tls_verify")),
    ("incoming", _("Incoming email"), ("incoming_protocol", "incoming_host", "incoming_port", "incoming_security")),
    ("outgoing", _("Outgoing email"), ("smtp_host", "smtp_port", "smtp_security", "smtp_auth")),
)


class DomainForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = EmailDomain
        fields = [name for _key, _title, names in DOMAIN_GROUPS for name in names]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, text in DOMAIN_HELP.items():
            self.fields[name].help_text = text
        self.style_fields()
        label_blank_choices(self.fields, DOMAIN_BLANK_LABELS)

    def groups(self) -> list[tuple[str, Any, list[forms.BoundField]]]:
        return [(key, title, self.bound(names)) for key, title, names in DOMAIN_GROUPS]


ACCOUNT_GROUPS: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("general", _("General"), (
        "email_address", "display_name", "domain", "store", "owner", "password", "login",
        "awaiting_password", "ascii_password", "tls_verify",
    )),
    ("incoming", _("Incoming email"), (
        "incoming_enabled", "incoming_protocol", "incoming_host", "incoming_port", "incoming_security",
        "default_incoming", "attachment_limit_mb", "sync_option", "initial_sync_count", "folders",
        "delete_after_download", "append_to", "auto_link", "create_customer_if_not_found", "agent_group",
        "notify_agent", "notify_unreplied_after_minutes", "notify_unreplied_to",
    )),
    ("outgoing", _("Outgoing email"), (
        "outgoing_enabled", "smtp_host", "smtp_port", "smtp_security", "smtp_auth", "default_outgoing",
        "add_signature", "signature", "always_use_account_address", "replies_to_agent", "unsubscribe_link",
        "track_opens", "append_to_sent", "auto_reply_enabled", "auto_reply_message",
    )),
)


class AccountForm(BootstrapFormMixin, forms.ModelForm):
    # Write-only: never rendered back; blank keeps the stored one.
    password = forms.CharField(
        label=_("password"), required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    folders = FoldersField(label=_("folders"), required=False, help_text=_(
        "IMAP folders to sync, one per line. Leave blank for INBOX only."))
    append_to = forms.ChoiceField(label=_("append to"), required=False,
                                  help_text=EmailAccount._meta.get_field("append_to").help_text)

    class Meta:
        model = EmailAccount
        fields = [name for _key, _title, names in ACCOUNT_GROUPS for name in names if name != "password"]
        widgets = {
            "signature": forms.Textarea(attrs={"rows": 3}),
            "auto_reply_message": forms.Textarea(attrs={"rows": 3}),
            "notify_unreplied_to": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        append_to = self.fields["append_to"]
        assert isinstance(append_to, forms.ChoiceField)
        append_to.choices = [("", _("Nothing")), *_record_types()]
        self.fields["password"].help_text = (
            _("Leave blank to keep the saved password.") if self.instance.has_password else ""
        )
        self.style_fields()
        label_blank_choices(self.fields, ACCOUNT_BLANK_LABELS)
        if self.instance.is_template and not self.is_bound:
            # A predefined account's placeholder address is there to be replaced, not edited.
            self.initial["email_address"] = ""
            self.initial["display_name"] = self.instance.template_title
            self.fields["email_address"].widget.attrs["placeholder"] = _("The real address, e.g. %(example)s") % {
                "example": f"{self.instance.template_role}@your-company.com"}
        # The provider hint under the address follows what is typed (web/accounts/_preset_hint.html).
        self.fields["email_address"].widget.attrs.update({
            "autocomplete": "off", "spellcheck": "false", "hx-get": reverse("web:account-preset-hint"),
            "hx-trigger": "input changed delay:400ms", "hx-target": "#preset-hint",
        })
        if user is not None:
            self.limit_choices(user)

    def limit_choices(self, user: Any) -> None:
        """Offer ``user`` only the stores, groups, owners and domains they may give an account.

        The account's current values stay selectable, so saving an unrelated change keeps them.
        """
        from buzon.crm import roles

        limits = roles.account_field_choices(user)
        if limits is None:
            return
        for name, allowed in limits.items():
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            current = getattr(self.instance, f"{name}_id", None)
            field.queryset = allowed.model._default_manager.filter(
                Q(pk__in=allowed.values("pk")) | Q(pk=current or 0))
        store = self.fields["store"]
        assert isinstance(store, forms.ModelChoiceField)
        store.required = True  # a store-less account is the administrators'
        store.empty_label = None  # so there is no "No store" to pick

    def groups(self) -> list[tuple[str, Any, list[forms.BoundField]]]:
        """The seed's grouping (general, incoming, outgoing) with each group's bound fields."""
        return [(key, title, self.bound(names)) for key, title, names in ACCOUNT_GROUPS]

    def clean_folders(self) -> list[str]:
        # The model stores a list; an empty one means "the services' default" (INBOX).
        return list(self.cleaned_data.get("folders") or [])


INHERITED = _("Same as the domain or provider")
ACCOUNT_BLANK_LABELS: dict[str, Any] = {
    "domain": _("From the address"), "store": _("No store"), "owner": _("Nobody"), "agent_group": _("None"),
    "incoming_protocol": INHERITED, "incoming_security": INHERITED, "smtp_security": INHERITED,
    "smtp_auth": INHERITED,
}
DOMAIN_BLANK_LABELS: dict[str, Any] = {"preset": _("Its own servers")}


def label_blank_choices(fields: dict[str, forms.Field], labels: dict[str, Any]) -> None:
    """Say what leaving a choice empty means instead of Django's "---------"."""
    for name, label in labels.items():
        field = fields.get(name)
        if isinstance(field, forms.ModelChoiceField):
            field.empty_label = label
        elif isinstance(field, forms.NullBooleanField):
            field.widget.choices = [("unknown", label), ("true", _("Yes")), ("false", _("No"))]
        elif isinstance(field, forms.ChoiceField):
            field.choices = [("", label) if value == "" else (value, text)
                             for value, text in list(field.choices)]  # type: ignore[arg-type]


def _record_types() -> list[tuple[str, Any]]:
    """Record types mail can be appended to, as registered by the messages context."""
    from buzon.messages.targets import targets

    return list(targets())

"""Forms for composing mail, editing email templates and confirming a sender."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from buzon.crm import roles
from buzon.mailboxes.models import EmailAccount
from buzon.messages import targets
from buzon.messages.outbox import MAX_ID, Attachment, SendRefused, no_such_record, split_addresses
from buzon.outbound import addresses, mail_templates
from buzon.outbound.models import EmailTemplate


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class BootstrapMixin:
    """Bootstrap classes on every widget, so the web layout's field partial renders them as it expects."""

    fields: dict[str, forms.Field]

    def _style(self) -> None:
        for field in self.fields.values():
            widget = field.widget
            css = "form-check-input" if isinstance(widget, forms.CheckboxInput) else (
                "form-select" if isinstance(widget, forms.Select) else "form-control")
            widget.attrs["class"] = (widget.attrs.get("class", "") + " " + css).strip()


def _addresses(value: str) -> list[str]:
    """The addresses typed, each checked as it will be sent (internationalised ones too, see addresses.py)."""
    found = split_addresses(value)
    for address in found:
        addresses.parse(address)
    return found


class ComposeForm(BootstrapMixin, forms.Form):
    account = forms.ModelChoiceField(
        EmailAccount.objects.filter(outgoing_enabled=True), required=False, label=_("Send from"),
        empty_label=_("Automatic (conversation, your account, your store's, or the default)"))
    to = forms.CharField(label=_("To"), help_text=_("Addresses separated by commas."))
    cc = forms.CharField(label=_("Cc"), required=False)
    bcc = forms.CharField(label=_("Bcc"), required=False)
    template = forms.ModelChoiceField(EmailTemplate.objects.all(), required=False, label=_("Template"),
                                      empty_label=_("No template"))
    subject = forms.CharField(label=_("Subject"), max_length=998, required=False)
    text = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 10}))
    attachments = MultipleFileField(label=_("Attachments"), required=False)
    # References, kept as text: each is looked up among what the user may see (see clean() and
    # queue_outgoing), and whatever it holds, a bad one gets the same answer as a missing one.
    record_type = forms.CharField(required=False, widget=forms.HiddenInput)
    record_id = forms.CharField(required=False, widget=forms.HiddenInput)
    in_reply_to = forms.CharField(required=False, max_length=998, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self._record: Any = None
        if user is not None:  # offer (and accept) only the accounts the user may send through
            account = self.fields["account"]
            assert isinstance(account, forms.ModelChoiceField)
            account.queryset = roles.sendable_accounts(user).filter(outgoing_enabled=True)
        self._style()

    def clean_to(self) -> list[str]:
        return self._clean_list("to")

    def clean_cc(self) -> list[str]:
        return self._clean_list("cc")

    def clean_bcc(self) -> list[str]:
        return self._clean_list("bcc")

    def _clean_list(self, name: str) -> list[str]:
        try:
            return _addresses(self.cleaned_data.get(name) or "")
        except addresses.AddressError as exc:  # names the address and says what is wrong with it
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        key, number = self.cleaned_data.get("record_type") or "", (self.cleaned_data.get("record_id") or "").strip()
        if key or number:
            self._record = find_record(self.user, key, number)
            if self._record is None:  # missing, or not the user's to see: one answer for both
                self.add_error(None, str(no_such_record()))
        return data

    def record(self) -> Any:
        """The record the mail is about (cleaned: one the user may see), or None."""
        return self._record

    def add_refusal(self, refused: SendRefused) -> None:
        """Show why queue_outgoing refused: under the field it names, or above the form (hidden ones)."""
        field = self.fields.get(refused.field)
        self.add_error(refused.field if field is not None and not field.widget.is_hidden else None, str(refused))

    def attachment_list(self) -> list[Attachment]:
        return [Attachment(f.name, f.read(), f.content_type or "application/octet-stream")
                for f in self.cleaned_data.get("attachments") or []]


def find_record(user: Any, key: str, number: str) -> Any:
    """The record ``key``:``number`` among those ``user`` may see (any, without a user); else None."""
    target = targets.get_target(key)
    if target is None or not number.isdigit() or not 0 < int(number) <= MAX_ID:
        return None
    record = target.get(int(number))
    if record is None or (user is not None and not roles.can_see(user, record)):
        return None
    return record


class EmailTemplateForm(BootstrapMixin, forms.ModelForm[EmailTemplate]):
    class Meta:
        model = EmailTemplate
        fields = ["name", "key", "language", "subject", "body", "body_html"]
        widgets = {"body": forms.Textarea(attrs={"rows": 8}), "body_html": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for field in ("subject", "body", "body_html"):
            try:
                mail_templates.check(data.get(field) or "", html=field == "body_html")
            except mail_templates.TemplateError as exc:
                self.add_error(field, str(exc))
        return data


class PreviewForm(BootstrapMixin, forms.Form):
    record_type = forms.ChoiceField(label=_("Record type"), choices=())
    record_id = forms.IntegerField(label=_("Record number"), min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        record_type = self.fields["record_type"]
        assert isinstance(record_type, forms.ChoiceField)
        record_type.choices = [(key, str(label)) for key, label in targets.targets()]
        self._style()


class ConfirmCodeForm(BootstrapMixin, forms.Form):
    code = forms.CharField(label=_("Code"), max_length=6, min_length=6)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._style()

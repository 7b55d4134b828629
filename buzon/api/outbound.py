"""Outgoing mail over the API.

- `POST /api/v1/messages/send/` queues an email and answers 202 with its id; `GET /api/v1/messages/{id}/`
  (messages API) then shows its status. `GET /api/v1/messages/{id}/delivery/` lists every attempt.
- `/api/v1/email-templates/` (+ `{id}/preview/`), `POST /api/v1/sender-confirmations/{account}/send/` and
  `.../code/`, `/api/v1/dkim/{domain}/` (GET records and DNS check, POST generate a key).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.validators import ProhibitSurrogateCharactersValidator
from rest_framework.views import APIView

from buzon.api.fields import IdField, ModelSerializer
from buzon.api.permissions import AdminOnly, IsStaffOrReadOnly
from buzon.crm import roles
from buzon.mailboxes.errors import MailServerError
from buzon.mailboxes.models import EmailDomain
from buzon.messages import targets
from buzon.messages.models import Direction
from buzon.messages.outbox import KINDS, MAX_ID, Attachment, SendRefused, no_such_record, queue_outgoing
from buzon.outbound import confirm, deliverability, mail_templates
from buzon.outbound.models import DeliveryAttempt, EmailTemplate
from buzon.outbound.smtp import SendFailed


class AttachmentSerializer(serializers.Serializer[Any]):
    filename = serializers.CharField(max_length=255)
    content_base64 = serializers.CharField()
    mimetype = serializers.CharField(max_length=255, default="application/octet-stream")


class RecordRefSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(help_text="Mail target key, e.g. ticket")
    id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


def visible_record(user: Any, ref: dict[str, Any]) -> Any:
    """The record a request names, looked up among those ``user`` may see (None: missing or not theirs)."""
    target = targets.get_target(ref["type"])
    record = target.get(ref["id"]) if target else None
    return record if record is not None and roles.can_see(user, record) else None


class SendableAccountField(IdField):
    """An account id, looked up among the accounts the requesting user may send through (roles):
    another store's account is refused with the very words used for an id that does not exist."""

    default_error_messages = {
        "does_not_exist": _lazy("There is no email account with this id that you can send from."),
        "incorrect_type": _lazy("Give the email account's id, a whole number."),
    }

    def get_queryset(self) -> Any:
        request = self.context.get("request")
        # with its domain: the attachment limit is read from it when the send is checked
        return roles.sendable_accounts(request.user if request is not None else None).select_related("domain")

    def to_internal_value(self, data: Any) -> Any:
        """A batch finds the accounts its items name among the sendable ones in one query
        (context ``sendable_accounts``, id -> account); any other id is asked as a single send does."""
        known = self.context.get("sendable_accounts")
        if known and isinstance(data, int) and not isinstance(data, bool) and data in known:
            return known[data]
        return super().to_internal_value(data)


class _NoSurrogates(ProhibitSurrogateCharactersValidator):
    """DRF's refusal of lone surrogates, found by the UTF-8 codec (C) instead of a Python loop over
    every character, which cost milliseconds per send for a mail body of tens of KB."""

    def __call__(self, value: Any) -> None:
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(self.message.format(code_point=ord(exc.object[exc.start])), code=self.code) from exc


class BodyField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [_NoSurrogates() if isinstance(v, ProhibitSurrogateCharactersValidator) else v
                           for v in self.validators]


class SendSerializer(serializers.Serializer[Any]):
    to = serializers.ListField(child=serializers.CharField(max_length=320), default=list)
    cc = serializers.ListField(child=serializers.CharField(max_length=320), default=list)
    bcc = serializers.ListField(child=serializers.CharField(max_length=320), default=list)
    subject = BodyField(allow_blank=True, default="")
    text = BodyField(allow_blank=True, default="")
    html = BodyField(allow_blank=True, default="")
    attachments = AttachmentSerializer(many=True, default=list)
    account = SendableAccountField(
        required=False, allow_null=True,
        help_text="Id of an email account you may send through. Left out or null, Buzón chooses: the account "
                  "of the conversation (the message in_reply_to names, else the record's latest), then your own "
                  "account, then your store's, then the default outgoing account; never one you may not send "
                  "through. Notifications and bulk mail always leave through the default outgoing account.")
    record = RecordRefSerializer(required=False, allow_null=True)
    in_reply_to = serializers.CharField(required=False, allow_blank=True, max_length=998,
                                        help_text="Buzón message id, or a Message-ID header")
    kind = serializers.ChoiceField(choices=[k for k in KINDS if k != "auto_reply"], default="normal")
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    template = serializers.CharField(required=False, allow_blank=True, help_text="Email template key")
    language = serializers.CharField(required=False, allow_blank=True, max_length=5)

    def validate_record(self, value: dict[str, Any] | None) -> Any:
        if not value:
            return None
        request = self.context.get("request")
        record = visible_record(request.user if request is not None else None, value)
        if record is None:  # missing, or not the caller's to see: one answer for both
            raise ValidationError(str(no_such_record()))
        return record

    def validate_attachments(self, value: list[dict[str, str]]) -> list[Attachment]:
        try:
            return [Attachment(a["filename"], base64.b64decode(a["content_base64"], validate=True), a["mimetype"])
                    for a in value]
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(_("An attachment is not valid base64.")) from exc


class SentSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    message_id = serializers.CharField()
    account = serializers.CharField()


class SendView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=SendSerializer, responses={202: SentSerializer})
    def post(self, request: Request) -> Response:
        """Queue an email; it is sent by the task worker. 400 says in plain words why it cannot be sent."""
        form = SendSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        arguments = send_arguments(form.validated_data, request.user)
        named = arguments.get("account")  # found among the accounts the user may send through (the field)
        try:
            message = queue_outgoing(user=request.user, sendable={named.pk} if named is not None else (), **arguments)
        except SendRefused as refused:
            raise ValidationError({refused.field or "detail": [str(refused)]}) from refused
        return Response(sent(message), status=status.HTTP_202_ACCEPTED)


def send_arguments(validated: dict[str, Any], user: Any) -> dict[str, Any]:
    """queue_outgoing's arguments from a valid SendSerializer: a named template (key and language)
    fills the subject and bodies left empty. Raises ValidationError naming a missing or broken template."""
    data = dict(validated)
    template_key = data.pop("template", "")
    language = data.pop("language", "") or None
    if template_key:
        template = mail_templates.find(template_key, language)
        if template is None:
            raise ValidationError({"template": [_("There is no template %(key)s.") % {"key": template_key}]})
        rendered = _render(template, mail_templates.context_for(data.get("record"), user, data.get("account")))
        data["subject"] = data["subject"] or rendered.subject
        data["text"] = data["text"] or rendered.text
        data["html"] = data["html"] or rendered.html
    return data


def sent(message: Any) -> dict[str, Any]:
    """What the API answers for a queued message (SentSerializer)."""
    return {"id": message.pk, "status": message.status, "message_id": message.message_id,
            "account": str(message.account)}


class AttemptSerializer(ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "at", "outcome", "code", "reply", "server"]


class DeliveryView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: AttemptSerializer(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        """Every delivery attempt of an outgoing message, oldest first, with the server's reply."""
        message = get_object_or_404(roles.visible_messages(request.user), pk=pk, direction=Direction.OUTGOING)
        attempts = DeliveryAttempt.objects.filter(outgoing_id=message.pk)
        return Response(AttemptSerializer(attempts, many=True).data)


def _render(template: EmailTemplate, context: dict[str, Any]) -> mail_templates.Rendered:
    """A template saved before the allow-list existed may use a tag it refuses: a 400 naming it."""
    try:
        return mail_templates.render(template, context)
    except mail_templates.TemplateError as exc:
        raise ValidationError({"template": [str(exc)]}) from exc


class EmailTemplateSerializer(ModelSerializer[EmailTemplate]):
    problems = serializers.SerializerMethodField(
        help_text="Part (subject, body, body_html) -> what it names that templates may not use; such a name "
                  "renders empty. Only templates saved before the allow-list existed can have any.")

    class Meta:
        model = EmailTemplate
        fields = ["id", "key", "language", "name", "subject", "body", "body_html", "updated_at", "problems"]

    def get_problems(self, template: EmailTemplate) -> dict[str, list[str]]:
        return mail_templates.template_problems(template)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for field in ("subject", "body", "body_html"):
            try:
                mail_templates.check(attrs.get(field, ""), html=field == "body_html")
            except mail_templates.TemplateError as exc:
                raise ValidationError({field: [str(exc)]}) from exc
        return attrs


class EmailTemplateViewSet(viewsets.ModelViewSet[EmailTemplate]):
    """Email templates (per key and language), used by compose and by notifications."""

    queryset = EmailTemplate.objects.all()
    serializer_class = EmailTemplateSerializer
    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(request=RecordRefSerializer, responses={200: None})
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """Render with a real record: body `{"type": "ticket", "id": 12}`."""
        template = self.get_object()
        ref = RecordRefSerializer(data=request.data)
        ref.is_valid(raise_exception=True)
        record = visible_record(request.user, ref.validated_data)
        if record is None:
            raise ValidationError({"id": [_("No such record.")]})
        rendered = _render(template, mail_templates.context_for(record, request.user))
        return Response({"subject": rendered.subject, "text": rendered.text, "html": rendered.html})


class SenderConfirmationView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request: Request, account_id: int, step: str) -> Response:
        """`send`: mail a link and code to the account's address. `code`: confirm with `{"code": "123456"}`."""
        if step not in ("send", "code"):
            raise NotFound()
        account = get_object_or_404(roles.visible_accounts(request.user), pk=account_id)
        if not roles.can_manage_accounts(request.user, account.store_id):
            raise PermissionDenied()
        if step == "send":
            try:
                confirm.start(account)
            except MailServerError as exc:
                raise ValidationError({"detail": [exc.message()]}) from exc
            except SendFailed as exc:
                raise ValidationError({"detail": [str(exc)]}) from exc
            return Response({"sent_to": account.email_address}, status=status.HTTP_202_ACCEPTED)
        code = request.data.get("code", "") if isinstance(request.data, dict) else ""
        if not confirm.confirm_code(account, str(code)):
            raise ValidationError({"code": [_("That code is not right, or has been tried too often. "
                                              "Ask for a new one.")]})
        return Response({"confirmed": True})


class DkimView(APIView):
    permission_classes = [AdminOnly]

    def get(self, request: Request, domain_id: int) -> Response:
        """The SPF, DKIM and DMARC records to publish; `?check=1` also looks them up in DNS."""
        domain = get_object_or_404(EmailDomain, pk=domain_id)
        records = deliverability.expected_records(domain)
        if request.query_params.get("check"):
            return Response([r.as_dict() for r in deliverability.check(records)])
        return Response([r.as_dict() for r in records])

    def post(self, request: Request, domain_id: int) -> Response:
        """Generate (or replace) the domain's DKIM key pair."""
        domain = get_object_or_404(EmailDomain, pk=domain_id)
        deliverability.generate_key(domain)
        return Response([r.as_dict() for r in deliverability.expected_records(domain)], status=201)

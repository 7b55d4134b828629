"""/api/v1/email-domains/ and /api/v1/email-accounts/ (plus the connection test)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

import buzon.mailboxes.services as services
from buzon.api.errors import service_error
from buzon.api.mailbox_serializers import EmailAccountSerializer, EmailDomainSerializer, ProbeReportSerializer
from buzon.api.permissions import IsStaffOrReadOnly, ManagesAccounts, VisibleRowsMixin
from buzon.api.probe import report_data
from buzon.crm import roles
from buzon.mailboxes.guard import ProbeRateLimited
from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.sync.control import request_sync

SYNC_REQUESTED = inline_serializer("SyncRequested", {"requested": serializers.BooleanField()})
REFUSED = OpenApiResponse(description="Refused: field-keyed messages plus `code`, `help_url` and `errors`.")


@extend_schema_view(create=extend_schema(responses={201: EmailDomainSerializer, 400: REFUSED}),
                    update=extend_schema(responses={200: EmailDomainSerializer, 400: REFUSED}),
                    partial_update=extend_schema(responses={200: EmailDomainSerializer, 400: REFUSED}),
                    destroy=extend_schema(responses={204: None, 400: REFUSED}))
class EmailDomainViewSet(VisibleRowsMixin, viewsets.ModelViewSet[EmailDomain]):
    """Email domains: server settings that accounts on the domain inherit unless they override them."""

    queryset = EmailDomain.objects.all()
    serializer_class = EmailDomainSerializer
    permission_classes = [IsStaffOrReadOnly]

    def perform_destroy(self, instance: EmailDomain) -> None:
        try:
            services.delete_domain(instance)
        except DjangoValidationError as error:
            raise service_error(error, self.request) from error


@extend_schema_view(create=extend_schema(responses={201: EmailAccountSerializer, 400: REFUSED}),
                    update=extend_schema(responses={200: EmailAccountSerializer, 400: REFUSED}),
                    partial_update=extend_schema(responses={200: EmailAccountSerializer, 400: REFUSED}),
                    destroy=extend_schema(responses={204: None, 400: REFUSED}))
class EmailAccountViewSet(VisibleRowsMixin, viewsets.ModelViewSet[EmailAccount]):
    """Incoming (IMAP/POP3) and outgoing (SMTP) email accounts.

    Saving an account with a direction enabled tests its connection first; a failure is a 400 that
    says what failed, in the request's language, with a link to the troubleshooting page.
    `password` is write-only.
    """

    queryset = EmailAccount.objects.select_related("domain", "store", "sync_state")  # progress: no query per row
    serializer_class = EmailAccountSerializer
    permission_classes = [ManagesAccounts]

    def get_queryset(self) -> QuerySet[EmailAccount]:
        queryset = super().get_queryset()
        for name in ("store", "domain"):
            value = self.request.query_params.get(name)
            if value and value.isdigit():
                queryset = queryset.filter(**{f"{name}_id": int(value)})
        return queryset

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        """A supervisor's writes may name only their stores, groups, owners and domains (as the form)."""
        serializer = super().get_serializer(*args, **kwargs)
        limits = roles.account_field_choices(self.request.user)
        if self.request.method not in SAFE_METHODS and limits is not None and hasattr(serializer, "fields"):
            for name, allowed in limits.items():
                serializer.fields[name].queryset = allowed
        return serializer

    def perform_update(self, serializer: EmailAccountSerializer) -> None:  # type: ignore[override]
        # An account awaiting its owner's password gets it from the owner only, at their sign-in.
        if serializer.validated_data.get("password") and not roles.may_enter_password(
                self.request.user, serializer.instance):
            raise PermissionDenied(_("This account waits for its user to enter the password at sign-in."))
        super().perform_update(serializer)

    def perform_destroy(self, instance: EmailAccount) -> None:
        try:
            services.delete_account(instance)
        except DjangoValidationError as error:
            raise service_error(error, self.request) from error

    @extend_schema(request=EmailAccountSerializer, responses={200: ProbeReportSerializer, 400: REFUSED},
                   operation_id="email_accounts_test", summary="Test a saved account's connection without saving",
                   description="Fields in the body (all optional) are tried instead of the saved ones.")
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        return self._probe(EmailAccountSerializer(self.get_object(), data=request.data, partial=True,
                                                  context=self.get_serializer_context()))

    @extend_schema(request=EmailAccountSerializer, responses={200: ProbeReportSerializer, 400: REFUSED},
                   operation_id="email_accounts_test_new", summary="Test settings for a new account without saving")
    @action(detail=False, methods=["post"], url_path="test")
    def test_new(self, request: Request) -> Response:
        return self._probe(EmailAccountSerializer(data=request.data, context=self.get_serializer_context()))

    def _probe(self, serializer: EmailAccountSerializer) -> Response:
        serializer.is_valid(raise_exception=True)
        account, password = serializer.unsaved()
        try:
            report = services.test_account(account, password)
        except ProbeRateLimited as exc:
            raise Throttled(wait=exc.retry_after, detail=exc.message()) from exc
        return Response(ProbeReportSerializer(report_data(report, self.request)).data)

    @extend_schema(request=None, responses={202: SYNC_REQUESTED, 400: REFUSED}, summary="Sync this account now")
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        """Wake the sync engine for this account (it also retries at once after a failure)."""
        account = self.get_object()
        if not account.incoming_enabled or account.awaiting_password:
            refused = DjangoValidationError(
                _("%(address)s does not receive mail (incoming is off or its password is awaited): nothing to sync.")
                % {"address": account.email_address}, code="not_syncable",
            )
            raise service_error(refused, request)
        request_sync(account)
        return Response({"requested": True}, status=status.HTTP_202_ACCEPTED)

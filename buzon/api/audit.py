"""/api/v1/audit/: the audit log of setting changes, read-only, for administrators (staff) only."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAdminUser

from buzon.api.fields import ModelSerializer
from buzon.mailboxes.audit import described_changes
from buzon.mailboxes.models import AuditEntry


class AuditChangeSerializer(serializers.Serializer[dict[str, Any]]):
    field = serializers.CharField(help_text="The model field's name.")
    label = serializers.CharField(help_text="The field's name in the reader's language.")  # type: ignore[assignment]
    secret = serializers.BooleanField(help_text="A password or token: changed, values never shown.")
    old = serializers.JSONField(required=False, help_text="Absent for secrets.")
    new = serializers.JSONField(required=False, help_text="Absent for secrets.")


class AuditEntrySerializer(ModelSerializer[AuditEntry]):
    actor = serializers.CharField(source="actor_name", help_text="User name; empty when the system did it.")
    changes = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "target_type", "target_id", "target_label", "changes"]

    @extend_schema_field(AuditChangeSerializer(many=True))
    def get_changes(self, entry: AuditEntry) -> list[dict[str, Any]]:
        return described_changes(entry.target_type, entry.changes)


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet[AuditEntry]):
    """Who changed which setting of which email account, email domain or store. Filter with
    `?target_type=account|domain|store` and `&target_id=N`."""

    serializer_class = AuditEntrySerializer
    permission_classes = [IsAdminUser]

    def get_queryset(self) -> QuerySet[AuditEntry]:
        queryset = AuditEntry.objects.all()
        target_type = self.request.query_params.get("target_type")
        if target_type in AuditEntry.Target.values:
            queryset = queryset.filter(target_type=target_type)
        target_id = self.request.query_params.get("target_id", "")
        if target_id.isdigit():
            queryset = queryset.filter(target_id=int(target_id))
        return queryset

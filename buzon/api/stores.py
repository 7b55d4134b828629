"""/api/v1/stores/: the online shops or branches that own email accounts."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import viewsets

from buzon.api.errors import service_error
from buzon.api.fields import ModelSerializer
from buzon.api.permissions import IsStaffOrReadOnly, VisibleRowsMixin
from buzon.crm import store_deletion
from buzon.crm.models import Store


class StoreSerializer(ModelSerializer[Store]):
    class Meta:
        model = Store
        fields = ("id", "name", "email", "created_at")
        read_only_fields = ("created_at",)


class StoreViewSet(VisibleRowsMixin, viewsets.ModelViewSet[Store]):
    """Stores: an online shop or branch; it owns email accounts (at most BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE
    incoming ones, 10 unless set)."""

    queryset = Store.objects.all()
    serializer_class = StoreSerializer
    permission_classes = [IsStaffOrReadOnly]

    def perform_destroy(self, instance: Store) -> None:
        """Refused (400) while the store holds mail, customers, records or accounts (buzon.crm.store_deletion)."""
        try:
            store_deletion.delete_store(instance)
        except store_deletion.StoreInUse as error:
            raise service_error(DjangoValidationError(error.message, code="protected"), self.request) from error

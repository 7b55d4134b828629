"""/api/v1/ for the records mail feeds: customers, contacts, tickets, job applicants, agents, agent
groups and the signed-in user's notifications; plus what the pipeline decided for a message."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buzon.api.fields import IdField, ModelSerializer
from buzon.api.people import ManagesPeople, guarded
from buzon.api.permissions import ManagesAgents, VisibleRowsMixin
from buzon.core.language import language_of
from buzon.crm import agent_groups, notifications, people, records, roles
from buzon.crm.models import Agent, AgentGroup, Contact, Customer, CustomerEmail, JobApplicant, Notification, Ticket
from buzon.inbound import notices
from buzon.inbound.context import describe
from buzon.messages import targets
from buzon.messages.conversations import Conversation
from buzon.messages.models import Message
from buzon.workspace import reads
from buzon.workspace.actions import ActionRefused
from buzon.workspace.customer_merge import merge_customers

#: How many of a customer's latest conversations GET /api/v1/customers/{id}/ includes.
CARD_CONVERSATIONS = 10


class EmailsField(serializers.ListField):
    """Written as a list of addresses; read from the customer's CustomerEmail rows."""

    def to_representation(self, data: Any) -> list[str]:
        rows = data.all() if hasattr(data, "all") else data
        return [row.address if hasattr(row, "address") else str(row) for row in rows]


def store_for_write(serializer: serializers.ModelSerializer[Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """Only administrators make store-less customers and tickets: anyone else names one of their stores
    (the field offers only theirs: VisibleRowsMixin), or gets their only one when they name none. A
    store-less row is seen by administrators only (roles), so it would be lost to its creator, and an
    address would be checked against every store-less customer, which the creator cannot see."""
    request = serializer.context.get("request")
    user = getattr(request, "user", None)
    if user is None or roles.is_admin(user):
        return attrs
    instance = serializer.instance if isinstance(serializer.instance, Model) else None
    if instance is not None and "store" not in attrs:
        return attrs  # the row keeps its store (one the user can see, or they could not change it)
    if attrs.get("store") is not None:
        return attrs
    mine = sorted(roles.store_ids(user))
    if instance is None and "store" not in attrs and len(mine) == 1:  # an explicit null is refused
        return {**attrs, "store": roles.visible_stores(user).get(pk=mine[0])}
    raise serializers.ValidationError({"store": [_("Choose one of your stores.")]})


class StoreWallsMixin:
    """Creating customers and tickets: a user in no store is refused at once (403); see store_for_write."""

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not roles.is_admin(request.user) and not roles.store_ids(request.user):
            raise PermissionDenied(_("Only administrators and people who work in a store can create this."))
        return super().create(request, *args, **kwargs)  # type: ignore[misc,no-any-return]


class CustomerSerializer(ModelSerializer[Customer]):
    emails = EmailsField(child=serializers.EmailField(), required=False,
                                   help_text="The customer's addresses; mail from any of them links to the customer.")
    undeliverable = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = ("id", "name", "emails", "undeliverable", "store", "agent", "agent_group", "assigned_at", "created_at")
        read_only_fields = ("agent_group", "assigned_at", "created_at")

    def get_undeliverable(self, customer: Customer) -> list[str]:
        return [e.address for e in customer.emails.all() if e.undeliverable]

    def validate_emails(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip().lower() for v in value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """An address belongs to one customer per store (crm.models): the addresses must be free in
        the store the customer ends up in, also when it only moves there with the ones it has.

        Not an oracle: apart from administrators (who see every customer), people write customers
        only into their own stores (store_for_write), whose customers they all see, so an address
        they are told is taken belongs to a customer they can open; other stores' and store-less
        customers' addresses are never compared."""
        attrs = store_for_write(self, super().validate(attrs))
        instance = self.instance if isinstance(self.instance, Customer) else None
        store = attrs["store"] if "store" in attrs else (instance.store if instance is not None else None)
        emails = attrs.get("emails")
        if emails is None and instance is not None and "store" in attrs:
            emails = list(instance.emails.values_list("address", flat=True))
        if emails:
            taken = CustomerEmail.objects.filter(address__in=emails, **records.store_filter(store))
            if instance is not None:
                taken = taken.exclude(customer=instance)
            first = taken.first()
            if first is not None:
                raise serializers.ValidationError(
                    {"emails": [_("%(address)s already belongs to another customer.") % {"address": first.address}]})
        return attrs

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Customer:
        emails = validated_data.pop("emails", [])
        customer = super().create(validated_data)
        for address in emails:
            CustomerEmail.objects.create(customer=customer, address=address)
        return customer

    @transaction.atomic
    def update(self, instance: Customer, validated_data: dict[str, Any]) -> Customer:
        emails = validated_data.pop("emails", None)
        customer = super().update(instance, validated_data)
        if emails is not None:
            customer.emails.exclude(address__in=emails).delete()
            for address in emails:
                CustomerEmail.objects.get_or_create(customer=customer, address=address)
        return customer


def _filter_mine(queryset: QuerySet[Any], request: Request) -> QuerySet[Any]:
    """?assigned=me | unassigned | <agent id>, ?store=<id>: the inbox filters."""
    assigned = request.query_params.get("assigned")
    if assigned == "me":
        queryset = queryset.filter(agent__user=request.user)
    elif assigned == "unassigned":
        queryset = queryset.filter(agent__isnull=True)
    elif assigned and assigned.isdigit():
        queryset = queryset.filter(agent_id=int(assigned))
    store = request.query_params.get("store")
    if store and store.isdigit():
        queryset = queryset.filter(store_id=int(store))
    return queryset


class RecordMessagesMixin:
    """GET …/{id}/messages/: the mail of a record (of a customer: also all their conversations), oldest first."""

    @action(detail=True, methods=["get"])
    def messages(self, request: Request, pk: str | None = None) -> Response:
        record: Model = self.get_object()  # type: ignore[attr-defined]
        kind = ContentType.objects.get_for_model(record)
        mail = Q(record_type=kind, record_id=record.pk)
        if isinstance(record, Customer):  # a customer's mail: linked to them, or in their conversations
            mail |= Q(customer_id=record.pk) | Q(conversation__customer_id=record.pk)
        rows = roles.visible_messages(request.user).filter(mail)
        return Response(MessageBriefSerializer(rows.order_by("created_at", "id")[:500], many=True).data)


class MessageBriefSerializer(ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = ("id", "direction", "status", "classification", "from_address", "from_name", "to", "subject",
                  "date", "created_at")


class CreatorKeepsSightMixin:
    """A customer or ticket an agent creates that they could not see (no store of theirs, no group
    of theirs) is assigned to them, so they do not lose sight of what they just created.

    Rows with no store are seen only by administrators and the agents they reach (roles).
    """

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        user = self.request.user  # type: ignore[attr-defined]
        with transaction.atomic():
            created = serializer.save()
            agent = roles.agent_of(user)
            if agent is not None and created.agent_id is None and not roles.can_see(user, created):
                created.agent = agent
                created.save(update_fields=["agent"])


class CustomerConversationSerializer(ModelSerializer[Conversation]):
    """A conversation as a customer's card lists it (read by one query for the page: reads.page)."""

    agent_name = serializers.SerializerMethodField()
    unread = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ("id", "subject", "status", "store", "agent", "agent_name", "message_count", "snippet",
                  "unread", "last_message_at")
        read_only_fields = fields

    def get_agent_name(self, row: Conversation) -> str:
        return str(row.agent) if row.agent is not None else ""

    def get_unread(self, row: Conversation) -> bool:
        return bool(getattr(row, "unread", False))


class AddressSerializer(ModelSerializer[CustomerEmail]):
    class Meta:
        model = CustomerEmail
        fields = ("address", "undeliverable")
        read_only_fields = fields


class CustomerDetailSerializer(CustomerSerializer):
    """One customer's card: its addresses, store, agent and latest conversations (the card's first
    page; the rest through /api/v1/conversations/?customer=<id>, by cursor)."""

    addresses = AddressSerializer(source="emails", many=True, read_only=True)
    store_name = serializers.SerializerMethodField()
    agent_name = serializers.SerializerMethodField()
    conversations = serializers.SerializerMethodField(
        help_text=f"The {CARD_CONVERSATIONS} latest conversations the caller may see, newest activity first.")

    class Meta(CustomerSerializer.Meta):
        fields = (*CustomerSerializer.Meta.fields,  # type: ignore[assignment]
                  "addresses", "store_name", "agent_name", "conversations")

    def get_store_name(self, customer: Customer) -> str:
        return customer.store.name if customer.store is not None else ""

    def get_agent_name(self, customer: Customer) -> str:
        return str(customer.agent) if customer.agent is not None else ""

    @extend_schema_field(CustomerConversationSerializer(many=True))
    def get_conversations(self, customer: Customer) -> list[dict[str, Any]]:
        request = self.context.get("request")
        found = reads.page(getattr(request, "user", None), {"customer": str(customer.pk)}, size=CARD_CONVERSATIONS)
        return CustomerConversationSerializer(found.rows, many=True).data  # type: ignore[return-value]


class CustomerViewSet(StoreWallsMixin, CreatorKeepsSightMixin, RecordMessagesMixin, VisibleRowsMixin,
                      viewsets.ModelViewSet[Customer]):
    """Customers; filter with ?assigned=me|unassigned|<agent>, ?store=<id>, ?email=<address>. One
    customer (GET …/{id}/) comes with its addresses, store, agent and latest conversations."""

    serializer_class = CustomerSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Customer]]:
        return CustomerDetailSerializer if self.action in ("retrieve", "merge") else CustomerSerializer

    @extend_schema(request=inline_serializer("CustomerMerge", {"other": serializers.IntegerField(
        help_text="The card to merge into this one (same store); it is deleted.")}),
        responses={200: CustomerDetailSerializer})
    @action(detail=True, methods=["post"])
    def merge(self, request: Request, pk: str | None = None) -> Response:
        """Merge customer ``other`` into this one (same store): its addresses, conversations, messages,
        tickets and contacts move here and ``other`` is deleted. Either one invisible: 404, no change."""
        self.get_object()  # an invisible card is a 404 first, whatever else the request says
        other = request.data.get("other") if hasattr(request.data, "get") else None
        if isinstance(other, bool) or not str(other or "").isdigit():
            raise serializers.ValidationError({"other": [_("The number of the customer to merge into this one.")]})
        try:
            kept = merge_customers(request.user, pk, int(str(other)))
        except Http404:
            raise NotFound() from None
        except ActionRefused as refused:
            raise serializers.ValidationError({refused.field or "detail": [refused.message]}) from refused
        kept = self.get_queryset().get(pk=kept.pk)
        return Response(CustomerDetailSerializer(kept, context=self.get_serializer_context()).data)

    def get_queryset(self) -> QuerySet[Customer]:
        queryset = _filter_mine(Customer.objects.select_related("store", "agent__user").prefetch_related("emails"),
                                self.request)
        email = self.request.query_params.get("email")
        if email:
            queryset = queryset.filter(emails__address=email.strip().lower())
        return queryset


class ContactSerializer(ModelSerializer[Contact]):
    class Meta:
        model = Contact
        fields = ("id", "customer", "name", "email", "phone", "undeliverable", "created_at")
        read_only_fields = ("undeliverable", "created_at")


class ContactViewSet(VisibleRowsMixin, viewsets.ModelViewSet[Contact]):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    permission_classes = [permissions.IsAuthenticated]


class TicketSerializer(ModelSerializer[Ticket]):
    token = serializers.SerializerMethodField(help_text="Put this in a subject to file mail under the ticket.")

    class Meta:
        model = Ticket
        fields = ("id", "token", "subject", "status", "customer", "agent", "store", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")

    def get_token(self, ticket: Ticket) -> str:
        return targets.record_token(ticket)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return store_for_write(self, super().validate(attrs))


class TicketViewSet(StoreWallsMixin, CreatorKeepsSightMixin, RecordMessagesMixin, VisibleRowsMixin,
                    viewsets.ModelViewSet[Ticket]):
    """Tickets; filter with ?status=open|replied|closed, ?assigned=me|unassigned|<agent>, ?store=<id>."""

    serializer_class = TicketSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self) -> QuerySet[Ticket]:
        queryset = _filter_mine(Ticket.objects.all(), self.request)
        status_filter = self.request.query_params.get("status")
        return queryset.filter(status=status_filter) if status_filter else queryset


class JobApplicantSerializer(ModelSerializer[JobApplicant]):
    class Meta:
        model = JobApplicant
        fields = ("id", "name", "email", "subject", "store", "created_at")
        read_only_fields = ("created_at",)


class JobApplicantViewSet(RecordMessagesMixin, VisibleRowsMixin, viewsets.ModelViewSet[JobApplicant]):
    queryset = JobApplicant.objects.all()
    serializer_class = JobApplicantSerializer
    permission_classes = [permissions.IsAuthenticated]


class AgentSerializer(ModelSerializer[Agent]):
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = ("id", "user", "username", "name", "status", "online", "stores", "groups")
        read_only_fields = ("online",)

    def get_name(self, agent: Agent) -> str:
        return str(agent)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Nobody joins a group of a store they do not work in (buzon.crm.people.groups_outside)."""
        agent = self.instance if isinstance(self.instance, Agent) else None
        current = list(agent.groups.all()) if agent is not None else []
        stores = attrs.get("stores", agent.stores.all() if agent is not None else [])
        outside = people.groups_outside(attrs.get("groups", current), {store.pk for store in stores}, current)
        if outside:
            raise serializers.ValidationError({"groups": outside})
        return attrs


class AgentStatusSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Agent.Status.choices)


def _unchanged(instance: Model, data: dict[str, Any], names: tuple[str, ...]) -> bool:
    """Whether ``data`` leaves the fields ``names`` of ``instance`` as they are."""
    for name in names:
        if name not in data:
            continue
        value, now = data[name], getattr(instance, name)
        if hasattr(now, "all"):
            if {row.pk for row in value} != set(now.values_list("pk", flat=True)):
                return False
        elif (value.pk if isinstance(value, Model) else value) != (now.pk if isinstance(now, Model) else now):
            return False
    return True


def _refuse_group_changes(user: Any, agent: Agent, groups: set[AgentGroup]) -> None:
    refused = roles.refused_group_changes(user, agent, groups)
    if refused:
        raise PermissionDenied(_("You cannot change %(agent)s's membership of %(groups)s: only groups of the "
                                 "stores you supervise, for agents who work there.")
                               % {"agent": agent, "groups": ", ".join(g.name for g in refused)})


class AgentViewSet(VisibleRowsMixin, viewsets.ModelViewSet[Agent]):
    """Agents. Administrators manage them; a supervisor sets the status and the agent groups of the
    agents of their stores (never their user or stores); every agent sets their own status at agents/me/."""

    queryset = Agent.objects.select_related("user").prefetch_related("stores", "groups")
    serializer_class = AgentSerializer
    permission_classes = [ManagesAgents]

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        serializer = super().get_serializer(*args, **kwargs)
        if self.request.method not in permissions.SAFE_METHODS and hasattr(serializer, "fields"):
            # Membership is judged group by group in perform_update (roles.may_join), among the groups
            # the user can see and those the agent is in already: another store's group id gets the
            # answer of one that does not exist, not a refusal naming it.
            current = serializer.instance.groups.all() if isinstance(serializer.instance, Agent) else []
            serializer.fields["groups"].child_relation.queryset = AgentGroup.objects.filter(
                Q(pk__in=roles.visible(AgentGroup.objects.all(), self.request.user).values("pk"))
                | Q(pk__in=[group.pk for group in current]))
        return serializer

    def perform_update(self, serializer: serializers.BaseSerializer[Agent]) -> None:
        user, agent = self.request.user, serializer.instance
        assert agent is not None
        if not roles.is_admin(user):
            data = serializer.validated_data  # type: ignore[union-attr]
            if not roles.managed_agents(user).filter(pk=agent.pk).exists():
                raise PermissionDenied(_("Only administrators change agents who work in stores you do not supervise."))
            if not _unchanged(agent, data, ("user", "stores")):
                raise PermissionDenied(_("Only administrators change which user or stores an agent has."))
            if "groups" in data:
                _refuse_group_changes(user, agent, set(data["groups"]))
        # Status and groups through buzon.crm.people (which audits them), the rest (administrators'
        # user and stores) saved here and audited as the person's change.
        data = serializer.validated_data  # type: ignore[union-attr]
        with transaction.atomic():
            if "status" in data:
                status_given = data.pop("status")
                guarded(lambda: people.set_status(user, agent, status_given))
            if "groups" in data:
                groups_given = data.pop("groups")
                guarded(lambda: people.set_groups(user, agent, groups_given))
            if data:
                before = people.snapshot(agent.user)
                serializer.save()
                people.record(user, agent.user, before)
            agent.refresh_from_db()

    @action(detail=False, methods=["get", "post"], url_path="me", permission_classes=[permissions.IsAuthenticated])
    def me(self, request: Request) -> Response:
        agent = Agent.objects.filter(user_id=request.user.pk or 0).first()
        if agent is None:
            return Response({"detail": _("You are not an agent.")}, status=status.HTTP_404_NOT_FOUND)
        if request.method == "POST":
            given = AgentStatusSerializer(data=request.data)
            given.is_valid(raise_exception=True)
            people.set_status(request.user, agent, given.validated_data["status"])
        return Response(AgentSerializer(agent).data)


class AgentGroupSerializer(ModelSerializer[AgentGroup]):
    agents = IdField(many=True, queryset=Agent.objects.all(), required=False)

    class Meta:
        model = AgentGroup
        fields = ("id", "name", "store", "agents")


class ManagesAgentGroups(ManagesPeople):
    """Read by everyone signed in (rows scoped by roles.visible); changed by managers (agent_groups decides)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated and request.user.is_active)
        return super().has_permission(request, view)


class AgentGroupViewSet(VisibleRowsMixin, viewsets.ModelViewSet[AgentGroup]):
    """Agent groups. Administrators manage them all; a supervisor creates, renames, deletes and sets the
    members of their stores' groups (keeping them in those stores; only agents they manage join or
    leave). A group an email account uses for new customers cannot be deleted (400 saying which)."""

    queryset = AgentGroup.objects.prefetch_related("agents")
    serializer_class = AgentGroupSerializer
    permission_classes = [ManagesAgentGroups]

    def perform_create(self, serializer: serializers.BaseSerializer[AgentGroup]) -> None:
        data = serializer.validated_data  # type: ignore[union-attr]
        serializer.instance = guarded(lambda: agent_groups.create_group(
            self.request.user, data["name"], data.get("store"), data.get("agents", [])))

    def perform_update(self, serializer: serializers.BaseSerializer[AgentGroup]) -> None:
        group, data = serializer.instance, serializer.validated_data  # type: ignore[union-attr]
        assert group is not None
        guarded(lambda: agent_groups.update_group(
            self.request.user, group, name=data.get("name"), store=data["store"] if "store" in data else False,
            members=data.get("agents")))
        group.refresh_from_db()

    def perform_destroy(self, instance: AgentGroup) -> None:
        guarded(lambda: agent_groups.delete_group(self.request.user, instance))


class NotificationSerializer(ModelSerializer[Notification]):
    text = serializers.SerializerMethodField(help_text="In the reader's own language.")

    class Meta:
        model = Notification
        fields = ("id", "kind", "text", "url", "read_at", "created_at")
        read_only_fields = fields

    def get_text(self, notification: Notification) -> str:
        return notices.text_of(notification)


class NotificationViewSet(viewsets.ReadOnlyModelViewSet[Notification]):
    """The signed-in user's notifications (the bell); ?unread=1 for unread ones only."""

    serializer_class = NotificationSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self) -> QuerySet[Notification]:
        queryset = Notification.objects.filter(user_id=self.request.user.pk or 0).select_related("detail")
        if self.request.query_params.get("unread"):
            queryset = queryset.filter(read_at__isnull=True)
        return queryset

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with translation.override(language_of(request.user)):  # the reader's language, not the client's
            return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with translation.override(language_of(request.user)):
            return super().retrieve(request, *args, **kwargs)

    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request: Request) -> Response:
        return Response({"unread": notifications.unread_count(request.user)})

    @action(detail=False, methods=["post"], url_path="read")
    def mark_read(self, request: Request) -> Response:
        """Mark read: {"ids": [1, 2]} or {} for all."""
        ids = request.data.get("ids") if hasattr(request.data, "get") else None
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
            return Response({"ids": [_("A list of notification ids.")]}, status=status.HTTP_400_BAD_REQUEST)
        changed = notifications.mark_read(request.user, ids)
        return Response({"marked": changed, "unread": notifications.unread_count(request.user)})


def pipeline_summary(message: Message) -> dict[str, Any]:
    """What the pipeline decided for ``message``: steps, record, customer, agent, classification.

    Also usable as a SerializerMethodField in the message detail (buzon/api/messages.py).
    """
    record = message.record if message.record_type_id and message.record_id else None
    target = targets.target_for(record) if record is not None else None
    return {
        "classification": message.classification,
        "status": message.status,
        "status_reason": message.status_reason,
        "record": {"type": target.key, "id": record.pk, "token": target.token(record.pk)}
        if record is not None and target is not None else None,
        "customer": message.customer_id,
        "agent": message.agent_id,
        "steps": [{**entry, "text": describe(entry)} for entry in message.decisions if isinstance(entry, dict)],
    }


class MessagePipelineView(APIView):
    """GET /api/v1/messages/{id}/pipeline/: why the pipeline did what it did with a message."""

    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request, pk: int) -> Response:
        return Response(pipeline_summary(get_object_or_404(roles.visible_messages(request.user), pk=pk)))

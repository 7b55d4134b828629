"""Business records that mail feeds: stores, agents and their groups (customers and records follow).

Stores are walls for incoming mail. A customer is a card *of one store*: a person who writes to two
stores gets two cards, one per store, each with its own address rows, assigned agent and history,
and each store's agents see only their own card. So an address is unique per store
(``CustomerEmail.store`` is a copy of its customer's store, kept in step when the customer moves),
and unique among store-less customers (an installation without stores has one card per address,
as before). Mail is linked to the card of the store of the account it arrived at; see
crm.records.find_customer.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Store(models.Model):
    """An online shop or branch: it owns email accounts, agents and customers."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    email = models.EmailField(_("store email"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return self.name


class AgentGroup(models.Model):
    """Agents that new customers of an account are spread across."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["name"]
        verbose_name = _("agent group")
        verbose_name_plural = _("agent groups")

    def __str__(self) -> str:
        return self.name


class Agent(models.Model):
    class Status(models.TextChoices):
        FREE = "free", _("Free")
        LUNCH = "lunch", _("At lunch")
        BUSY = "busy", _("Busy")
        BREAK = "break", _("On break")
        OFFLINE = "offline", _("Offline")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OFFLINE)
    online = models.BooleanField(_("logged in"), default=False)
    stores = models.ManyToManyField(Store, verbose_name=_("stores"), blank=True, related_name="agents")
    groups = models.ManyToManyField(AgentGroup, verbose_name=_("groups"), blank=True, related_name="agents")

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()


class Customer(models.Model):
    """Someone the business corresponds with; mail from any of their addresses links to them."""

    name = models.CharField(_("name"), max_length=200, blank=True)
    store = models.ForeignKey(
        Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL, related_name="customers"
    )
    agent = models.ForeignKey(
        Agent, verbose_name=_("assigned agent"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="customers",
    )
    # The group whose rotation chose the agent: evenness is counted per group.
    agent_group = models.ForeignKey(
        AgentGroup, verbose_name=_("agent group"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="customers",
    )
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        # The customer list pages by keyset in this order: an index for every administrator's list,
        # one for each role path (a store's agents, the assigned agent) ending in it.
        indexes = [models.Index(fields=["-created_at", "-id"], name="customer_created"),
                   models.Index(fields=["store", "-created_at", "-id"], name="customer_store_created"),
                   models.Index(fields=["agent", "-created_at", "-id"], name="customer_agent_created")]

    def __str__(self) -> str:
        if self.name:
            return self.name
        first = self.emails.first()
        return first.address if first else f"#{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saving a customer into another store moves its addresses with it (CustomerEmail.store)."""
        fields = kwargs.get("update_fields")
        adding = self._state.adding
        super().save(*args, **kwargs)
        if not adding and (fields is None or "store" in fields or "store_id" in fields):
            elsewhere = Q(store__isnull=False) if self.store_id is None else ~Q(store_id=self.store_id) | Q(
                store__isnull=True)
            CustomerEmail.objects.filter(elsewhere, customer=self).update(store_id=self.store_id)

    @property
    def primary_email(self) -> str:
        first = self.emails.order_by("id").first()
        return first.address if first else ""


class CustomerEmail(models.Model):
    """One address of a customer (stored in lower case). Within a store, an address belongs to one
    customer only; another store may have a card of its own for the same address.

    ``store`` is the customer's store, copied here so that uniqueness per store is a constraint of
    this table; ``save`` copies it and ``Customer.save`` keeps it in step.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="emails")
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", db_index=False)
    # Not unique by itself any more: see Meta.constraints. The unique index leads with the address,
    # so look-ups by address alone (a bounce marks an address in every store) use it too.
    address = models.EmailField(_("email address"), max_length=320)
    undeliverable = models.BooleanField(_("undeliverable"), default=False)
    undeliverable_reason = models.TextField(_("why undeliverable"), blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("customer email address")
        verbose_name_plural = _("customer email addresses")
        constraints = [
            models.UniqueConstraint(fields=["address", "store"], name="customer_email_once_per_store"),
            models.UniqueConstraint(fields=["address"], condition=models.Q(store__isnull=True),
                                    name="customer_email_once_without_store"),
        ]

    def __str__(self) -> str:
        return self.address

    def save(self, *args: object, **kwargs: object) -> None:
        self.address = self.address.strip().lower()
        self.store_id = self.customer.store_id
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class Contact(models.Model):
    """A person at a customer (a company's buyer, accountant...)."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email address"), max_length=320, blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=50, blank=True)
    undeliverable = models.BooleanField(_("undeliverable"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return self.name or self.email


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        REPLIED = "replied", _("Replied")
        CLOSED = "closed", _("Closed")

    subject = models.CharField(_("subject"), max_length=998, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    agent = models.ForeignKey(
        Agent, verbose_name=_("assigned agent"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="tickets",
    )
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        # The ticket list pages by keyset in this order, filtered by role path or by status.
        indexes = [models.Index(fields=["-updated_at", "-id"], name="ticket_updated"),
                   models.Index(fields=["store", "-updated_at", "-id"], name="ticket_store_updated"),
                   models.Index(fields=["agent", "-updated_at", "-id"], name="ticket_agent_updated"),
                   models.Index(fields=["status", "-updated_at", "-id"], name="ticket_status_updated")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class JobApplicant(models.Model):
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email address"), max_length=320, blank=True, db_index=True)
    subject = models.CharField(_("position or subject"), max_length=998, blank=True)
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("job applicant")
        verbose_name_plural = _("job applicants")
        indexes = [models.Index(fields=["-created_at", "-id"], name="applicant_created"),
                   models.Index(fields=["store", "-created_at", "-id"], name="applicant_store_created")]

    def __str__(self) -> str:
        return self.name or self.email


class Notification(models.Model):
    """An in-app notification (the bell). ``key`` makes creating it twice impossible (reprocessing)."""

    class Kind(models.TextChoices):
        CUSTOMER_ASSIGNED = "customer_assigned", _("Customer assigned")
        NEW_EMAIL = "new_email", _("New email")
        UNREPLIED = "unreplied", _("Email not replied")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    text = models.TextField(_("text"))
    url = models.CharField(max_length=500, blank=True)
    key = models.CharField(max_length=100)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [models.UniqueConstraint(fields=["user", "kind", "key"], name="notification_once")]
        indexes = [models.Index(fields=["user", "read_at"]),
                   # The notifications page: one person's, newest first (keyset pages).
                   models.Index(fields=["user", "-created_at", "-id"], name="notification_user_created")]

    def __str__(self) -> str:
        return self.text

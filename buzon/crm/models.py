"""Business records that mail feeds: stores, agents and their groups (customers and records follow)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
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

    def __str__(self) -> str:
        first = self.emails.first()
        return self.name or (first.address if first else f"#{self.pk}")

    @property
    def primary_email(self) -> str:
        first = self.emails.order_by("id").first()
        return first.address if first else ""


class CustomerEmail(models.Model):
    """One address of a customer. An address belongs to one customer only (stored in lower case)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="emails")
    address = models.EmailField(_("email address"), max_length=320, unique=True)
    undeliverable = models.BooleanField(_("undeliverable"), default=False)
    undeliverable_reason = models.TextField(_("why undeliverable"), blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("customer email address")
        verbose_name_plural = _("customer email addresses")

    def __str__(self) -> str:
        return self.address

    def save(self, *args: object, **kwargs: object) -> None:
        self.address = self.address.strip().lower()
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
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.text

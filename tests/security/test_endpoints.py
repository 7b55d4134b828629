"""Every URL the resolver knows (web pages, the DRF router's API, downloads) tried as every role.

A URL with no rule below fails test_every_endpoint_has_a_rule, so a new page or viewset cannot
ship without someone deciding who may use it. Refusal is 401/403/404 or a redirect to sign-in;
access is anything else. POST-only endpoints are sent (empty) only for roles that must be refused,
so the test never deletes, probes or sends anything for real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import URLResolver, get_resolver, reverse

from buzon.mailboxes.models import AuditEntry
from buzon.outbound.models import EmailTemplate
from tests.security.conftest import ROLES, World

# Who is allowed: a set of roles. "anonymous" is never allowed unless listed.
EVERYONE = set(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
SEES_A = {"agent_a", "supervisor_a", "admin"}
MANAGES_A = {"supervisor_a", "admin"}
MANAGERS = {"supervisor_a", "supervisor_b", "admin"}  # pages not about one store's rows
ADMIN = {"admin"}
AGENT_A_ONLY = {"agent_a"}

Args = Callable[[World], dict[str, Any]]
NONE: Args = lambda w: {}  # noqa: E731


def _shared_canned(world: World) -> Any:
    from buzon.workspace.models import CannedResponse

    return CannedResponse.objects.get_or_create(
        owner=world.users["supervisor_a"], shortcut="hola",
        defaults={"store": world.a.store, "title": "Saludo", "text": "Hola, gracias por escribir."})[0]


def pk(get: Callable[[World], Any]) -> Args:
    return lambda w: {"pk": get(w).pk}


# name -> (method, who may, url kwargs, query string)
RULES: dict[str, tuple[str, set[str], Args, str]] = {
    "set_language": ("POST", EVERYONE, NONE, ""),
    "web:language": ("POST", EVERYONE, NONE, ""),  # the cookie for anyone; kept as theirs for a signed-in user
    "api:schema": ("GET", EVERYONE, NONE, ""),
    "api:docs": ("GET", EVERYONE, NONE, ""),
    "api:api-root": ("GET", SIGNED_IN, NONE, ""),
    "api:audit-list": ("GET", ADMIN, NONE, ""),
    "api:token-list": ("GET", SIGNED_IN, NONE, ""),  # the user's own tokens only
    "api:token-detail": ("GET", set(), lambda w: {"key": "forged"}, ""),  # a forged token key is a 404 for all
    # the world's first audit entry (not id 1: PostgreSQL's sequences go on after a rolled-back test)
    "api:audit-detail": ("GET", ADMIN, pk(lambda w: AuditEntry.objects.order_by("pk").first()), ""),
    "api:message-send": ("POST", SIGNED_IN, NONE, ""),
    "api:message-send-batch": ("POST", SIGNED_IN, NONE, ""),  # each item checked as a single send
    "api:message-pipeline": ("GET", SEES_A, pk(lambda w: w.a.message), ""),
    "api:message-delivery": ("GET", SEES_A, pk(lambda w: w.a.sent), ""),
    "api:sender-confirmation": ("POST", MANAGES_A, lambda w: {"account_id": w.a.account.pk, "step": "send"}, ""),
    "api:dkim": ("GET", ADMIN, lambda w: {"domain_id": w.a.domain.pk}, ""),
    "api:email-domain-list": ("GET", SIGNED_IN, NONE, ""),
    "api:email-domain-detail": ("GET", SEES_A, pk(lambda w: w.a.domain), ""),
    "api:email-account-list": ("GET", SIGNED_IN, NONE, ""),
    "api:email-account-test-new": ("POST", MANAGERS, NONE, ""),
    "api:email-account-detail": ("GET", SEES_A, pk(lambda w: w.a.account), ""),
    "api:email-account-sync": ("POST", MANAGES_A, pk(lambda w: w.a.account), ""),
    "api:email-account-test": ("POST", MANAGES_A, pk(lambda w: w.a.account), ""),
    "api:store-list": ("GET", SIGNED_IN, NONE, ""),
    "api:store-detail": ("GET", SEES_A, pk(lambda w: w.a.store), ""),
    "api:message-list": ("GET", SIGNED_IN, NONE, ""),
    "api:message-detail": ("GET", SEES_A, pk(lambda w: w.a.message), ""),
    "api:message-raw": ("GET", SEES_A, pk(lambda w: w.a.message), ""),
    "api:conversation-list": ("GET", SIGNED_IN, NONE, ""),  # each sees the conversations they may
    "api:conversation-detail": ("GET", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "api:conversation-reply": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "api:conversation-status": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "api:conversation-assign": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversations": ("GET", SIGNED_IN, NONE, ""),
    "web:conversation": ("GET", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-reply": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-status": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-assign": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "api:conversation-merge": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "api:conversation-move-out": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "api:conversation-forward": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "api:conversation-bulk": ("POST", SIGNED_IN, NONE, ""),  # each id is checked (tests/workspace/test_bulk.py)
    "web:conversation-merge": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-move-out": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-forward": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-changes": ("GET", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-leave": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversations-changes": ("GET", SIGNED_IN, NONE, ""),
    "web:conversations-bulk": ("POST", SIGNED_IN, NONE, ""),
    "web:conversation-accounts": ("GET", SIGNED_IN, NONE, "?find=ventas"),  # the accounts each may see
    "api:conversation-notes": ("GET", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    "web:conversation-note": ("POST", SEES_A, pk(lambda w: w.a.message.conversation), ""),
    # Canned responses: one's own, and those shared with one's store (store A's here).
    "web:canned-responses": ("GET", SIGNED_IN, NONE, ""),
    "web:canned-new": ("GET", SIGNED_IN, NONE, ""),
    "web:canned-edit": ("GET", MANAGES_A, pk(lambda w: _shared_canned(w)), ""),  # changed by its managers
    "web:canned-delete": ("POST", MANAGES_A, pk(lambda w: _shared_canned(w)), ""),
    "api:canned-response-list": ("GET", SIGNED_IN, NONE, ""),
    "api:canned-response-detail": ("GET", SEES_A, pk(lambda w: _shared_canned(w)), ""),
    # Cards: a customer, a job applicant, any registered record (buzon/web/views_customers.py).
    "web:customer": ("GET", SEES_A, pk(lambda w: w.a.customer), ""),
    "web:customer-edit": ("POST", SEES_A, pk(lambda w: w.a.customer), ""),
    "web:customer-merge": ("POST", SEES_A, pk(lambda w: w.a.customer), ""),
    "api:customer-merge": ("POST", SEES_A, pk(lambda w: w.a.customer), ""),
    "web:job-applicant": ("GET", SEES_A, pk(lambda w: w.a.applicant), ""),
    "web:record": ("GET", SEES_A, lambda w: {"key": "ticket", "pk": w.a.ticket.pk}, ""),
    "api:search": ("GET", SIGNED_IN, NONE, "?q=hola"),  # each finds only what they may see (tests/search)
    "api:email-template-list": ("GET", SIGNED_IN, NONE, ""),
    "api:email-template-detail": ("GET", SIGNED_IN, lambda w: {"pk": EmailTemplate.objects.first().pk}, ""),
    "api:email-template-preview": ("POST", ADMIN, lambda w: {"pk": EmailTemplate.objects.first().pk}, ""),
    "api:customer-list": ("GET", SIGNED_IN, NONE, ""),
    "api:customer-detail": ("GET", SEES_A, pk(lambda w: w.a.customer), ""),
    "api:customer-messages": ("GET", SEES_A, pk(lambda w: w.a.customer), ""),
    "api:contact-list": ("GET", SIGNED_IN, NONE, ""),
    "api:contact-detail": ("GET", SEES_A, pk(lambda w: w.a.contact), ""),
    "api:ticket-list": ("GET", SIGNED_IN, NONE, ""),
    "api:ticket-detail": ("GET", SEES_A, pk(lambda w: w.a.ticket), ""),
    "api:ticket-messages": ("GET", SEES_A, pk(lambda w: w.a.ticket), ""),
    "api:job-applicant-list": ("GET", SIGNED_IN, NONE, ""),
    "api:job-applicant-detail": ("GET", SEES_A, pk(lambda w: w.a.applicant), ""),
    "api:job-applicant-messages": ("GET", SEES_A, pk(lambda w: w.a.applicant), ""),
    "api:agent-list": ("GET", SIGNED_IN, NONE, ""),
    "api:agent-me": ("GET", SIGNED_IN - {"nobody", "admin"}, NONE, ""),  # 404 "you are not an agent"
    "api:agent-detail": ("GET", SEES_A, lambda w: {"pk": w.agents["agent_a"].pk}, ""),
    "api:agent-group-list": ("GET", SIGNED_IN, NONE, ""),
    "api:agent-group-detail": ("GET", SEES_A, pk(lambda w: w.a.group), ""),
    "api:user-list": ("GET", MANAGERS, NONE, ""),  # a supervisor's list holds their stores' agents only
    "api:user-detail": ("GET", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),
    "api:user-deactivate": ("POST", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),
    "api:user-reactivate": ("POST", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),
    "api:user-invitation": ("POST", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),
    "api:notification-list": ("GET", SIGNED_IN, NONE, ""),
    "api:notification-mark-read": ("POST", SIGNED_IN, NONE, ""),
    "api:notification-unread-count": ("GET", SIGNED_IN, NONE, ""),
    "api:notification-detail": ("GET", AGENT_A_ONLY, lambda w: {"pk": w.users["agent_a"].notifications.get().pk}, ""),
    # Signed tokens: they answer anyone (forged tokens are refused; tested with the outbound tokens).
    "outbound:pixel": ("GET", set(), lambda w: {"token": "forged"}, ""),  # a forged token is a 404 for all
    "outbound:unsubscribe": ("GET", EVERYONE, lambda w: {"token": "forged"}, ""),
    "outbound:confirm-sender": ("GET", EVERYONE, lambda w: {"token": "forged"}, ""),
    "web:login": ("GET", EVERYONE, NONE, ""),
    "web:logout": ("POST", EVERYONE, NONE, ""),
    "web:two-factor-verify": ("GET", SIGNED_IN, NONE, ""),
    "web:two-factor": ("GET", ADMIN, NONE, ""),
    "web:home": ("GET", SIGNED_IN, NONE, ""),
    "web:inbox": ("GET", SIGNED_IN, NONE, ""),
    "web:inbox-message": ("GET", SEES_A, pk(lambda w: w.a.message), ""),
    "web:attachment": ("GET", SEES_A, pk(lambda w: w.a.attachment), ""),
    # Answers only a signed URL made for a user who may see the message (tests/inbound); bare: 404.
    "web:attachment-inline": ("GET", set(), pk(lambda w: w.a.attachment), ""),
    "web:customers": ("GET", SIGNED_IN, NONE, ""),
    "web:tickets": ("GET", SIGNED_IN, NONE, ""),
    "web:job-applicants": ("GET", SIGNED_IN, NONE, ""),
    "web:notifications": ("GET", SIGNED_IN, NONE, ""),
    "web:notifications-read": ("POST", SIGNED_IN, NONE, ""),
    "web:bell": ("GET", SIGNED_IN, NONE, ""),
    "web:agent-status": ("POST", SIGNED_IN, NONE, ""),
    "web:pending-passwords": ("GET", SIGNED_IN, NONE, ""),
    "web:settings": ("GET", SIGNED_IN, NONE, ""),
    "web:account-list": ("GET", SIGNED_IN, NONE, ""),
    "web:account-new": ("GET", MANAGERS, NONE, ""),
    "web:account-test": ("POST", MANAGERS, NONE, ""),
    "web:account-preset-hint": ("GET", MANAGERS, NONE, "?email_address=x@gmail.com"),
    "web:account-view": ("GET", SEES_A, pk(lambda w: w.a.account), ""),
    "web:account-edit": ("GET", MANAGES_A, pk(lambda w: w.a.account), ""),
    "web:account-test-saved": ("POST", MANAGES_A, pk(lambda w: w.a.account), ""),
    "web:account-status": ("GET", SEES_A, pk(lambda w: w.a.account), ""),
    "web:account-sync": ("POST", MANAGES_A, pk(lambda w: w.a.account), ""),
    "web:account-delete": ("GET", MANAGES_A, pk(lambda w: w.a.account), ""),
    "web:oauth-start": ("GET", MANAGES_A, lambda w: {"pk": w.a.account.pk, "provider": "google"}, ""),
    "web:oauth-callback": ("GET", SIGNED_IN, NONE, ""),  # answers "no sign-in started" unless one was
    "web:account-default": ("POST", ADMIN, lambda w: {"pk": w.a.account.pk, "direction": "incoming"}, ""),
    "web:domain-list": ("GET", SIGNED_IN, NONE, ""),
    "web:domain-new": ("GET", ADMIN, NONE, ""),
    "web:domain-edit": ("GET", ADMIN, pk(lambda w: w.a.domain), ""),
    "web:domain-delete": ("GET", ADMIN, pk(lambda w: w.a.domain), ""),
    "web:agent-list": ("GET", MANAGERS, NONE, ""),
    "web:agent-update": ("POST", MANAGES_A, lambda w: {"pk": w.agents["agent_a"].pk}, ""),
    "web:person-new": ("GET", MANAGERS, NONE, ""),
    "web:person-edit": ("GET", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),
    "web:person-deactivate": ("GET", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),  # asks first
    "web:person-reactivate": ("POST", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),
    "web:person-invite": ("POST", MANAGES_A, pk(lambda w: w.users["agent_a"]), ""),
    "web:group-list": ("GET", MANAGERS, NONE, ""),
    "web:group-new": ("GET", MANAGERS, NONE, ""),
    "web:group-edit": ("GET", MANAGES_A, pk(lambda w: w.a.group), ""),
    "web:group-delete": ("GET", MANAGES_A, pk(lambda w: w.a.group), ""),  # asks first
    # Signed one-time links: a forged one is a 404 for everyone (tests/web/test_people.py).
    "web:invitation": ("GET", set(), lambda w: {"token": "forged"}, ""),
    # Open to anyone, signed in or not, but only while the site has no user yet (tests/web/
    # test_first_run.py and tests/web/test_people.py): here users exist, so it is a 404 for all.
    "web:setup": ("GET", set(), NONE, ""),
    "web:store-list": ("GET", SIGNED_IN, NONE, ""),
    "web:store-new": ("GET", ADMIN, NONE, ""),
    "web:store-edit": ("GET", ADMIN, pk(lambda w: w.a.store), ""),
    "web:store-delete": ("GET", ADMIN, pk(lambda w: w.a.store), ""),
    "web:compose": ("GET", SIGNED_IN, NONE, ""),
    # Another store's record renders like a missing one: the form without it, for any signed-in user
    # (tests/security/test_reply_references.py checks nothing of the record shows).
    "web:compose-template": ("GET", SIGNED_IN, NONE, "?record_type=ticket&record_id={ticket}"),
    "web:outgoing": ("GET", SEES_A, pk(lambda w: w.a.sent), ""),
    "web:template-list": ("GET", SIGNED_IN, NONE, ""),
    "web:template-new": ("GET", ADMIN, NONE, ""),
    "web:template-edit": ("GET", ADMIN, lambda w: {"pk": EmailTemplate.objects.first().pk}, ""),
    "web:template-preview": ("GET", ADMIN, lambda w: {"pk": EmailTemplate.objects.first().pk}, ""),
    "web:sender-confirmation": ("GET", ADMIN, pk(lambda w: w.a.account), ""),
    "web:deliverability": ("GET", ADMIN, NONE, ""),
    "web:deliverability-domain": ("GET", ADMIN, pk(lambda w: w.a.domain), ""),
    "web:api-tokens": ("GET", SIGNED_IN, NONE, ""),
    "web:api-token-revoke": ("POST", SIGNED_IN, lambda w: {"key": "forged"}, ""),
    "web:healthz": ("GET", EVERYONE, NONE, ""),
    "web:readyz": ("GET", EVERYONE, NONE, ""),
    "web:metrics": ("GET", EVERYONE, NONE, ""),  # guarded by BUZON_METRICS_TOKEN when set
    "web:processes": ("GET", ADMIN, NONE, ""),
    "web:audit": ("GET", ADMIN, NONE, ""),
    "web:troubleshooting": ("GET", SIGNED_IN, NONE, ""),
    "web:troubleshooting-topic": ("GET", SIGNED_IN, lambda w: {"slug": "unknown-host"}, ""),
}


def _names(patterns: list[Any], namespace: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _names(pattern.url_patterns, inner)
        else:
            yield namespace + (pattern.name or f"<unnamed {pattern.pattern}>")


def all_endpoints() -> list[str]:
    return sorted(set(_names(get_resolver().url_patterns)))


def test_every_endpoint_has_a_rule():
    missing = [name for name in all_endpoints() if name not in RULES]
    assert not missing, f"endpoints with no access rule in tests/security/test_endpoints.py: {missing}"
    stale = [name for name in RULES if name not in all_endpoints()]
    assert not stale, f"rules for endpoints that no longer exist: {stale}"


def refused(response: Any) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    return response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_as(role: str, world: World):
    wrong = []
    client = world.client(role)
    for name in all_endpoints():
        method, allowed, args, query = RULES[name]
        if method == "POST" and role in allowed:
            continue  # never perform a real change, probe or send here
        url = reverse(name, kwargs=args(world)) + query.format(ticket=world.a.ticket.pk)
        response = client.post(url) if method == "POST" else client.get(url)
        if role in allowed and refused(response):
            wrong.append(f"{name} {url}: {role} refused ({response.status_code})")
        elif role not in allowed and not refused(response):
            wrong.append(f"{name} {url}: {role} let in ({response.status_code})")
    assert not wrong, "\n".join(wrong)

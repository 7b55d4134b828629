"""The sidebar: one list of entries, so adding a page to the menu is a one-line diff.

Other contexts add their pages here (Inbox, Customers, Tickets, Compose...) by URL name. An entry
whose URL is not registered yet is simply not shown, so a line can land before its page does.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: str | Promise
    icon: str  # a Bootstrap Icons name, e.g. "inbox"
    section: str  # key of SECTIONS
    staff_only: bool = False
    managers_only: bool = False  # administrators and supervisors


#: Sidebar sections in display order: key -> heading (None: no heading).
SECTIONS: list[tuple[str, str | Promise | None]] = [
    ("main", None),
    ("records", _("Records")),
    ("settings", _("Settings")),
]

NAV: list[NavItem] = [
    NavItem("web:home", _("Home"), "house", "main"),
    NavItem("web:conversations", _("Inbox"), "inbox", "main"),
    NavItem("web:inbox", _("Messages"), "envelope", "main"),
    NavItem("web:compose", _("Compose"), "pencil-square", "main"),
    NavItem("web:canned-responses", _("Canned responses"), "chat-square-text", "main"),
    NavItem("web:customers", _("Customers"), "people", "records"),
    NavItem("web:tickets", _("Tickets"), "ticket-perforated", "records"),
    NavItem("web:job-applicants", _("Job applicants"), "person-badge", "records"),
    NavItem("web:settings", _("Email / Notifications"), "envelope-at", "settings"),
    NavItem("web:account-list", _("Email Account"), "person-lines-fill", "settings"),
    NavItem("web:domain-list", _("Email Domain"), "globe2", "settings"),
    NavItem("web:template-list", _("Email templates"), "file-earmark-text", "settings"),
    NavItem("web:deliverability", _("Deliverability"), "shield-check", "settings", staff_only=True),
    NavItem("web:store-list", _("Stores"), "shop", "settings"),
    NavItem("web:agent-list", _("Agents"), "person-gear", "settings", managers_only=True),
    NavItem("web:group-list", _("Agent groups"), "diagram-3", "settings", managers_only=True),
    NavItem("web:processes", _("Processes"), "cpu", "settings", staff_only=True),
    NavItem("web:audit", _("Audit log"), "journal-text", "settings", staff_only=True),
    NavItem("web:troubleshooting", _("Troubleshooting"), "life-preserver", "settings"),
]


@dataclass(frozen=True)
class ShownItem:
    url: str
    label: str | Promise
    icon: str
    active: bool


def sidebar(path: str, *, is_staff: bool,
            is_manager: bool = False) -> list[tuple[str | Promise | None, list[ShownItem]]]:
    """The sections and entries to show for this request; the entry owning the page is active.

    "Owning" is the longest URL that prefixes the path, so /settings/email/accounts/3/ marks
    Email Account, not Email / Notifications.
    """
    resolved: list[tuple[NavItem, str]] = []
    for item in NAV:
        if (item.staff_only and not is_staff) or (item.managers_only and not (is_staff or is_manager)):
            continue
        try:
            resolved.append((item, reverse(item.url_name)))
        except NoReverseMatch:
            continue
    owners = [url for _item, url in resolved if path == url or (url != "/" and path.startswith(url))]
    active_url = max(owners, key=len, default=None)
    shown: list[tuple[str | Promise | None, list[ShownItem]]] = []
    for key, heading in SECTIONS:
        items = [ShownItem(url, item.label, item.icon, url == active_url) for item, url in resolved
                 if item.section == key]
        if items:
            shown.append((heading, items))
    return shown

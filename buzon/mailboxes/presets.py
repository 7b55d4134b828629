"""Known providers: an address on one of their domains needs no Email Domain of its own.

A custom domain hosted at one of them (Google Workspace, Microsoft 365, Zoho) picks the preset on
its Email Domain instead. Values are the providers' published settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str  # "ssl" | "starttls" | "none"


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    imap: Endpoint
    pop3: Endpoint | None
    smtp: Endpoint
    domains: tuple[str, ...]  # consumer address domains; empty for hosted custom domains
    help: str | Promise = ""  # what the provider needs switched on


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in [
        Preset(
            "gmail", "Gmail",
            Endpoint("imap.gmail.com", 993, "ssl"), Endpoint("pop.gmail.com", 995, "ssl"),
            Endpoint("smtp.gmail.com", 465, "ssl"), ("gmail.com", "googlemail.com"),
            _("Turn on IMAP in Gmail (Settings > Forwarding and POP/IMAP) and use an app password."),
        ),
        Preset(
            "google_workspace", "Google Workspace",
            Endpoint("imap.gmail.com", 993, "ssl"), Endpoint("pop.gmail.com", 995, "ssl"),
            Endpoint("smtp.gmail.com", 465, "ssl"), (),
        ),
        Preset(
            "outlook", "Outlook.com",
            Endpoint("outlook.office365.com", 993, "ssl"), Endpoint("outlook.office365.com", 995, "ssl"),
            Endpoint("smtp-mail.outlook.com", 587, "starttls"),
            ("outlook.com", "hotmail.com", "live.com", "msn.com", "outlook.es", "hotmail.es"),
        ),
        Preset(
            "office365", "Microsoft 365",
            Endpoint("outlook.office365.com", 993, "ssl"), Endpoint("outlook.office365.com", 995, "ssl"),
            Endpoint("smtp.office365.com", 587, "starttls"), (),
        ),
        Preset(
            "yahoo", "Yahoo Mail",
            Endpoint("imap.mail.yahoo.com", 993, "ssl"), Endpoint("pop.mail.yahoo.com", 995, "ssl"),
            Endpoint("smtp.mail.yahoo.com", 465, "ssl"), ("yahoo.com", "yahoo.es", "ymail.com", "rocketmail.com"),
        ),
        Preset(
            "icloud", "iCloud Mail",
            Endpoint("imap.mail.me.com", 993, "ssl"), None,
            Endpoint("smtp.mail.me.com", 587, "starttls"), ("icloud.com", "me.com", "mac.com"),
        ),
        Preset(
            "zoho", "Zoho Mail",
            Endpoint("imap.zoho.com", 993, "ssl"), Endpoint("pop.zoho.com", 995, "ssl"),
            Endpoint("smtp.zoho.com", 465, "ssl"), ("zoho.com", "zohomail.com"),
        ),
        Preset(
            "yandex", "Yandex Mail",
            Endpoint("imap.yandex.com", 993, "ssl"), Endpoint("pop.yandex.com", 995, "ssl"),
            Endpoint("smtp.yandex.com", 465, "ssl"), ("yandex.com", "yandex.ru", "ya.ru"),
        ),
        Preset(
            "mailru", "Mail.ru",
            Endpoint("imap.mail.ru", 993, "ssl"), Endpoint("pop.mail.ru", 995, "ssl"),
            Endpoint("smtp.mail.ru", 465, "ssl"), ("mail.ru", "inbox.ru", "list.ru", "bk.ru"),
        ),
        Preset(
            "gmx", "GMX",
            Endpoint("imap.gmx.net", 993, "ssl"), Endpoint("pop.gmx.net", 995, "ssl"),
            Endpoint("mail.gmx.net", 587, "starttls"), ("gmx.com", "gmx.net", "gmx.de", "gmx.es"),
        ),
    ]
}

_BY_DOMAIN = {domain: preset for preset in PRESETS.values() for domain in preset.domains}


def preset_for_address(address: str) -> Preset | None:
    domain = address.rpartition("@")[2].strip().lower()
    return _BY_DOMAIN.get(domain)


def preset_choices() -> list[tuple[str, str]]:
    return [(p.key, p.name) for p in PRESETS.values()]

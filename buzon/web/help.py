"""Help texts for options whose model field has none, so every option on a form explains itself.

Written for the person filling in the form, from the meaning the product documents give each option.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def store_limit_text() -> str:
    """The store field's help, with the limit this site set (read when shown, not at import)."""
    return str(_("The online shop or branch this account belongs to (at most %(limit)s incoming accounts per "
                 "store: the BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE setting).")
               % {"limit": settings.MAX_INCOMING_ACCOUNTS_PER_STORE})


FALLBACK_HELP: dict[str, StrOrPromise] = {
    # Domains and accounts
    "domain_name": _("The part after the @, e.g. example.com. Accounts on it inherit these server settings."),
    "incoming_protocol": _("IMAP keeps folders and read state on the server; POP3 downloads the inbox only."),
    "incoming_host": _("Name of the IMAP or POP3 server, e.g. imap.example.com. "
                       "Leave blank to use the domain's or the provider's."),
    "incoming_port": _("Leave blank for the usual port: 993 (IMAP, SSL), 143 (IMAP, STARTTLS), "
                       "995 (POP3, SSL), 110 (POP3, STARTTLS)."),
    "incoming_security": _("SSL/TLS encrypts from the first byte; STARTTLS upgrades a plain connection. "
                           "Use None only inside a trusted network."),
    "smtp_host": _("Name of the SMTP server, e.g. smtp.example.com. Leave blank to use the domain's or the "
                   "provider's."),
    "smtp_port": _("Leave blank for the usual port: 465 (SSL), 587 (STARTTLS), 25 (none)."),
    "smtp_security": _("SSL/TLS (usually port 465) or STARTTLS (usually port 587). "
                       "Use None only inside a trusted network."),
    "attachment_limit_mb": _("Incoming: larger attachments are left out of stored mail, named in a note instead. "
                             "Outgoing: a message sent from this account may carry at most this many MB of "
                             "attachments in total. Leave blank to use the domain's limit."),
    # Account, general
    "email_address": _("The address mail is received at and sent from. Known providers (Gmail, Outlook, "
                       "Yahoo...) need no email domain; any other address needs its domain created first."),
    "display_name": _("The name recipients see next to the address, e.g. Customer Support."),
    "domain": _("Leave blank to pick the domain of the address automatically."),
    "store": lazy(store_limit_text, str)(),
    "password": _("The mailbox password, or an app password where the provider requires one."),
    # Incoming
    "incoming_enabled": _("Download mail from this account's inbox into Buzón."),
    "agent_group": _("New customers found by this account are shared among this group's agents: evenly among "
                     "those who are free and signed in, else among the rest."),
    "notify_unreplied_after_minutes": _("If no one has replied to a received email after this many minutes (an "
                                        "auto-reply does not count), send a notification, once per conversation. "
                                        "Leave blank for no notification."),
    # Outgoing
    "outgoing_enabled": _("Send mail from Buzón through this account's SMTP server."),
    "add_signature": _("Add the signature below to the end of every email sent from this account."),
    "signature": _("Plain text added at the end of each email when “add signature” is on."),
    "auto_reply_enabled": _("Answer the first email of each new conversation with the message below "
                            "(never automatic mail, mailing lists or bounces)."),
    "auto_reply_message": _("The text of the automatic reply."),
}

#: On the domain form the same server fields are the defaults for every account on the domain.
DOMAIN_HELP: dict[str, StrOrPromise] = {
    "incoming_host": _("Name of the IMAP or POP3 server for every account on this domain, e.g. imap.example.com. "
                       "Leave blank when the provider chosen above hosts the domain."),
    "smtp_host": _("Name of the SMTP server for every account on this domain, e.g. smtp.example.com. "
                   "Leave blank when the provider chosen above hosts the domain."),
}

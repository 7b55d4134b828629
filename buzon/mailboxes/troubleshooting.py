"""Troubleshooting topics: for each connection failure, its usual causes and how to fix them.

Each MailServerError names its topic in `help_slug`; the web UI renders these at
/help/troubleshooting/<slug>/ and the API links there. Texts are lazy, so they follow the reader's
language (Spanish or English).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from buzon.mailboxes.errors import ERRORS_BY_CODE


@dataclass(frozen=True)
class Topic:
    slug: str
    code: str  # the MailServerError code this topic explains
    title: str | Promise
    summary: str | Promise
    causes: tuple[str | Promise, ...]
    fixes: tuple[str | Promise, ...]


_PORTS = _(
    "Match the port and the security setting: IMAP 993, POP3 995 and SMTP 465 use SSL/TLS from the start; "
    "IMAP 143, POP3 110 and SMTP 587 start unencrypted and switch with STARTTLS."
)

_TOPICS = (
    Topic(
        "unknown-host", "dns", _("The server name was not found"),
        _("Buzón asked DNS for the server's address and got no answer for that name."),
        (
            _("A typo in the server name (for example imap.gmial.com instead of imap.gmail.com)."),
            _("The name of the website was used instead of the mail server's name."),
            _("This machine has no working DNS, or cannot reach the internet."),
        ),
        (
            _("Copy the server name exactly from your provider's help page (often imap.…, pop.… or smtp.…)."),
            _("For a known provider (Gmail, Outlook, Yahoo, iCloud, Zoho…), leave the server empty: "
              "Buzón fills it in."),
            _("Ask your administrator whether this machine can resolve outside names."),
        ),
    ),
    Topic(
        "connection-refused", "refused", _("The server refused the connection"),
        _("The server exists, but nothing accepts connections on that port."),
        (
            _("The port is wrong for this service (for example 25 instead of 587)."),
            _("The mail service is stopped on the server, or does not offer this protocol (POP3 is often off)."),
            _("A firewall rejects the connection."),
        ),
        (_PORTS, _("Check in the provider's settings that IMAP or POP access is switched on."),
         _("Ask the server's administrator whether the service is running and which ports it uses.")),
    ),
    Topic(
        "no-answer", "timeout", _("The server did not answer"),
        _("Buzón waited for the server and heard nothing back within the time allowed."),
        (
            _("A firewall on this network or on the server silently drops the connection."),
            _("Many hosting providers block outgoing port 25; use 587 or 465 for SMTP."),
            _("The server is down or overloaded, or the port belongs to another service."),
        ),
        (
            _("Try the provider's other port for the same service (SMTP 587 or 465, IMAP 993 or 143)."),
            _("Ask your network administrator to allow outgoing connections to the mail server's ports."),
            _("Wait a few minutes and test again; if it persists, contact your mail provider."),
        ),
    ),
    Topic(
        "tls-handshake", "tls", _("The secure connection could not be set up"),
        _("Buzón and the server did not agree on encryption (TLS)."),
        (
            _("SSL/TLS was chosen for a port that expects STARTTLS, or the other way round."),
            _("STARTTLS or no encryption was chosen for a port that expects TLS from the first byte (993, 995, "
              "465): the server waits in silence for the encryption to start."),
            _("The server does not offer STARTTLS, or refuses to log in without encryption."),
            _("The server only supports old, insecure versions of TLS."),
        ),
        (_PORTS, _("Try the other security mode for the same port."),
         _("Ask the server's administrator to enable TLS 1.2 or later.")),
    ),
    Topic(
        "certificate", "certificate", _("The server's certificate cannot be trusted"),
        _("The server proved its identity with a certificate that Buzón could not verify."),
        (
            _("The server name typed differs from the name on the certificate (for example an IP address, "
              "or mail.example.com when the certificate is for the hosting company's name)."),
            _("The certificate has expired."),
            _("The certificate is self-signed or issued by a company authority this machine does not know."),
        ),
        (
            _("Use the exact server name the certificate was issued for; your provider's help page gives it."),
            _("Ask the server's administrator to renew the certificate."),
            _("For a company authority, have the administrator add it to this machine (BUZON_CA_FILE)."),
            _("Only for a self-signed server you trust: turn off “verify TLS certificates” on the account."),
        ),
    ),
    Topic(
        "login-rejected", "auth", _("The login or password was rejected"),
        _("The server answered, but did not accept this account's login."),
        (
            _("The password is wrong or was changed."),
            _("The provider requires an app password (Gmail, Yahoo, iCloud, Outlook with two-step verification)."),
            _("IMAP or POP access is switched off in the mailbox's settings (Gmail: Settings > Forwarding and "
              "POP/IMAP > Enable IMAP)."),
            _("The server expects a different login name than the email address."),
        ),
        (
            _("Type the password again."),
            _("Create an app password in the provider's security settings and use it here."),
            _("Switch on IMAP or POP access in the mailbox's settings."),
            _("Fill in “different login ID” if the server expects another user name."),
            _("Old servers may reject accented characters: try “use ASCII encoding for the password”."),
        ),
    ),
    Topic(
        "unexpected-answer", "protocol", _("The server answered unexpectedly"),
        _("Something answered on that port, but not the way this kind of mail server should."),
        (
            _("The port belongs to another service (for example an SMTP port entered as IMAP)."),
            _("IMAP was chosen for a POP3-only server, or the other way round."),
            _("The server closed the connection, for example because of too many connections at once."),
        ),
        (_PORTS, _("Check the incoming protocol (IMAP or POP3)."),
         _("Test again in a few minutes; if it persists, send the technical detail to your provider.")),
    ),
    Topic(
        "missing-folder", "folder", _("A folder does not exist"),
        _("The login worked, but one of the folders to sync could not be opened."),
        (
            _("The folder name differs in spelling or letter case."),
            _("Servers name folders differently (Sent, Sent Items, INBOX.Sent, [Gmail]/Sent Mail)."),
            _("The folder was renamed or deleted."),
        ),
        (
            _("Copy the folder name exactly as your mail program shows it, including parent folders."),
            _("Remove the folder from the list if it is no longer needed; INBOX always exists."),
        ),
    ),
    Topic(
        "configuration", "config", _("The account's settings are incomplete"),
        _("Buzón could not even try to connect because something in the settings is missing or unusable."),
        (
            _("The address is not on a known provider and has no Email Domain with its servers."),
            _("No password is stored, or it was stored with an encryption key that is no longer configured."),
            _("“Use ASCII encoding” is on but the password has accented characters."),
        ),
        (
            _("Create an Email Domain for the address's domain, or fill in the servers on the account."),
            _("Enter the password again."),
        ),
    ),
    Topic(
        "blocked-address", "blocked", _("Buzón refuses to connect to this server or port"),
        _("So that account settings cannot be used to reach into the machine Buzón runs on or to scan "
          "ports, connections go only to mail servers."),
        (
            _("The server name leads to a link-local or cloud-metadata address (169.254.x.x, fe80::)."),
            _("The port is not a mail port (993, 143, 995, 110, 465, 587, 25, 2525)."),
            _("The server is on this machine or a private network, and the administrator turned those off."),
        ),
        (
            _("Use the mail server's real name and port, as your provider documents them."),
            _("An administrator can allow other ports with BUZON_PROBE_ALLOWED_PORTS, or private networks "
              "with BUZON_PROBE_ALLOW_PRIVATE=1."),
        ),
    ),
)

_BY_SLUG = {topic.slug: topic for topic in _TOPICS}
assert {topic.code for topic in _TOPICS} == set(ERRORS_BY_CODE), "every error code needs a topic"
assert {cls.help_slug for cls in ERRORS_BY_CODE.values()} == set(_BY_SLUG), "every help_slug needs a topic"


def troubleshooting_topic(slug: str) -> Topic | None:
    return _BY_SLUG.get(slug)


def all_topics() -> list[Topic]:
    return list(_TOPICS)

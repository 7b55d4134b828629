"""Email addresses as they go on the wire, internationalised ones included (RFC 5890, 6531, 6532).

- A domain written in Unicode (ana@correos.españa) is sent as its IDNA A-labels
  (ana@correos.xn--espaa-rta), in the envelope and, unless the message travels as UTF-8, in the
  headers. That form works with every server. The conversion uses the `idna` package: IDNA 2008
  with the UTS #46 mapping, non-transitional, as browsers and libidn2-based MTAs (Postfix, Exim)
  do. Python's built-in "idna" codec is IDNA 2003, which maps "ß" to "ss" and so would send mail
  for faß.de to fass.de, someone else's domain.
- A local part with non-ASCII characters (josé@ejemplo.es) has no ASCII form. It travels only
  through a server that offers SMTPUTF8 (RFC 6531), with `MAIL FROM:<…> SMTPUTF8` and the headers
  in UTF-8 (RFC 6532). Whether the server offers it is only known once connected, so
  `smtp.transmit` decides; a server that does not fails the message at once, naming the address
  (`no_smtputf8_text`), because trying again would never work.

`parse()` is also the check made before a message is queued (`queue.check`, the compose form), so
an address that can never be sent is refused with its reason instead of failing later.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import Header
from email.utils import getaddresses

import idna
from django.core.validators import EmailValidator
from django.utils.translation import gettext as _

MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1
MAX_ADDRESS_OCTETS = 254  # RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets

_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
# Unicode categories never allowed in an address: controls, format characters, separators, unassigned.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # a display name with any of these is quoted (RFC 5322 3.2.3)
_ESCAPES = re.compile(r'[\\"]')
_VALIDATOR = EmailValidator()
# A bare ASCII addr-spec, dot-atom local part and LDH labels: what nearly every address is. The
# email package's parsers give such a string back unchanged, at a cost per address that adds up
# to a tenth of sending a message, so callers check this first (a test compares them).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_BARE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def is_bare(value: str) -> bool:
    """Whether `value` is a plain ASCII address with nothing to parse (no name, comment or quoting)."""
    return _BARE.fullmatch(value) is not None


class AddressError(ValueError):
    """An address that cannot be sent; `str(exc)` says why in plain words, naming it."""


@dataclass(frozen=True)
class Mailbox:
    """One address. `domain` as written (lower-cased), `ascii_domain` its A-labels (or the same literal)."""

    name: str
    local: str
    domain: str
    ascii_domain: str

    @property
    def utf8(self) -> bool:
        """Only a server offering SMTPUTF8 can carry it, and the headers naming it must be UTF-8."""
        return not self.local.isascii()

    @property
    def address(self) -> str:
        """As people write it (Unicode domain)."""
        return f"{self.local}@{self.domain}"

    @property
    def envelope(self) -> str:
        """For MAIL FROM / RCPT TO: the domain in A-labels, which every server can route."""
        return f"{self.local}@{self.ascii_domain}"

    def header(self, utf8: bool) -> str:
        """As it appears in From/To/…: ASCII (A-labels, RFC 2047 name) unless the message is UTF-8."""
        if utf8:
            return _with_name(_quoted(self.name), self.address)
        if self.utf8:
            raise AddressError(no_smtputf8_text([self.address]))
        name = _quoted(self.name) if self.name.isascii() else Header(self.name, "utf-8").encode()
        return _with_name(name, self.envelope)

    def human(self) -> str:
        """Name and address as written, for storing and showing (never for the wire)."""
        return _with_name(_quoted(self.name), self.address)


def format_human(name: str, address: str) -> str:
    """"Name <address>" as written, quoting the name where needed but encoding nothing (see Mailbox.human)."""
    return _with_name(_quoted(name), address)


def _quoted(name: str) -> str:
    if not name:
        return ""
    escaped = _ESCAPES.sub(r"\\\g<0>", name)
    return f'"{escaped}"' if _SPECIALS.search(name) else escaped


def _with_name(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


def _unsendable(address: str, why: str = "") -> AddressError:
    if why:
        return AddressError(_("%(address)s is not a valid email address: %(why)s") % {"address": address, "why": why})
    return AddressError(_("%(address)s is not a valid email address.") % {"address": address})


# RFC 5321 4.1.2 Quoted-string (RFC 6531 3.3 adds UTF-8): "Big Bug bb"@bug.com is one address, spaces and
# all. Django's validator refuses spaces between the quotes, so a reply to such a sender could not be sent.
_QUOTED_LOCAL = re.compile(r'"(?:[^\x00-\x1f"\\\x7f]|\\[\x20-\x7e])*"')


def _local_ok(local: str) -> bool:
    if _QUOTED_LOCAL.fullmatch(local):
        return True
    if local.isascii():
        return bool(_VALIDATOR.user_regex.match(local))
    # RFC 6531 3.3: a dot-atom whose atext also takes any UTF-8 character beyond ASCII.
    return all(part and all(c in _ATEXT or (ord(c) > 127 and unicodedata.category(c) not in _FORBIDDEN_CATEGORIES)
                            for c in part) for part in local.split("."))


def ascii_domain(domain: str) -> str:
    """The domain in A-labels (IDNA 2008, UTS #46 mapping); raises idna.IDNAError (a UnicodeError)."""
    if domain.isascii() and not any(label.lower().startswith("xn--") for label in domain.split(".")):
        return domain.lower()  # the common case, without idna's per-character checks
    return idna.encode(domain, uts46=True, transitional=False).decode("ascii")


def dns_name(domain: str) -> str:
    """The domain as DNS records name it (A-labels, no trailing dot); unchanged if it is not a valid name."""
    domain = domain.strip().rstrip(".")
    try:
        return ascii_domain(domain)
    except (idna.IDNAError, UnicodeError):
        return domain.lower()


def unicode_domain(domain: str) -> str:
    """The domain as people read it (A-labels decoded); unchanged if it does not decode."""
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain.lower()


def mailbox(name: str, address: str, shown: str | None = None) -> Mailbox:
    """Check one address (with its display name); raises AddressError naming `shown` (or the address)."""
    shown = shown or address
    if any(ord(c) < 32 or ord(c) == 127 for c in name + address):
        raise _unsendable(shown.strip())
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise _unsendable(shown)
    if not _local_ok(local):
        raise _unsendable(shown, _("the part before the @ has characters an address cannot have."))
    if len(local.encode()) > MAX_LOCAL_OCTETS:
        raise _unsendable(shown, _("the part before the @ is longer than 64 bytes."))
    if domain.startswith("[") and domain.endswith("]"):
        if not _VALIDATOR.validate_domain_part(domain):
            raise _unsendable(shown, _("%(domain)s is not a valid domain.") % {"domain": domain})
        return Mailbox(name, local, domain, domain)
    try:
        encoded = ascii_domain(domain)
    except (idna.IDNAError, UnicodeError) as exc:
        raise _unsendable(shown, _("%(domain)s is not a valid domain.") % {"domain": domain}) from exc
    if encoded not in _VALIDATOR.domain_allowlist and not _VALIDATOR.validate_domain_part(encoded):
        raise _unsendable(shown, _("%(domain)s is not a valid domain.") % {"domain": domain})
    result = Mailbox(name, local, unicode_domain(encoded) if not domain.isascii() else encoded, encoded)
    if len(result.envelope.encode()) > MAX_ADDRESS_OCTETS:
        raise _unsendable(shown, _("it is longer than 254 bytes."))
    return result


def parse(text: str) -> Mailbox:
    """One address as typed ("José Pérez <josé@ejemplo.es>" or a bare address); raises AddressError."""
    text = text.strip()
    pairs = [pair for pair in getaddresses([text]) if pair != ("", "")]
    if len(pairs) != 1 or not pairs[0][1]:
        raise _unsendable(text)
    return mailbox(pairs[0][0], pairs[0][1], text)


def parse_all(values: Iterable[str]) -> list[Mailbox]:
    """Every address in these header values (each may hold several, separated by commas)."""
    found: list[Mailbox] = []
    for value in values:
        for name, address in getaddresses([value]):
            if name or address:
                found.append(mailbox(name, address, _with_name(name, address) if name else address))
    return found


def no_smtputf8_text(addresses: Iterable[str], server: str = "") -> str:
    """Why a message naming these addresses cannot go through a server without SMTPUTF8."""
    listed = ", ".join(addresses)
    if server:
        text = _("%(addresses)s has characters other than plain ASCII before the @. Only mail servers that "
                 "offer SMTPUTF8 (internationalised email) can carry such an address, and %(server)s does not. "
                 "The message was not sent: use another address, or an outgoing server that supports SMTPUTF8.")
    else:
        text = _("%(addresses)s has characters other than plain ASCII before the @, so it can only be sent as "
                 "internationalised email (SMTPUTF8).")
    return text % {"addresses": listed, "server": server}

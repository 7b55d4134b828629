"""Deliverability of a sending domain: the exact SPF, DKIM and DMARC records, and checking them in DNS.

SPF names the servers that send for the domain (the provider's include, or the domain's SMTP
host); DKIM publishes the public half of the key Buzón signs with; DMARC starts at `p=none` with
reports to postmaster, the safe first step before tightening to quarantine or reject.
`BUZON_DNS_SERVERS` (host or host:port, comma-separated) points the check at given resolvers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import dns.exception
import dns.resolver
from django.conf import settings
from django.utils.translation import gettext as _

from buzon.mailboxes.models import EmailDomain
from buzon.outbound import addresses, signing
from buzon.outbound.models import DkimKey

# What each provider asks to be included in SPF (their published instructions).
SPF_INCLUDES = {
    "gmail": "include:_spf.google.com", "google_workspace": "include:_spf.google.com",
    "outlook": "include:spf.protection.outlook.com", "office365": "include:spf.protection.outlook.com",
    "zoho": "include:zoho.com", "yahoo": "include:_spf.mail.yahoo.com", "icloud": "include:icloud.com",
    "yandex": "include:_spf.yandex.net", "mailru": "include:_spf.mail.ru", "gmx": "include:gmx.net",
}


@dataclass(frozen=True)
class DnsRecord:
    kind: str  # spf | dkim | dmarc
    name: str
    type: str
    value: str
    status: str = ""  # "", ok, missing, wrong, error
    found: tuple[str, ...] = ()
    explanation: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spf_mechanism(domain: EmailDomain) -> str:
    if domain.preset in SPF_INCLUDES:
        return SPF_INCLUDES[domain.preset]
    return f"a:{domain.smtp_host}" if domain.smtp_host else "mx"


def expected_records(domain: EmailDomain) -> list[DnsRecord]:
    name = addresses.dns_name(domain.domain_name)  # an internationalised domain is published in A-labels
    records = [DnsRecord("spf", name, "TXT", f"v=spf1 {spf_mechanism(domain)} ~all")]
    key = DkimKey.objects.filter(domain=domain).first()
    if key is not None:
        records.append(DnsRecord("dkim", signing.record_name(key), "TXT", signing.record_value(key)))
    records.append(DnsRecord("dmarc", f"_dmarc.{name}", "TXT", f"v=DMARC1; p=none; rua=mailto:postmaster@{name}"))
    return records


def generate_key(domain: EmailDomain) -> DkimKey:
    return signing.generate(domain)


def _resolver() -> dns.resolver.Resolver:
    servers = getattr(settings, "OUTBOUND_DNS_SERVERS", [])
    if not servers:
        return dns.resolver.Resolver()
    resolver = dns.resolver.Resolver(configure=False)
    host, _colon, port = servers[0].partition(":")
    resolver.nameservers = [host]
    resolver.port = int(port or 53)
    resolver.lifetime = 5.0
    return resolver


def _txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    # A long TXT value is published as several strings; they join with nothing between.
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def _tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        k, _eq, v = part.strip().partition("=")
        if k:
            tags[k.strip().lower()] = "".join(v.split())
    return tags


def _judge(record: DnsRecord, found: list[str]) -> DnsRecord:
    if record.kind == "spf":
        spf = [v for v in found if v.lower().startswith("v=spf1")]
        if not spf:
            return replace(record, status="missing", explanation=_("No SPF record is published for the domain."))
        if len(spf) > 1:
            return replace(record, status="wrong", explanation=_(
                "There are %(n)s SPF records; receivers ignore them all. Merge them into one.") % {"n": len(spf)})
        if spf_mechanism_in(record, spf[0]):
            return replace(record, status="ok", explanation=_("SPF allows the sending server."))
        return replace(record, status="wrong", explanation=_("SPF is published but does not include %(m)s.")
                       % {"m": record.value.split()[1]})
    if record.kind == "dkim":
        keys = [v for v in found if _tags(v).get("p")]
        if not keys:
            return replace(record, status="missing", explanation=_("The DKIM key is not published yet."))
        if any(_tags(v)["p"] == _tags(record.value)["p"] for v in keys):
            return replace(record, status="ok", explanation=_("The published DKIM key matches Buzón's key."))
        return replace(record, status="wrong", explanation=_(
            "A different DKIM key is published under this name: signatures will fail. Publish the value shown."))
    dmarc = [v for v in found if v.upper().startswith("V=DMARC1")]
    if not dmarc:
        return replace(record, status="missing", explanation=_("No DMARC policy is published."))
    return replace(record, status="ok", explanation=_("A DMARC policy is published (p=%(p)s).")
                   % {"p": _tags(dmarc[0]).get("p", "?")})


def spf_mechanism_in(record: DnsRecord, published: str) -> bool:
    wanted = record.value.split()[1].lower()
    return wanted in published.lower().split()


def check(records: list[DnsRecord]) -> list[DnsRecord]:
    """Look each record up and say whether it is present and correct."""
    resolver = _resolver()
    checked = []
    for record in records:
        try:
            found = _txt(resolver, record.name)
        except dns.exception.DNSException as exc:
            checked.append(replace(record, status="error", explanation=_(
                "DNS could not be asked about %(name)s: %(error)s") % {"name": record.name, "error": exc}))
            continue
        checked.append(replace(_judge(record, found), found=tuple(found)))
    return checked


"""Email Domain validation: a real DNS name, stored lower-case, and server settings that make sense."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from buzon.mailboxes.hostnames import normalise_hostname, valid_server
from buzon.mailboxes.models import EmailDomain
from buzon.mailboxes.rules import Errors


def clean_domain(domain: EmailDomain) -> None:
    errors = Errors()
    normalised = normalise_hostname(domain.domain_name)
    if normalised is None:
        errors.add("domain_name", _("“%(name)s” is not a domain name such as example.com.")
                   % {"name": domain.domain_name[:80]}, code="invalid_domain")
    else:
        domain.domain_name = normalised
    for field in ("incoming_host", "smtp_host"):
        value = getattr(domain, field).strip()
        setattr(domain, field, value)
        if value and not valid_server(value):
            errors.add(field, _("“%(name)s” is not a server name such as mail.example.com.") % {"name": value[:80]})
    for field in ("incoming_port", "smtp_port"):
        value = getattr(domain, field)
        if value is not None and not 1 <= value <= 65535:
            errors.add(field, _("A port is a number from 1 to 65535."))
    try:
        domain.full_clean()
    except ValidationError as exc:
        for field, messages in exc.error_dict.items():
            errors[field].extend(messages)
    errors.raise_if_any()

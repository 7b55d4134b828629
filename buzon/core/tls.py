"""TLS client contexts: certificates verified by default, with an opt-out per account.

`BUZON_CA_FILE` adds a CA bundle to the system's (a company CA, or the test CA).
"""

from __future__ import annotations

import ssl

from django.conf import settings


def client_context(verify: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca_file = getattr(settings, "TLS_CA_FILE", "")
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context

"""Server and domain names as typed by people: trimmed, lower-case, checked label by label."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_hostname(name: str, *, min_labels: int = 2) -> str | None:
    """Lower-case, no trailing dot; None unless every label is a valid (IDNA-encodable) DNS label."""
    name = name.strip().rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < min_labels or not all(_LABEL.match(label) for label in labels):
        return None
    return name


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def valid_server(value: str) -> bool:
    """A server may be a single-label name (localhost, an intranet host) or an IP address."""
    return is_ip(value) or normalise_hostname(value, min_labels=1) is not None

"""Which addresses and ports Buzón may connect to, so account settings cannot reach into the host.

An account's server name is typed by a user, so the probe (and sync and send after it) could be
pointed at the cloud metadata service, at link-local devices or, through the probe, used to scan
ports. Every connection resolves the name here, checks EVERY resolved address, and then connects to
an address that was checked (never resolving the name again: a DNS answer that changes between the
check and the connect, "DNS rebinding", cannot slip through).

- Link-local (169.254.0.0/16, fe80::/10), cloud-metadata addresses and names, unspecified,
  multicast and reserved addresses are always refused.
- Loopback and private ranges (a mail server on the office LAN is common) are allowed unless
  `PROBE_ALLOW_PRIVATE` is off (env BUZON_PROBE_ALLOW_PRIVATE=0).
- The probe only reaches mail ports (`PROBE_ALLOWED_PORTS`, env BUZON_PROBE_ALLOWED_PORTS adds more);
  sync and send use the ports a probe already accepted when the account was saved.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Container

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext

from buzon.core import redis_client
from buzon.mailboxes.errors import AddressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
logger = logging.getLogger(__name__)

#: Addresses of instance-metadata services (AWS, GCP, Azure, OpenStack, Oracle, Alibaba, AWS IPv6).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.123", "100.100.100.200", "192.0.0.192", "fd00:ec2::254",
))
#: Names that reach a metadata service on some cloud, whatever they resolve to.
METADATA_NAMES = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.com", "metadata.packet.net", "metadata.platformequinix.com",
})
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4 address written as IPv6 (::ffff:a.b.c.d, 64:ff9b::a.b.c.d) is judged as the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress) -> str:
    """Why `address` is refused ("metadata", "link_local", "special", "private"), or "" when allowed."""
    address = _plain(address)
    if address in METADATA_ADDRESSES:
        return "metadata"
    if any(address in network for network in LINK_LOCAL):
        return "link_local"
    if address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        return "special"
    if address.is_loopback or address.is_private:  # checked before "reserved": ::1 is in reserved ::/8
        return "" if settings.PROBE_ALLOW_PRIVATE else "private"
    if address.is_reserved:
        return "special"
    return ""


def allowed_ports() -> Container[int]:
    return settings.PROBE_ALLOWED_PORTS  # type: ignore[no-any-return]


def check_port(host: str, port: int, protocol: str = "") -> None:
    if port not in allowed_ports():
        raise AddressRefused(host=host, port=port, protocol=protocol, stage="config", reason="port",
                             detail=f"port {port} not in PROBE_ALLOWED_PORTS")


def _check_name(host: str, port: int, protocol: str) -> None:
    name = host.strip().rstrip(".").lower()
    if name in METADATA_NAMES:
        raise AddressRefused(host=host, port=port, protocol=protocol, stage="config", reason="metadata",
                             detail=f"{name} is a cloud-metadata name")


def _checked(host: str, port: int, protocol: str, infos: list[tuple]) -> list[str]:  # type: ignore[type-arg]
    """Every resolved address must pass; the answer is the addresses to connect to, in DNS order."""
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        why = refusal(ipaddress.ip_address(text))
        if why:
            raise AddressRefused(host=host, port=port, protocol=protocol, stage="connect", reason=why,
                                 detail=f"{host} resolves to {text} ({why})")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    return addresses


def resolve(host: str, port: int, protocol: str = "") -> list[str]:
    """The checked addresses of `host` (blocking DNS). Raises AddressRefused or socket.gaierror."""
    _check_name(host, port, protocol)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _checked(host, port, protocol, infos)


async def resolve_async(host: str, port: int, protocol: str = "") -> list[str]:
    _check_name(host, port, protocol)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _checked(host, port, protocol, infos)


def connect(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first checked address that answers (like socket.create_connection)."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    assert error is not None  # noqa: S101 - resolve() never returns an empty list
    raise error




class ProbeRateLimited(Exception):
    """This user asked for more connection tests in the last minute than PROBE_RATE_PER_MINUTE allows."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"probe rate limit reached; retry in {retry_after} s")

    def message(self) -> str:
        return gettext(
            "Too many connection tests in a short time. Wait %(seconds)s seconds and try again."
        ) % {"seconds": self.retry_after}


#: The Redis key of one user's count for one minute (tests give it their own prefix).
REDIS_KEY = "buzon:probe:{user}:{window}"


def _count_in_redis(user_id: int, window: int) -> int:
    """INCR and EXPIRE in one transaction: atomic across every process that shares the server."""
    key = REDIS_KEY.format(user=user_id, window=window)
    pipe = redis_client.client().pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, 120)
    count, _expiry = pipe.execute()
    return int(count)


def _count_in_database(user_id: int, window: int) -> int:
    """One row per (user, minute), incremented in the database (an UPDATE locks the row, so two
    processes never both read the same count), plus a sweep of minutes gone by."""
    from buzon.mailboxes.models_guard import ProbeCount

    mine = ProbeCount.objects.filter(user_id=user_id, window=window)
    with transaction.atomic():
        if not mine.update(count=F("count") + 1):
            try:
                with transaction.atomic():
                    ProbeCount.objects.create(user_id=user_id, window=window, count=1)
            except IntegrityError:  # another process created it first
                mine.update(count=F("count") + 1)
        count = mine.values_list("count", flat=True).get()
    ProbeCount.objects.filter(window__lt=window - 1).delete()
    return int(count)


def count_probe(user_id: int, window: int) -> int:
    """Add one probe to the user's count for minute ``window``; the count so far."""
    if settings.REDIS_URL:
        from redis.exceptions import RedisError

        try:
            return _count_in_redis(user_id, window)
        except RedisError as exc:  # the limit still holds, in the database, while Redis is away
            logger.warning("probe rate limit: Redis unreachable (%s); counting in the database", exc)
    return _count_in_database(user_id, window)


def take_probe_slot(user_id: int | None) -> None:
    """Count one probe for `user_id` in the current minute; raises ProbeRateLimited over the limit.

    A fixed one-minute window, counted where every web process sees the same number: in Redis when
    REDIS_URL is set (the database while Redis cannot be reached), else in the database
    (ProbeCount). A process's own memory would let each web process grant the whole limit again.
    """
    limit = int(settings.PROBE_RATE_PER_MINUTE)
    if user_id is None or limit <= 0:
        return
    now = time.time()
    window = int(now // 60)
    if count_probe(user_id, window) > limit:
        raise ProbeRateLimited(retry_after=max(1, int(60 - now % 60)))

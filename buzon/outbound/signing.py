"""DKIM (RFC 6376): a key pair per domain (private half encrypted at rest), and signing every outgoing message.

The signature is built here from dkimpy's pieces: its message parser (`rfc822_parse`), its
canonicalization (`dkim.canonicalization`) and its header folding (`fold`), so the header is byte for
byte what `dkim.sign()` writes. Only the RSA step is different: `dkim.sign()` takes a PEM string,
parses it and signs in pure Python on every call (about 9 ms for a 2048-bit key, which alone caps a
worker near 100 messages/s); here the key is loaded once into OpenSSL through `cryptography` and signs
in well under a millisecond. PKCS#1 v1.5 signatures are deterministic, so the result equals dkimpy's
(a test compares them), and the tests verify every signature with dkimpy against the published key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from django.db.models import Q
from dkim.canonicalization import CanonicalizationPolicy

from buzon.core import crypto
from buzon.mailboxes.models import EmailDomain
from buzon.outbound import addresses
from buzon.outbound.models import DkimKey

KEY_BITS = 2048
# Headers a receiver shows or threads on; signing them keeps them from being altered in transit.
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
                  b"references", b"mime-version", b"content-type", b"list-unsubscribe", b"list-unsubscribe-post",
                  b"auto-submitted"]
# relaxed headers survive the re-folding some relays do; simple body is dkimpy's default too.
CANONICALIZATION = b"relaxed/simple"
_POLICY = CanonicalizationPolicy.from_c_value(CANONICALIZATION)
HEADER_NAME = b"DKIM-Signature"


def generate(domain: EmailDomain, selector: str = "buzon") -> DkimKey:
    """Create (or replace) the domain's key pair. The old key stops signing at once."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode("ascii")
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    key, _created = DkimKey.objects.update_or_create(domain=domain, defaults={
        "selector": selector, "private_key_encrypted": crypto.encrypt(pem),
        "public_key": base64.b64encode(public).decode("ascii"),
    })
    return key


def record_name(key: DkimKey) -> str:
    return f"{key.selector}._domainkey.{addresses.dns_name(key.domain.domain_name)}"


def record_value(key: DkimKey) -> str:
    return f"v=DKIM1; k=rsa; p={key.public_key}"


_FIELD_NAME = re.compile(br"([\x21-\x7e]+?):")


def _parse(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """dkim.rfc822_parse's (headers, body): that splits the whole message into lines to join the
    body again; a message whose every line ends in CRLF (all Buzón composes) is split at its blank
    line instead, its header lines read by the same rules. Anything else goes to dkimpy."""
    head, blank, body = message.partition(b"\r\n\r\n")
    if not blank or message.count(b"\n") != message.count(b"\r\n") or message.startswith(b"\r\n"):
        return dkim.rfc822_parse(message)
    headers: list[list[bytes]] = []
    for line in head.split(b"\r\n"):
        if line[0] in (0x09, 0x20):
            if not headers:  # a continuation before any header: dkimpy says what is wrong
                return dkim.rfc822_parse(message)
            headers[-1][1] += line + b"\r\n"
        elif (match := _FIELD_NAME.match(line)) is not None:
            headers.append([match.group(1), line[match.end(0):] + b"\r\n"])
        elif not line.startswith(b"From "):
            return dkim.rfc822_parse(message)  # raises dkimpy's MessageFormatError
    return headers, body


def _selected(headers: list[list[bytes]], names: list[bytes]) -> list[tuple[bytes, bytes]]:
    """RFC 6376 5.4.2: for each name in h=, the last not yet used instance, from the bottom up."""
    lowered = [header[0].lower() for header in headers]
    chosen: list[tuple[bytes, bytes]] = []
    used: dict[bytes, int] = {}
    for name in names:
        i = used.get(name, len(headers))
        while i > 0:
            i -= 1
            if lowered[i] == name:
                chosen.append((headers[i][0], headers[i][1]))
                break
        used[name] = i
    return chosen


def prepare_signature(message: bytes, selector: bytes, domain: bytes, key: rsa.RSAPrivateKey,
                      signed_headers: list[bytes], now: int | None = None) -> Callable[[], bytes]:
    """What makes the DKIM-Signature header line (ending in CRLF) for `message`, rsa-sha256,
    relaxed/simple: the message is canonicalized and hashed now; the RSA step runs when it is called.

    The RSA step is most of the cost, and OpenSSL does it without holding the GIL: called from the
    connection's thread (sender.py), it runs while the delivery loop composes the next message."""
    headers, body = _parse(message)
    body_hash = base64.b64encode(hashlib.sha256(_POLICY.canonicalize_body(body)).digest())
    fields = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", CANONICALIZATION), (b"d", domain), (b"i", b"@" + domain),
              (b"q", b"dns/txt"), (b"s", selector), (b"t", str(int(time.time() if now is None else now)).encode()),
              (b"h", b" : ".join(signed_headers)), (b"bh", body_hash)]
    # b= goes on a line of its own, so adding its value later changes no whitespace before it.
    unsigned = dkim.fold(b"; ".join(b"=".join(f) for f in [*fields, (b"b", b"0" * 60)]), namelen=len(HEADER_NAME))
    unsigned = unsigned[: unsigned.rindex(b"b=") + 2]
    digest = hashlib.sha256()
    for name, value in _POLICY.canonicalize_headers(_selected(headers, signed_headers)):
        digest.update(name + b":" + value)
    # The signature header itself is hashed last, with an empty b= and no trailing CRLF (RFC 6376 3.7).
    for name, value in _POLICY.canonicalize_headers([(HEADER_NAME, b" " + unsigned)]):
        digest.update(name + b":" + value.rstrip())
    hashed = digest.digest()

    def header() -> bytes:
        signature = key.sign(hashed, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        value = b"; ".join(b"=".join(f) for f in [*fields, (b"b", base64.b64encode(signature))]) + b"\r\n"
        return HEADER_NAME + b": " + dkim.fold(value, namelen=len(HEADER_NAME))

    return header


def dkim_signature(message: bytes, selector: bytes, domain: bytes, key: rsa.RSAPrivateKey,
                   signed_headers: list[bytes], now: int | None = None) -> bytes:
    """The DKIM-Signature header line (ending in CRLF) for `message`, rsa-sha256, relaxed/simple."""
    return prepare_signature(message, selector, domain, key, signed_headers, now)()


@functools.lru_cache(maxsize=256)
def _private_key(encrypted: str) -> rsa.RSAPrivateKey:
    """The key stored as `encrypted`, loaded into OpenSSL once per process: every delivery run has a
    Signer of its own. A new key or a re-encrypted one is new ciphertext, so it is loaded anew.

    Loading skips OpenSSL's consistency check of the key (45-60 ms for 2048 bits, more than signing
    fifty messages, paid by each worker process for each domain it signs for): the only keys stored
    are those `generate` made, and the ciphertext is authenticated (Fernet), so what decrypts is
    what was generated; cryptography's documentation allows the skip for keys from a trusted source."""
    private = serialization.load_pem_private_key(crypto.decrypt(encrypted).encode("ascii"), password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private


@dataclass(frozen=True)
class _Loaded:
    selector: bytes
    domain: bytes
    key: rsa.RSAPrivateKey


class Signer:
    """Signs with the key of the From address's domain; loads each domain's key once per Signer."""

    def __init__(self) -> None:
        self._loaded: dict[str, _Loaded | None] = {}

    def _load(self, domain_name: str) -> _Loaded | None:
        if domain_name in self._loaded:
            return self._loaded[domain_name]
        # An internationalised domain may be stored in either form; d= is always its A-labels (RFC 8616).
        try:
            ascii_name = addresses.ascii_domain(domain_name)
        except UnicodeError:  # not a domain: nothing to sign with
            self._loaded[domain_name] = None
            return None
        names = {ascii_name, addresses.unicode_domain(ascii_name)}
        key = (DkimKey.objects.select_related("domain")
               .filter(functools.reduce(operator.or_, (Q(domain__domain_name__iexact=n) for n in names))).first())
        loaded = None
        if key is not None:
            loaded = _Loaded(key.selector.encode(), ascii_name.encode("ascii"), _private_key(key.private_key_encrypted))
        self._loaded[domain_name] = loaded
        return loaded

    def signature(self, data: bytes, from_address: str) -> Callable[[], bytes] | None:
        """What makes `data`'s DKIM-Signature line when called (`prepare_signature`), or None when the
        From address's domain has no key."""
        loaded = self._load(from_address.rpartition("@")[2].lower())
        if loaded is None:
            return None
        return prepare_signature(data, loaded.selector, loaded.domain, loaded.key, SIGNED_HEADERS)

    def sign(self, data: bytes, from_address: str) -> bytes:
        """`data` with a DKIM-Signature prepended, or unchanged when the domain has no key."""
        header = self.signature(data, from_address)
        return data if header is None else header() + data

"""DKIM: a key pair per domain (private half encrypted at rest), and signing every outgoing message.

dkimpy builds and canonicalises the signature; its RSA step is pure Python (about 9 ms for a
2048-bit key, which alone would cap a worker near 100 messages/s). For keys Buzón holds, that one
step is done by OpenSSL through `cryptography` instead (well under 1 ms), and the parsed key is
cached instead of being parsed again for every message. PKCS#1 v1.5 signatures are
deterministic, so the bytes are exactly those dkimpy would produce, and the tests verify every
signature with dkimpy against the published key.
"""

from __future__ import annotations

import base64
import functools
import threading
from dataclasses import dataclass
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from buzon.core import crypto
from buzon.mailboxes.models import EmailDomain
from buzon.outbound.models import DkimKey

KEY_BITS = 2048
# Headers a receiver shows or threads on; signing them keeps them from being altered in transit.
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
                  b"references", b"mime-version", b"content-type", b"list-unsubscribe", b"list-unsubscribe-post",
                  b"auto-submitted"]

_openssl_keys: dict[int, rsa.RSAPrivateKey] = {}  # modulus -> key, filled by Signer
_keys_lock = threading.Lock()
_dkimpy_rsa_sign = dkim.RSASSA_PKCS1_v1_5_sign


def _rsa_sign(hash_: Any, private_key: dict[str, int]) -> bytes:
    key = _openssl_keys.get(private_key["modulus"])
    if key is None or hash_.name != "sha256":
        return _dkimpy_rsa_sign(hash_, private_key)
    return key.sign(hash_.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))


dkim.RSASSA_PKCS1_v1_5_sign = _rsa_sign  # only keys registered in _openssl_keys take the fast path
# dkimpy parses the PEM key (in pure Python) on every signature; the parsed key never changes.
dkim.parse_pem_private_key = functools.lru_cache(maxsize=64)(dkim.crypto.parse_pem_private_key)


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
    return f"{key.selector}._domainkey.{key.domain.domain_name}"


def record_value(key: DkimKey) -> str:
    return f"v=DKIM1; k=rsa; p={key.public_key}"


@dataclass(frozen=True)
class _Loaded:
    selector: bytes
    domain: bytes
    pem: bytes


class Signer:
    """Signs with the key of the From address's domain; loads each domain's key once per Signer."""

    def __init__(self) -> None:
        self._loaded: dict[str, _Loaded | None] = {}

    def _load(self, domain_name: str) -> _Loaded | None:
        if domain_name in self._loaded:
            return self._loaded[domain_name]
        key = DkimKey.objects.select_related("domain").filter(domain__domain_name__iexact=domain_name).first()
        loaded = None
        if key is not None:
            pem = crypto.decrypt(key.private_key_encrypted).encode("ascii")
            private = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(private, rsa.RSAPrivateKey)
            with _keys_lock:
                _openssl_keys[private.private_numbers().public_numbers.n] = private
            loaded = _Loaded(key.selector.encode(), domain_name.lower().encode(), pem)
        self._loaded[domain_name] = loaded
        return loaded

    def sign(self, data: bytes, from_address: str) -> bytes:
        """`data` with a DKIM-Signature prepended, or unchanged when the domain has no key."""
        loaded = self._load(from_address.rpartition("@")[2].lower())
        if loaded is None:
            return data
        header = dkim.sign(data, loaded.selector, loaded.domain, loaded.pem, include_headers=SIGNED_HEADERS)
        return header + data

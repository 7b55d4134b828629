"""Telling a wrong security mode apart from a silent server, at once.

A client that chose STARTTLS (or no encryption) for a port that expects TLS from the first byte
(993, 995, 465) connects, then waits for a greeting that never comes: the server is waiting for the
client's TLS hello. Rather than wait out the whole timeout and blame a firewall, a client that has
heard nothing after GREETING_GRACE seconds tries a TLS handshake on a second connection to the same
address. If the server completes it (or answers with a TLS alert), the port speaks TLS from the first
byte and the error says so. That handshake checks no certificate and sends nothing but its hello:
it only asks which protocol the port speaks, and the connection is closed right after.

The other way round (SSL/TLS chosen for a port that starts unencrypted), the server's plain-text
greeting reaches the TLS layer as a record that is not TLS; OpenSSL names that PLAINTEXT_REASONS.
"""

from __future__ import annotations

import select
import socket
import ssl
import time

from buzon.mailboxes.errors import TLSHandshakeError

#: Seconds to wait for a greeting before asking whether the port expects TLS at once. Servers greet
#: within a round trip or two; one that is slower only costs the extra handshake, never a wrong answer.
GREETING_GRACE = 0.5

#: OpenSSL's reasons when the bytes that came back are not a TLS record (a plain-text greeting).
PLAINTEXT_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                               "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_TOO_LARGE"})
# A TLS server that refuses this handshake still answered in TLS: an alert, or no version/cipher in common.
_TLS_REFUSALS = frozenset({"UNSUPPORTED_PROTOCOL", "VERSION_TOO_LOW", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE",
                           "DH_KEY_TOO_SMALL", "UNSAFE_LEGACY_RENEGOTIATION_DISABLED"})


def answered_in_plain_text(exc: BaseException) -> bool:
    """Whether a failed TLS handshake failed because the server spoke without encryption."""
    return isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) in PLAINTEXT_REASONS


def speaks_tls(address: str, port: int, host: str, timeout: float) -> bool:
    """Whether the server at `address`:`port` answers a TLS hello in TLS (a completed handshake or an alert)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the question is the protocol, not who the server is
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((address, port), timeout=max(timeout, 0.05)) as raw, \
                context.wrap_socket(raw, server_hostname=host or None):
            return True
    except ssl.SSLError as exc:
        reason = str(getattr(exc, "reason", "") or "")
        return "ALERT" in reason or reason in _TLS_REFUSALS
    except OSError:  # refused, reset, timed out: no evidence of TLS
        return False


def tls_expected(host: str, port: int | None = None) -> TLSHandshakeError:
    return TLSHandshakeError(host=host, port=port, stage="greeting", reason="tls_expected",
                             detail="no greeting, and the port completed a TLS handshake: it expects TLS at once")


def _readable(sock: socket.socket, seconds: float) -> bool:
    poller = select.poll()  # not select.select(): a busy sync process has descriptors past 1024
    poller.register(sock, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(max(seconds, 0.0) * 1000))


def await_greeting(sock: socket.socket, host: str, timeout: float) -> None:
    """Return once the server has sent its first bytes on the unencrypted `sock`, within `timeout`.

    Raises TLSHandshakeError("tls_expected") as soon as the port turns out to expect TLS at once, and
    TimeoutError if nothing came in time (what the caller's own read would have raised)."""
    deadline = time.monotonic() + timeout
    if _readable(sock, min(GREETING_GRACE, timeout)):
        return
    address, port = sock.getpeername()[:2]
    if speaks_tls(address, port, host, deadline - time.monotonic()) and not _readable(sock, 0):
        raise tls_expected(host, port)
    if not _readable(sock, deadline - time.monotonic()):
        raise TimeoutError("no greeting from the server")

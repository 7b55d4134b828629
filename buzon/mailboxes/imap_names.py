"""IMAP mailbox names: modified UTF-7 (RFC 3501 section 5.1.3) and quoting for a command line.

aioimaplib passes command arguments through unchanged, so a folder such as "Gestión clientes" must
be encoded ("Gesti&APM-n clientes") and quoted before it is sent. The sync engine uses the same
functions, so a name the probe accepted is the name that syncs.
"""

from __future__ import annotations

import base64

import aioimaplib


def _b64(chunk: str) -> str:
    data = base64.b64encode(chunk.encode("utf-16-be")).decode("ascii")
    return data.rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    """Modified UTF-7: printable ASCII stays, "&" becomes "&-", anything else is &base64(UTF-16)-."""
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            if pending:
                out.append("&" + _b64("".join(pending)) + "-")
                pending = []
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append("&" + _b64("".join(pending)) + "-")
    return "".join(out)


def decode(encoded: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(encoded):
        char = encoded[index]
        if char != "&":
            out.append(char)
            index += 1
            continue
        end = encoded.index("-", index)
        chunk = encoded[index + 1:end]
        if chunk == "":
            out.append("&")
        else:
            padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
            out.append(base64.b64decode(padded).decode("utf-16-be"))
        index = end + 1
    return "".join(out)


def quoted(name: str) -> str:
    """The encoded name as an IMAP quoted string, ready to be a command argument."""
    return aioimaplib.quoted(encode(name))

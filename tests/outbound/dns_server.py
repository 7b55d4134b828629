"""A small authoritative DNS responder on a loopback UDP port (dnspython), for DKIM and deliverability tests."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def txt_strings(value: str) -> str:
    """A TXT value split into <=255-byte quoted strings, as zone files publish long DKIM keys."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks)


class DNSServer:
    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stopped = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DNSServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stopped:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            self.queries.append(name)
            values = self.txt.get(name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, [txt_strings(v) for v in values]))
            self.sock.sendto(response.to_wire(), peer)

"""A scripted IMAP peer for behaviours the test Dovecot cannot show (it always offers STARTTLS and
never greets with PREAUTH or BYE). It answers CAPABILITY and LOGIN from a fixed script."""

from __future__ import annotations

import socket
import threading

from tests.support.ports import test_server_port


class ScriptedIMAP:
    def __init__(self, greeting: bytes, capabilities: bytes = b"IMAP4rev1 AUTH=PLAIN") -> None:
        self.greeting = greeting
        self.capabilities = capabilities
        self.commands: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port: int = test_server_port(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedIMAP:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn, conn.makefile("rb") as lines:
            conn.sendall(self.greeting + b"\r\n")
            for line in lines:
                self.commands.append(line.strip())
                tag, _, command = line.strip().partition(b" ")
                verb = command.split(b" ")[0].upper()
                if verb == b"CAPABILITY":
                    conn.sendall(b"* CAPABILITY " + self.capabilities + b"\r\n" + tag + b" OK done\r\n")
                elif verb == b"LOGOUT":
                    conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                    return
                else:
                    conn.sendall(tag + b" BAD not in the script\r\n")

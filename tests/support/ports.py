import socket

#: Ports handed out to the test servers: the connection probe may reach them in tests (see
#: TestServerPorts); production allows only mail ports (mailboxes.guard).
TEST_SERVER_PORTS: set[int] = set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return test_server_port(s.getsockname()[1])


def test_server_port(port: int) -> int:
    """Record `port` as a test server's, so the probe guard lets tests reach it."""
    TEST_SERVER_PORTS.add(port)
    return port


class TestServerPorts:
    """PROBE_ALLOWED_PORTS for tests: the configured mail ports plus the test servers' ports."""

    def __init__(self, mail_ports: frozenset[int]) -> None:
        self.mail_ports = mail_ports

    def __contains__(self, port: object) -> bool:
        return port in self.mail_ports or port in TEST_SERVER_PORTS


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")

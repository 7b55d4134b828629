"""One Redis client per URL and process (redis-py's clients are thread-safe and pool their sockets)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

_clients: dict[tuple[str, float], Any] = {}


def client(url: str | None = None, *, timeout: float = 5) -> Any:
    """The client for ``url`` (settings.REDIS_URL by default) whose connects and replies time out
    after ``timeout`` seconds (/readyz waits 2)."""
    key = (url or settings.REDIS_URL, timeout)
    if key not in _clients:
        import redis

        _clients[key] = redis.Redis.from_url(key[0], socket_timeout=timeout, socket_connect_timeout=timeout)
    return _clients[key]

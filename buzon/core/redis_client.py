"""One Redis client per URL and process (redis-py's clients are thread-safe and pool their sockets)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

_clients: dict[str, Any] = {}


def client(url: str | None = None) -> Any:
    """The client for ``url`` (settings.REDIS_URL by default)."""
    url = url or settings.REDIS_URL
    if url not in _clients:
        import redis

        _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return _clients[url]

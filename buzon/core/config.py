"""Settings helpers: everything comes from the environment, with safe defaults.

On first start an embedded install keeps its generated secrets in the data directory, so a
restart keeps sessions valid and stored passwords readable. Production passes them in
(`BUZON_SECRET_KEY`, `BUZON_FERNET_KEYS`) and nothing is written.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name, "")
    items = [part.strip() for part in raw.split(",") if part.strip()]
    return items or list(default or [])


def data_dir() -> Path:
    path = Path(os.environ.get("BUZON_DATA_DIR", "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def kept_secret(directory: Path, filename: str, generate: Callable[[], str]) -> str:
    """Read a secret kept in `directory`, creating it (mode 0600) the first time.

    Creation uses O_EXCL so two processes starting together agree on one value.
    """
    path = directory / filename
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        value = generate()
        handle.write(value + "\n")
    return value


def secret_key(directory: Path) -> str:
    return env_str("BUZON_SECRET_KEY") or kept_secret(
        directory, "secret_key", lambda: secrets.token_urlsafe(50)
    )


def fernet_keys(directory: Path) -> list[str]:
    """Newest key first: it encrypts; every key listed can still decrypt."""
    keys = env_list("BUZON_FERNET_KEYS")
    if keys:
        return keys
    kept = kept_secret(directory, "fernet.keys", lambda: Fernet.generate_key().decode())
    return [k.strip() for k in kept.replace("\n", ",").split(",") if k.strip()]

"""Settings helpers: everything comes from the environment, with safe defaults.

On first start an embedded install keeps its generated secrets in the data directory, so a
restart keeps sessions valid and stored passwords readable. Production passes them in
(`BUZON_SECRET_KEY`, `BUZON_FERNET_KEYS`) and nothing is written.
"""

from __future__ import annotations

import os
import secrets
import stat
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


#: Where an installation outside a checkout keeps its data when BUZON_DATA_DIR is not set.
SYSTEM_DATA_DIR = Path("/var/lib/buzon")
#: Modes of the data directory (and directories in it) and of every file in it: the owner's alone.
DIR_MODE, FILE_MODE, UMASK = 0o700, 0o600, 0o077


def default_data_dir() -> Path:
    """The data directory when BUZON_DATA_DIR is not set: never the current directory.

    A checkout (or editable install) keeps it in the repository's `var/`, found from this file's
    location; a package installed system-wide uses /var/lib/buzon. So `buzon` run from any folder
    opens the same database instead of silently starting an empty one there.
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "buzon" / "__init__.py").is_file():
        return root / "var"
    return SYSTEM_DATA_DIR


def data_dir() -> Path:
    raw = os.environ.get("BUZON_DATA_DIR", "").strip()
    path = (Path(raw).expanduser() if raw else default_data_dir()).resolve()
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"Buzón cannot create its data directory {path} ({exc.strerror}); "
                      "set BUZON_DATA_DIR to a directory this user may write.") from exc
    return path


def _shared(path: Path) -> bool:
    """A directory others also use (/tmp, a home directory, /): its mode is not Buzón's to change."""
    try:
        home = Path.home().resolve()
    except RuntimeError:  # no home directory known for this user
        home = Path("/")
    return bool(path.stat().st_mode & stat.S_ISVTX) or path in {Path("/"), home}


def secure_data_dir(path: Path) -> list[Path]:
    """Make the data directory and everything in it the owner's alone: 0700 directories, 0600 files.

    Files written by older versions (or under a lax umask) were readable by every local user: the
    SQLite database with its -wal/-shm files, stored files. Returns what was changed. Only entries
    owned by this user are touched, symbolic links are never followed, and a shared directory
    (sticky bit, home, /) is left alone.
    """
    if _shared(path):
        return []
    uid, changed = os.geteuid(), []
    for current, _dirnames, filenames in os.walk(path):  # every directory is `current` once
        for entry, wanted in [(Path(current), DIR_MODE), *((Path(current) / f, FILE_MODE) for f in filenames)]:
            try:
                info = entry.lstat()
            except FileNotFoundError:  # an -shm/-wal file removed meanwhile by SQLite
                continue
            if stat.S_ISLNK(info.st_mode) or info.st_uid != uid or stat.S_IMODE(info.st_mode) == wanted:
                continue
            try:
                entry.chmod(wanted)
            except FileNotFoundError:
                continue
            changed.append(entry)
    return changed


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

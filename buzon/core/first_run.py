"""The first administrator is created in the browser, through a one-time setup link.

A new site must get from `make run` to an agent answering a customer without a shell, yet the page
that creates the first administrator must not be anyone's for the taking while the site waits for
its owner (a server reachable from a network would hand itself to whoever came first). So, as
Jenkins and GitLab do, the link carries a random token kept in the data directory (0600) and
printed by `buzon run` / `buzon web`: whoever sees the console (or may read the data directory)
opens it. The token stops working once any user exists, and its file is then removed.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from buzon.core import config

TOKEN_FILE = "setup-token"

_done = False  # once a user exists it always will: no query per request after that


def needs_setup() -> bool:
    """True while the site has no user at all (the only state in which the setup page works)."""
    global _done
    if _done:
        return False
    if get_user_model().objects.exists():
        _done = True
        return False
    return True


def _path() -> Path:
    return Path(settings.DATA_DIR) / TOKEN_FILE


def token() -> str:
    """The setup token, created (0600, race-safe) the first time it is asked for."""
    return config.kept_secret(Path(settings.DATA_DIR), TOKEN_FILE, lambda: secrets.token_urlsafe(24))


def token_matches(given: str) -> bool:
    path = _path()
    if not given or not path.is_file():
        return False
    return hmac.compare_digest(given.encode(), path.read_text().strip().encode())


def setup_path() -> str:
    """The path (with its token) of the setup page: printed next to the site's URL."""
    return f"/setup/?token={token()}"


def finish() -> None:
    """Forget the token: the site has its administrator."""
    global _done
    _done = True
    _path().unlink(missing_ok=True)

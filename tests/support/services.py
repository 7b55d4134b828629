"""A missing server skips a test locally and fails it in CI (BUZON_STRICT_SERVICES=1)."""

from __future__ import annotations

import os

import pytest


def strict() -> bool:
    return os.environ.get("BUZON_STRICT_SERVICES", "") in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    if available:
        return
    if strict():
        pytest.fail(f"{what} is required (BUZON_STRICT_SERVICES=1) but is not available")
    pytest.skip(f"{what} is not available")

"""The two-store world of the security tests (every role), shared with the search tests."""

from tests.security.conftest import world  # noqa: F401

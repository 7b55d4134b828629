"""Fixtures the workspace tests share with others: the two-store world of the security tests (every
role) and the shop with a real SMTP sink of the conversation-answer tests."""

from tests.inbound.test_conversation_answers import shop  # noqa: F401
from tests.security.conftest import world  # noqa: F401

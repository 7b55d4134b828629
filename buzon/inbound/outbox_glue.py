"""Sending notification emails and auto-replies through outgoing mail (buzon.messages.outbox).

Outgoing mail is written in parallel by another part of Buzón: until its outbox module is present,
or when it refuses (no default outgoing account yet), ``queue`` returns (None, why) instead of
failing the incoming message, whose processing matters more than the notification email.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger(__name__)


def queue(**kwargs: Any) -> tuple[Any, str]:
    """(queued Message, "") or (None, why it was not queued)."""
    try:
        outbox = importlib.import_module("buzon.messages.outbox")
    except ImportError:
        return None, "outgoing mail is not available"
    try:
        return outbox.queue_outgoing(**kwargs), ""
    except outbox.SendRefused as refused:
        logger.info("%s mail not queued: %s", kwargs.get("kind"), refused)
        return None, str(refused)

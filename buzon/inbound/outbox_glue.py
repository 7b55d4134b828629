"""Sending notification emails and auto-replies through outgoing mail (buzon.messages.outbox).

Outgoing mail is written in parallel by another part of Buzón; until its outbox module is present,
``queue`` says so and returns None instead of failing the message.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger(__name__)


def queue(**kwargs: Any) -> Any:
    try:
        outbox = importlib.import_module("buzon.messages.outbox")
    except ImportError:
        logger.info("outgoing mail is not available; %s mail not queued", kwargs.get("kind"))
        return None
    return outbox.queue_outgoing(**kwargs)

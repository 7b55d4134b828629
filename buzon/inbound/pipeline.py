"""Turns a stored RawMessage into a Message. (First version: headers only; the steps come next.)"""

from __future__ import annotations

import email.policy
import email.utils
from email.parser import BytesHeaderParser

from django.db import transaction

from buzon.messages.models import Direction, Message, MessageStatus
from buzon.sync.models import RawMessage


def _addresses(value: str | None) -> list[str]:
    return [addr for _, addr in email.utils.getaddresses([value or ""]) if addr]


def run_pipeline(raw_id: int) -> str:
    raw = RawMessage.objects.get(pk=raw_id)
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(bytes(raw.data))
    name, sender = email.utils.parseaddr(headers.get("From", ""))
    with transaction.atomic():
        message, created = Message.objects.get_or_create(
            raw=raw,
            defaults={
                "direction": Direction.INCOMING,
                "account_id": raw.account_id,
                "message_id": raw.message_id,
                "subject": raw.subject,
                "from_address": sender,
                "from_name": name,
                "to": _addresses(headers.get("To")),
                "cc": _addresses(headers.get("Cc")),
                "date": raw.date,
                "status": MessageStatus.RECEIVED,
            },
        )
    return "created" if created else "exists"

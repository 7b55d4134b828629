"""Mail targets: the record types mail can create or join ("any model can be made a mail target").

A target is a model registered here under a short key (``ticket``) and a token prefix (``T``). Every
registered target can be chosen as an account's ``append_to``, is named in the subject of mail
Buzón sends about a record (``[#T-123]``), can be reached by plus-addressing
(``support+ticket-123@example.com``), and is carried in the ``X-Buzon-Ref`` header of sent mail, so a
reply finds its record even when a provider rewrites the Message-ID of what Buzón sent.

An integrator makes their own model a target from their AppConfig.ready()::

    from buzon.messages import targets
    targets.register(Order, key="order", prefix="O", label=_("Order"), create=create_order)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.functional import Promise

#: Header Buzón puts on every message it sends: its own message id and the record token.
REF_HEADER = "X-Buzon-Ref"


@dataclass(frozen=True)
class NewConversation:
    """What a target's ``create`` callable is given to make a record for a new conversation."""

    subject: str
    from_address: str
    from_name: str = ""
    customer: Any = None  # buzon.crm.models.Customer or None
    account: Any = None  # buzon.mailboxes.models.EmailAccount or None
    extra: dict[str, Any] = field(default_factory=dict)


CreateRecord = Callable[[NewConversation], models.Model]


@dataclass(frozen=True)
class Target:
    key: str
    prefix: str
    label: str | Promise
    model: type[models.Model]
    create: CreateRecord | None = None

    def token(self, record_id: int) -> str:
        return f"[#{self.prefix}-{record_id}]"

    def get(self, record_id: int) -> models.Model | None:
        return self.model._default_manager.filter(pk=record_id).first()


class TargetError(ValueError):
    """A target registered twice under one key or prefix, or an unknown target asked for."""


_by_key: dict[str, Target] = {}
_by_prefix: dict[str, Target] = {}
_by_model: dict[type[models.Model], Target] = {}

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_PREFIX_RE = re.compile(r"^[A-Z]{1,4}$")


def register(
    model: type[models.Model], *, key: str, prefix: str, label: str | Promise, create: CreateRecord | None = None
) -> Target:
    """Make ``model`` a mail target. Registering the same model again with the same key is harmless."""
    if not _KEY_RE.match(key):
        raise TargetError(f"target key {key!r} must be lowercase letters, digits or _")
    prefix = prefix.upper()
    if not _PREFIX_RE.match(prefix):
        raise TargetError(f"target prefix {prefix!r} must be 1 to 4 letters")
    target = Target(key=key, prefix=prefix, label=label, model=model, create=create)
    for index, name in ((_by_key, key), (_by_prefix, prefix)):
        existing = index.get(name)
        if existing is not None and existing.model is not model:
            raise TargetError(f"{name!r} is already the target of {existing.model.__name__}")
    _by_key[key] = _by_prefix[prefix] = _by_model[model] = target
    return target


def unregister(key: str) -> None:
    target = _by_key.pop(key, None)
    if target is None:
        return
    _by_prefix.pop(target.prefix, None)
    _by_model.pop(target.model, None)


def targets() -> list[tuple[str, str | Promise]]:
    """Choices for ``EmailAccount.append_to``: (key, label) of every registered target."""
    return [(t.key, t.label) for t in sorted(_by_key.values(), key=lambda t: t.key)]


def get_target(key: str) -> Target | None:
    return _by_key.get(key)


def target_by_prefix(prefix: str) -> Target | None:
    return _by_prefix.get(prefix.upper())


def target_for(record_or_model: models.Model | type[models.Model]) -> Target | None:
    model = record_or_model if isinstance(record_or_model, type) else type(record_or_model)
    return _by_model.get(model)


def _require_target(record: models.Model) -> Target:
    target = target_for(record)
    if target is None:
        raise TargetError(f"{type(record).__name__} is not a registered mail target")
    return target


# -- record tokens in subjects: "[#T-123]" --------------------------------------------------------

# Typed by hand, a token comes in any case and spacing: "[# t - 123 ]", "[#T123]", "[ #t-123]".
_TOKEN_RE = re.compile(r"\[\s*#\s*([A-Za-z]{1,4})\s*-?\s*(\d{1,18})\s*\]")


def record_token(record: models.Model) -> str:
    """The token that names ``record`` in a subject, e.g. ``[#T-123]``."""
    return _require_target(record).token(int(record.pk))


def find_record_tokens(text: str) -> list[tuple[Target, int]]:
    """Every registered record token in ``text``, in order, without repeats."""
    found: list[tuple[Target, int]] = []
    for prefix, number in _TOKEN_RE.findall(text or ""):
        target = target_by_prefix(prefix)
        if target is None:
            continue
        pair = (target, int(number))
        if pair not in found:
            found.append(pair)
    return found


def strip_record_tokens(subject: str) -> str:
    return re.sub(r"\s{2,}", " ", _TOKEN_RE.sub("", subject or "")).strip()


# -- plus addresses: "support+ticket-123@example.com" ---------------------------------------------

_PLUS_RE = re.compile(r"^(?P<local>[^+@]+)\+(?P<key>[A-Za-z][A-Za-z0-9_]*)-(?P<id>\d{1,18})@(?P<domain>[^@]+)$")


def plus_address(address: str, record: models.Model) -> str:
    """``support@example.com`` + Ticket 123 → ``support+ticket-123@example.com``."""
    target = _require_target(record)
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}+{target.key}-{int(record.pk)}@{domain}"


def parse_plus_address(address: str) -> tuple[Target, int] | None:
    """The (target, id) a plus address names, or None when it names no registered target."""
    match = _PLUS_RE.match((address or "").strip())
    if match is None:
        return None
    target = get_target(match["key"].lower())
    if target is None:
        return None
    return target, int(match["id"])


def base_address(address: str) -> str:
    """``support+ticket-123@example.com`` → ``support@example.com`` (lower case)."""
    local, _, domain = (address or "").strip().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}".lower() if local else (address or "").strip().lower()


# -- the X-Buzon-Ref header on sent mail ----------------------------------------------------------

_REF_MSG_RE = re.compile(r"\bm\s*=\s*(\d{1,18})")


def ref_header(message_pk: int, record: models.Model | None = None) -> str:
    """Value of ``X-Buzon-Ref`` for a sent message: ``m=42; [#T-123]`` (record part optional)."""
    value = f"m={int(message_pk)}"
    if record is not None:
        value += f"; {record_token(record)}"
    return value


@dataclass(frozen=True)
class BuzonRef:
    message_pk: int | None
    records: list[tuple[Target, int]]


def parse_ref_header(value: str | None) -> BuzonRef | None:
    if not value:
        return None
    match = _REF_MSG_RE.search(value)
    records = find_record_tokens(value)
    if match is None and not records:
        return None
    return BuzonRef(message_pk=int(match.group(1)) if match else None, records=records)

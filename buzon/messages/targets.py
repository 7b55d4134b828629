"""Mail targets: the record types mail can create or join ("any model can be made a mail target").

A target is a model registered here under a short key (``ticket``) and a token prefix (``T``). Every
registered target can be chosen as an account's ``append_to``, is named in the subject of mail
Buzón sends about a record (``[#T-123]``), can be reached by plus-addressing
(``support+ticket-123@example.com``), and is carried in the ``X-Buzon-Ref`` header of sent mail, so a
reply finds its record even when a provider rewrites the Message-ID of what Buzón sent. That header
also names the sent message itself, with a tag of its own (see ``ref_header``).

An integrator makes their own model a target from their AppConfig.ready()::

    from buzon.messages import targets
    targets.register(Order, key="order", prefix="O", label=_("Order"), create=create_order)

Unguessable tokens. Record ids are sequential, so ``[#T-184]`` alone would let anyone file mail
under any ticket. Buzón writes every token and plus address with a check code, a tag: the first
8 characters of the base32 HMAC-SHA256 of ``<target key>:<id>``, keyed from SECRET_KEY through
Django's ``salted_hmac`` (``[#T-184-k3x9q2ab]``, ``support+ticket-184-k3x9q2ab@``), the way the best
helpdesks do. A tagged token is accepted from any sender; a wrong tag is refused. Tokens written
before tags (``[#T-184]``) keep working only for the record's own people: the sender must be one of
the record's customer's addresses or the record's own email (``sender_addresses``); otherwise the
inbound thread step ignores the token and says why. Changing SECRET_KEY invalidates the tags of
mail already sent (answers then start new conversations unless they carry headers that thread).

Stores are walls: a record belongs to the store in its ``store`` foreign key (a model without one
belongs to no store), and mail joins a record by token, plus address or reply only when the record
belongs to the store of the account the mail arrived at (``store_id_of``; see inbound/steps/thread).
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.crypto import salted_hmac
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
        """The subject token Buzón writes for record ``record_id``, with its tag: ``[#T-184-k3x9q2ab]``."""
        return f"[#{self.prefix}-{record_id}-{record_tag(self, record_id)}]"

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


# -- tags: what makes a token unguessable ----------------------------------------------------------

TAG_LENGTH = 8
_TAG_SALT = "buzon.messages.targets.record-tag"


def record_tag(target: Target, record_id: int) -> str:
    """The check code of record ``record_id`` of ``target`` (lower-case base32, TAG_LENGTH long)."""
    digest = salted_hmac(_TAG_SALT, f"{target.key}:{int(record_id)}", algorithm="sha256").digest()
    return base64.b32encode(digest).decode("ascii").lower()[:TAG_LENGTH]


@dataclass(frozen=True)
class Named:
    """A record that mail names: by a subject token or a plus address (``address``), with the tag
    it carried ("" for a token written before tags)."""

    target: Target
    record_id: int
    tag: str = ""
    address: str = ""

    @property
    def tag_valid(self) -> bool:
        """Whether the tag is the record's own (compared in constant time); False when untagged."""
        return bool(self.tag) and hmac.compare_digest(record_tag(self.target, self.record_id), self.tag.lower())


def store_id_of(record: models.Model) -> int | None:
    """The id of the store ``record`` belongs to: its ``store`` foreign key; None without one."""
    try:
        field = record._meta.get_field("store")
    except FieldDoesNotExist:
        return None
    return getattr(record, field.attname, None) if isinstance(field, models.ForeignKey) else None


def sender_addresses(record: models.Model) -> set[str]:
    """Who may still name ``record`` by an untagged token: the addresses of its customer (or its own,
    for a customer) and its own ``email`` (a job applicant's), in lower case."""
    found: set[str] = set()
    customer = record if hasattr(record, "emails") else getattr(record, "customer", None)
    emails = getattr(customer, "emails", None) if customer is not None else None
    if emails is not None:
        found.update(address.lower() for address in emails.values_list("address", flat=True))
    email = getattr(record, "email", "")
    if isinstance(email, str) and email.strip():
        found.add(email.strip().lower())
    return found


# -- record tokens in subjects: "[#T-123-k3x9q2ab]" (or "[#T-123]" written before tags) ------------

# Typed by hand, a token comes in any case and spacing: "[# t - 123 ]", "[#T123]", "[ #t-123-AbC]".
# A tag of any length is read (and then refused when wrong), so a mangled one is never half-read.
_TOKEN_RE = re.compile(r"\[\s*#\s*([A-Za-z]{1,4})\s*-?\s*(\d{1,18})(?:\s*-\s*([A-Za-z0-9]{1,16}))?\s*\]")


def record_token(record: models.Model) -> str:
    """The token that names ``record`` in a subject, with its tag, e.g. ``[#T-123-k3x9q2ab]``."""
    return _require_target(record).token(int(record.pk))


def find_tokens(text: str) -> list[Named]:
    """Every registered record token in ``text``, in order, without repeats (tag included)."""
    found: list[Named] = []
    for prefix, number, tag in _TOKEN_RE.findall(text or ""):
        target = target_by_prefix(prefix)
        if target is None:
            continue
        named = Named(target, int(number), tag.lower())
        if named not in found:
            found.append(named)
    return found


def find_record_tokens(text: str) -> list[tuple[Target, int]]:
    """The records the tokens in ``text`` name, in order, without repeats (tags not checked)."""
    return list(dict.fromkeys((named.target, named.record_id) for named in find_tokens(text)))


def strip_record_tokens(subject: str, only: list[Named] | None = None) -> str:
    """``subject`` without record tokens (``only``: without those naming these records)."""
    named = {(n.target.key, n.record_id) for n in only or []}

    def drop(match: re.Match[str]) -> str:
        target = target_by_prefix(match[1])
        keep = only is not None and (target is None or (target.key, int(match[2])) not in named)
        return match[0] if keep else ""

    return re.sub(r"\s{2,}", " ", _TOKEN_RE.sub(drop, subject or "")).strip()


# -- plus addresses: "support+ticket-123-k3x9q2ab@example.com" ------------------------------------

_PLUS_RE = re.compile(r"^(?P<local>[^+@]+)\+(?P<key>[A-Za-z][A-Za-z0-9_]*)-(?P<id>\d{1,18})"
                      r"(?:-(?P<tag>[A-Za-z0-9]{1,16}))?@(?P<domain>[^@]+)$")


def plus_address(address: str, record: models.Model) -> str:
    """``support@example.com`` + Ticket 123 → ``support+ticket-123-k3x9q2ab@example.com``."""
    target = _require_target(record)
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0]
    return f"{local}+{target.key}-{int(record.pk)}-{record_tag(target, int(record.pk))}@{domain}"


def parse_plus(address: str) -> Named | None:
    """The record a plus address names (with its tag, if any), or None when it names no target."""
    match = _PLUS_RE.match((address or "").strip())
    if match is None:
        return None
    target = get_target(match["key"].lower())
    if target is None:
        return None
    return Named(target, int(match["id"]), (match["tag"] or "").lower(), address.strip())


def parse_plus_address(address: str) -> tuple[Target, int] | None:
    """The (target, id) a plus address names, or None when it names no registered target."""
    named = parse_plus(address)
    return (named.target, named.record_id) if named is not None else None


def base_address(address: str) -> str:
    """``support+ticket-123@example.com`` → ``support@example.com`` (lower case)."""
    local, _, domain = (address or "").strip().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}".lower() if local else (address or "").strip().lower()


# -- the X-Buzon-Ref header on sent mail ----------------------------------------------------------

# Signed like the record tokens. The message part says "this is the copy of message 42 Buzón sent";
# believed, it makes mail disappear as a duplicate and gives the sent message a provider Message-ID
# (or marks it bounced), so anyone could do that to any message by counting. It is written
# ``m=42-<tag>``: the tag is the first REF_TAG_LENGTH characters of the base32 HMAC-SHA256 of
# ``m:42``, keyed from SECRET_KEY (``salted_hmac``, its own salt), and compared in constant time.
# A ref without a tag (written before tags) or with a wrong one is not Buzón's word: the inbound
# deduplicate step believes an untagged one only for a copy found in the sending account's own
# Sent folder (see there); a bounce's untagged one is not used (its Message-ID still is).
REF_TAG_LENGTH = 16
_REF_SALT = "buzon.messages.targets.sent-ref"
_REF_MSG_RE = re.compile(r"\bm\s*=\s*(\d{1,18})(?:\s*-\s*([A-Za-z0-9]{1,64}))?")


def ref_tag(message_pk: int) -> str:
    """The check code of sent message ``message_pk``'s ref (lower-case base32, REF_TAG_LENGTH long)."""
    digest = salted_hmac(_REF_SALT, f"m:{int(message_pk)}", algorithm="sha256").digest()
    return base64.b32encode(digest).decode("ascii").lower()[:REF_TAG_LENGTH]


def ref_header(message_pk: int, record: models.Model | None = None) -> str:
    """Value of ``X-Buzon-Ref`` for a sent message: ``m=42-<tag>; [#T-123-<tag>]`` (record part optional)."""
    value = f"m={int(message_pk)}-{ref_tag(message_pk)}"
    if record is not None:
        value += f"; {record_token(record)}"
    return value


@dataclass(frozen=True)
class BuzonRef:
    message_pk: int | None
    records: list[tuple[Target, int]]
    tag: str = ""

    @property
    def signed(self) -> bool:
        """Whether the message part carries its own tag (Buzón wrote it), compared in constant time."""
        return (self.message_pk is not None and bool(self.tag)
                and hmac.compare_digest(ref_tag(self.message_pk), self.tag.lower()))


def parse_ref_header(value: str | None) -> BuzonRef | None:
    if not value:
        return None
    match = _REF_MSG_RE.search(value)
    records = find_record_tokens(value)
    if match is None and not records:
        return None
    return BuzonRef(message_pk=int(match.group(1)) if match else None, records=records,
                    tag=(match.group(2) or "") if match else "")

"""Sender confirmation (seed 002): an account outside the known providers proves it owns its address.

Buzón mails a link and a six-digit code to the account's own address. Either one confirms it. The
mail is Buzón writing to the person who set the account up, so like every notification it leaves
through the default outgoing account (seed 000 §3.4), or through the account itself while there is
no other. Until then normal mail from the account is refused with a reason the UI and API show;
notifications and auto-replies are not held back (they are the system's own mail). Accounts on a
provider preset (Gmail, Outlook…) need no confirmation: the provider already refuses a From it does
not own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.core import public_url
from buzon.mailboxes.endpoints import provider_preset
from buzon.mailboxes.models import EmailAccount
from buzon.messages.outbox import SendRefused, default_outgoing_account
from buzon.outbound import addresses, tokens
from buzon.outbound.models import SenderConfirmation

MAX_CODE_TRIES = 5


def needs_confirmation(account: EmailAccount) -> bool:
    return bool(settings.OUTBOUND_CONFIRM_SENDERS) and not account.is_system and provider_preset(account) is None


def is_confirmed(account: EmailAccount) -> bool:
    if not needs_confirmation(account):
        return True
    return SenderConfirmation.objects.filter(account=account, confirmed_at__isnull=False).exists()


def not_confirmed(account: EmailAccount) -> SendRefused:
    return SendRefused(_("%(address)s has not been confirmed as a sender yet. Open the link or enter the "
                         "code Buzón sent to that address, then send again.") % {"address": account.email_address})


def _hash(code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), code.encode(), hashlib.sha256).hexdigest()


def carrier(account: EmailAccount) -> EmailAccount:
    """The account the confirmation leaves through: the notifications one, else the account itself."""
    default = default_outgoing_account()
    return default if default is not None and default.pk != account.pk else account


def confirmation_email(account: EmailAccount, code: str, via: EmailAccount | None = None) -> EmailMessage:
    link = public_url.absolute(reverse("outbound:confirm-sender",
                                       args=[tokens.confirm_token(account.pk, account.email_address)]))
    box = addresses.parse(account.email_address)  # an internationalised address goes as addresses.py says
    via = via or account
    sender = addresses.mailbox(via.display_name or "Buzón", via.email_address)
    utf8 = box.utf8 or sender.utf8
    mail = EmailMessage(policy=SMTPUTF8 if utf8 else SMTP)
    mail["From"] = sender.header(utf8)
    mail["To"] = box.header(utf8)
    mail["Subject"] = _("Confirm %(address)s as a sender in Buzón") % {"address": account.email_address}
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.ascii_domain)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(_("Buzón was asked to send mail as %(address)s.\n\nTo confirm, open this link:\n%(link)s\n\n"
                       "or enter this code in Buzón: %(code)s\n\nIf you did not ask for this, ignore this message.")
                     % {"address": account.email_address, "link": link, "code": code})
    return mail


def start(account: EmailAccount) -> None:
    """Mail a fresh link and code to the account's address. Raises MailServerError if SMTP fails."""
    from buzon.outbound.smtp import send_now

    code = f"{secrets.randbelow(10**6):06d}"
    via = carrier(account)
    mail = confirmation_email(account, code, via)
    box, sender = addresses.parse(account.email_address), addresses.parse(via.email_address)
    send_now(via, sender.envelope, [box.envelope], mail.as_bytes(),
             utf8_addresses=[b.address for b in (sender, box) if b.utf8])
    SenderConfirmation.objects.update_or_create(
        account=account, defaults={"code_hash": _hash(code), "sent_at": timezone.now(), "failed_tries": 0},
    )


def confirm_code(account: EmailAccount, code: str) -> bool:
    """True when `code` is the one last mailed; five wrong tries void it (ask for a new one)."""
    with transaction.atomic():
        pending = SenderConfirmation.objects.select_for_update().filter(account=account).first()
        if pending is None or not pending.code_hash or pending.failed_tries >= MAX_CODE_TRIES:
            return False
        if not hmac.compare_digest(pending.code_hash, _hash(code.strip())):
            pending.failed_tries += 1
            pending.save(update_fields=["failed_tries"])
            return False
        pending.confirmed_at = timezone.now()
        pending.code_hash = ""
        pending.save(update_fields=["confirmed_at", "code_hash"])
    return True


def confirm_token(token: str) -> EmailAccount:
    """The account a confirmation link names; raises tokens.BadToken if forged, altered or stale."""
    account_id, address = tokens.read(tokens.CONFIRM, token, max_age=7 * 24 * 3600)
    account = EmailAccount.objects.filter(pk=account_id).first()
    if account is None or account.email_address.lower() != address:
        raise tokens.BadToken("the account or its address changed")
    SenderConfirmation.objects.update_or_create(
        account=account, defaults={"confirmed_at": timezone.now(), "code_hash": ""})
    return account


def mark_confirmed(account: EmailAccount) -> None:
    """For an administrator who verified the address another way (and for tests of other features)."""
    SenderConfirmation.objects.update_or_create(account=account, defaults={"confirmed_at": timezone.now()})

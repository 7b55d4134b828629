"""Everything one account needs to be synced, read once from the database."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from buzon.mailboxes.endpoints import MissingServer, ServerSettings, attachment_limit_mb, incoming_settings
from buzon.mailboxes.errors import ConfigurationError, MailServerError, classify
from buzon.mailboxes.models import EmailAccount, SyncOption
from buzon.sync import deletion
from buzon.sync.imap import FolderOptions
from buzon.sync.pop3 import Pop3Options


@dataclass(frozen=True)
class AccountConfig:
    account_id: int
    address: str
    server: ServerSettings
    folders: tuple[str, ...]
    unseen_only: bool
    initial_count: int
    only_new: bool  # "only mail received from now on": the first pass brings in nothing already there
    limit_bytes: int
    delete_after_download: bool

    @property
    def is_imap(self) -> bool:
        return self.server.protocol == "imap"

    def folder_options(self, folder: str, chunk: int, chunk_bytes: int, depth: int = 3) -> FolderOptions:
        return FolderOptions(
            account_id=self.account_id, address=self.address, folder=folder, unseen_only=self.unseen_only,
            initial_count=self.initial_count, limit_bytes=self.limit_bytes, chunk=chunk, chunk_bytes=chunk_bytes,
            depth=depth, delete=self.delete_after_download, only_new=self.only_new,
        )

    def pop3_options(self) -> Pop3Options:
        return Pop3Options(account_id=self.account_id, address=self.address,
                           delete_after_download=self.delete_after_download,
                           initial_count=self.initial_count, limit_bytes=self.limit_bytes, only_new=self.only_new)


def eligible_accounts() -> dict[int, str]:
    """Accounts the engine should watch -> a fingerprint that changes when their settings do."""
    rows = EmailAccount.objects.filter(incoming_enabled=True, awaiting_password=False).exclude(
        password_encrypted="", oauth_refresh_token_encrypted="").values_list("id", "updated_at", "domain__updated_at")
    return {pk: f"{updated}|{domain_updated}" for pk, updated, domain_updated in rows}


def load_config(account_id: int) -> AccountConfig:
    """Raises MailServerError (ConfigurationError) when the account cannot be synced as set up."""
    account = EmailAccount.objects.select_related("domain").get(pk=account_id)
    try:
        server = incoming_settings(account)
    except MissingServer as exc:
        raise ConfigurationError(
            _("No incoming server is set for this account, its domain or its provider."),
            protocol=account.incoming_protocol or "imap",
        ) from exc
    except MailServerError:
        raise
    except Exception as exc:  # a password that no key decrypts, for instance
        raise classify(exc, None, "config") from exc
    folders = tuple(str(folder) for folder in (account.folders or []) if str(folder).strip()) or ("INBOX",)
    deletion.follow_option(account.pk, account.delete_after_download)
    return AccountConfig(
        account_id=account.pk, address=account.email_address, server=server, folders=folders,
        unseen_only=account.sync_option == SyncOption.UNSEEN, initial_count=account.initial_sync_count,
        only_new=account.sync_option == SyncOption.NEW,
        limit_bytes=attachment_limit_mb(account) * 1024 * 1024 or 2**62,
        delete_after_download=account.delete_after_download,
    )

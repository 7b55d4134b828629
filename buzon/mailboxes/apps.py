from django.apps import AppConfig


class MailboxesConfig(AppConfig):
    name = "buzon.mailboxes"
    label = "mailboxes"

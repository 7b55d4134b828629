from django.apps import AppConfig


class MessagesConfig(AppConfig):
    name = "buzon.messages"
    label = "messages_app"
    verbose_name = "Messages"

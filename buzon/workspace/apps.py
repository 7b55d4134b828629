from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "buzon.workspace"
    label = "workspace"
    verbose_name = "Workspace"

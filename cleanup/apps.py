from django.apps import AppConfig


class CleanupConfig(AppConfig):
    name = "cleanup"
    verbose_name = "Looker cleanup"

    def ready(self) -> None:
        from .approvals import register

        register()

from django.apps import AppConfig


class OrchestrationConfig(AppConfig):
    name = "orchestration"
    verbose_name = "Jobs and runs"

    def ready(self) -> None:
        from .approvals import register

        register()

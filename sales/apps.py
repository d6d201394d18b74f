from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "sales"
    verbose_name = "Sales analytics"

    def ready(self) -> None:
        from .approvals import register

        register()

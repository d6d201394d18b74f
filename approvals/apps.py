from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # The actions every app guards are registered by that app's own ready(); the ones without a home app
        # of their own (role grants, write-scope tokens) are registered here.
        from . import actions  # noqa: F401

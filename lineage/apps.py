from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"
    verbose_name = "Data lineage"

    def ready(self) -> None:
        # Registers the database transport with openlineage-python's transport factory (type: dataops_db).
        from . import transport  # noqa: F401

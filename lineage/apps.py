from django.apps import AppConfig


class LineageConfig(AppConfig):
    name = "lineage"
    verbose_name = "Data lineage"

    # The database transport (type: dataops_db) is registered with openlineage-python's transport factory when
    # lineage.services is first imported, not here: run_job's start-up skips openlineage and requests (issue 15).

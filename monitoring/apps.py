from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring, SLAs and incidents"

    def ready(self) -> None:
        """Watch every connector request (counts, timings, usage) and flush usage when a Celery task ends."""
        from connectors.http import request_observer_add

        from .metrics import process_role_set, request_observe
        from .usage import usage_flush_safely

        request_observer_add(request_observe)
        try:
            from celery.signals import task_postrun, worker_process_init
        except ImportError:  # pragma: no cover - celery is a dependency
            return
        task_postrun.connect(lambda **_: usage_flush_safely(), weak=False, dispatch_uid="monitoring_usage_flush")
        worker_process_init.connect(
            lambda **_: process_role_set("worker"), weak=False, dispatch_uid="monitoring_worker_role"
        )

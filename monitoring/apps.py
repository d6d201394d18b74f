from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring, SLAs and incidents"

    def ready(self) -> None:
        """Watch every connector request (counts, timings, usage).

        The flush of usage when a Celery task ends is connected with the Celery app (``monitoring.celery_hooks``).
        """
        from connectors.http import request_observer_add
        from dataops_site.lazy import lazy_function

        # The metrics (prometheus_client) are imported with the first request a connector sends (issue 15).
        request_observer_add(lazy_function("monitoring.metrics.request_observe"))

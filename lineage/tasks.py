"""Celery task: deliver the lineage outbox to the transport openlineage-python's configuration names."""

from celery import shared_task

from .services import lineage_outbox_deliver


@shared_task(name="lineage.deliver", ignore_result=True)
def lineage_deliver_task() -> dict[str, int]:
    return lineage_outbox_deliver()

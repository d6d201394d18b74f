"""Deliver due lineage events to the configured OpenLineage transport now."""

from django.core.management.base import BaseCommand

from lineage.services import lineage_external_transport, lineage_outbox_deliver


class Command(BaseCommand):
    help = "Send the lineage outbox to the transport openlineage-python's configuration names (OPENLINEAGE_URL...)."

    def handle(self, *args, **options) -> None:
        transport = lineage_external_transport()
        if transport is None:
            self.stdout.write("no OpenLineage transport configured besides the database: nothing to deliver")
            return
        counts = lineage_outbox_deliver()
        self.stdout.write(
            f"{transport.kind}: {counts['delivered']} delivered, {counts['retrying']} to retry, "
            f"{counts['failed']} gave up"
        )

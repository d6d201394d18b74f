"""Register each existing sync target as the one writer of its sheet (first come, by id). A target whose sheet is
already held by another target (or reserved by the sales dashboard) is left unregistered: the cycle refuses it
with the holder's name until someone moves it."""

from django.db import migrations


def register(apps, schema_editor):
    SyncTarget = apps.get_model("sheetsync", "SyncTarget")
    DestinationWriter = apps.get_model("approvals", "DestinationWriter")
    for target in SyncTarget.objects.order_by("pk"):
        sheet = target.range.split("!", 1)[0].strip().strip("'") if target.range else ""
        if not sheet or DestinationWriter.objects.filter(spreadsheet_id=target.spreadsheet_id, sheet=sheet).exists():
            continue
        DestinationWriter.objects.create(
            spreadsheet_id=target.spreadsheet_id, sheet=sheet, writer=f"sync target {target.name}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("sheetsync", "0001_initial"),
        ("approvals", "0001_approval_requests_decisions_destination_writers"),
    ]
    operations = [migrations.RunPython(register, migrations.RunPython.noop)]

"""Re-apply the roles now that the approvals app (and the sales approval permission) bring their permissions."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0001_approval_requests_decisions_destination_writers"),
        ("accounts", "0003_roles_sheetsync"),
        ("sales", "0002_durable_publish_and_query_editor"),
    ]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

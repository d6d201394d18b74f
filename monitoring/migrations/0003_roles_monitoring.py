"""Re-apply the roles now that the monitoring app brings its permissions (incidents, operations page, metrics)."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_default_ladder_and_slas"), ("accounts", "0003_roles_sheetsync")]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

"""Re-apply the roles now that the sheetsync app brings its permissions (targets, events, pause, sync now)."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_roles_quality_sales"), ("sheetsync", "0001_initial")]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

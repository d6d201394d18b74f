"""Re-apply the roles: Platform Admins approve classified exports to sheets."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("security", "0003_classified_export_permission")]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

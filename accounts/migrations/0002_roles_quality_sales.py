"""Re-apply the roles now that the quality and sales apps bring their permissions."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_roles"), ("quality", "0001_initial"), ("sales", "0001_initial")]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

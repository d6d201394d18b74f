"""Re-apply the roles now that the security app brings its permissions (reveal, the classification page)."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("security", "0001_initial"), ("accounts", "0004_api_token_scopes")]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

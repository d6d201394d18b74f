"""Re-apply the roles now that the lineage app brings its permissions (graphs for every role)."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("lineage", "0001_initial"), ("accounts", "0004_api_token_scopes")]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

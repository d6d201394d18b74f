"""Re-apply the roles now that django-axes brings its permissions (Platform Admins see and clear lockouts)."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_api_tokens_knox"), ("axes", "0010_accessattemptexpiration")]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

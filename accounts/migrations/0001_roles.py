"""Create the role groups (Viewer, Analyst, Data Steward, Content Admin, Auditor, Platform Admin)."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("audit", "0002_append_only_trigger"),
        ("orchestration", "0001_initial"),
        ("cleanup", "0001_initial"),
    ]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

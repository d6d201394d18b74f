"""Apply the roles now that the privacy app brings its permissions (the Data Protection role, Auditors' evidence)."""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    # Every app's latest migration: roles_sync sets each role's permissions from all of them.
    dependencies = [
        ("privacy", "0001_initial"),
        ("audit", "0004_insider_triggers"),
        ("accounts", "0004_api_token_scopes"),
        ("orchestration", "0004_jobrun_principal_and_approval"),
        ("cleanup", "0001_initial"),
        ("quality", "0003_line_level_check_results"),
        ("sales", "0003_query_run_purpose"),
        ("sheetsync", "0004_principals_and_written_copies"),
        ("monitoring", "0003_roles_monitoring"),
        ("approvals", "0002_roles_see_approvals"),
    ]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

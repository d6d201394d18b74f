"""Re-apply the roles once every app's models exist (issues 10-13 each added permissions in their own app).

Each app's own roles migration runs when its models exist, in an order the graph leaves open; this one depends on
the newest migration of every app, so the groups end exactly as ``accounts/roles.py`` says.
"""

from django.db import migrations


def sync(apps, schema_editor):
    from accounts.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_roles_axes"),
        ("approvals", "0002_roles_see_approvals"),
        ("audit", "0005_actor_index"),
        ("cleanup", "0001_initial"),  # as shipped: cleanup 0002 adds indexes only, no permissions
        ("console", "0001_initial"),
        ("lineage", "0002_roles_lineage"),
        ("monitoring", "0003_roles_monitoring"),
        ("orchestration", "0004_jobrun_principal_and_approval"),
        ("privacy", "0002_roles"),
        ("quality", "0004_encrypt_samples_and_quarantine"),
        ("sales", "0003_query_run_purpose"),
        ("security", "0004_roles"),
        ("sheetsync", "0004_principals_and_written_copies"),
        ("knox", "0009_extend_authtoken_field"),
        ("axes", "0010_accessattemptexpiration"),
    ]
    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]

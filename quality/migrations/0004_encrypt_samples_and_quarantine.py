"""Issue 12: quarantined rows' values and failing samples are stored encrypted (Fernet, DATA_ENCRYPTION_KEYS).

Each JSON column is copied into a new encrypted text column row by row, then replaces it. The copy works in both
directions (the historical models read and write each column in its own format), so the migration reverses.
"""

from django.db import migrations

import security.crypto

BATCH = 500


def _copy(model, source: str, target: str) -> None:
    batch = []
    for obj in model.objects.only("pk", source).iterator(chunk_size=BATCH):
        setattr(obj, target, getattr(obj, source))
        batch.append(obj)
        if len(batch) >= BATCH:
            model.objects.bulk_update(batch, [target])
            batch = []
    if batch:
        model.objects.bulk_update(batch, [target])


def encrypt_existing(apps, schema_editor):
    _copy(apps.get_model("quality", "QuarantinedRow"), "data", "data_encrypted")
    _copy(apps.get_model("quality", "CheckResult"), "sample_keys", "sample_keys_encrypted")


def decrypt_existing(apps, schema_editor):
    _copy(apps.get_model("quality", "QuarantinedRow"), "data_encrypted", "data")
    _copy(apps.get_model("quality", "CheckResult"), "sample_keys_encrypted", "sample_keys")


class Migration(migrations.Migration):
    dependencies = [("quality", "0003_line_level_check_results")]

    operations = [
        migrations.AddField(
            model_name="quarantinedrow",
            name="data_encrypted",
            field=security.crypto.EncryptedJSONField(default=dict, null=True),
        ),
        migrations.AddField(
            model_name="checkresult",
            name="sample_keys_encrypted",
            field=security.crypto.EncryptedJSONField(blank=True, default=list, null=True),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.RemoveField(model_name="quarantinedrow", name="data"),
        migrations.RemoveField(model_name="checkresult", name="sample_keys"),
        migrations.RenameField(model_name="quarantinedrow", old_name="data_encrypted", new_name="data"),
        migrations.RenameField(model_name="checkresult", old_name="sample_keys_encrypted", new_name="sample_keys"),
        migrations.AlterField(
            model_name="quarantinedrow",
            name="data",
            field=security.crypto.EncryptedJSONField(default=dict),
        ),
        migrations.AlterField(
            model_name="checkresult",
            name="sample_keys",
            field=security.crypto.EncryptedJSONField(blank=True, default=list),
        ),
    ]

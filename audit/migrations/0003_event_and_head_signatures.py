"""Sign every audit event and the chain head (HMAC under AUDIT_HMAC_KEY), existing rows included.

The existing rows are signed as they are: whatever they hold now is what the hash chain, the anchors and the
verifier have vouched for so far. On PostgreSQL the append-only trigger is lifted for this one backfill.
"""

from django.db import migrations, models


def sign_existing(apps, schema_editor):
    from audit.signing import AuditSigner

    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    signer = AuditSigner.from_settings()
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
    for pk, seq, digest in AuditEvent.objects.order_by("seq").values_list("pk", "seq", "hash").iterator():
        AuditEvent.objects.filter(pk=pk).update(mac=signer.event_mac(seq, digest))
    if postgres:
        schema_editor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
    for head in AuditChainHead.objects.all():
        AuditChainHead.objects.filter(pk=head.pk).update(mac=signer.head_mac(head.seq, head.hash))


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="mac",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.RunPython(sign_existing, migrations.RunPython.noop),
    ]

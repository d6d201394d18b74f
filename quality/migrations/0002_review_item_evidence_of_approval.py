"""Review items become the evidence of an approval request: pending reviews get their request (the publish they
resumed, pinned to the report's rows), then the dotted ``resume`` strings go."""

import hashlib
import json
from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations, models
from django.utils import timezone


def pending_reviews_to_approvals(apps, schema_editor):
    ReviewItem = apps.get_model("quality", "ReviewItem")
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    SalesReport = apps.get_model("sales", "SalesReport")
    for item in ReviewItem.objects.filter(status="pending").order_by("pk"):
        report_id = (item.resume or {}).get("kwargs", {}).get("report_id")
        report = SalesReport.objects.filter(pk=report_id).first() if report_id else None
        if report is None:
            continue
        rows = json.dumps(report.rows, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        inputs = {"report_id": report.pk, "rows_sha256": hashlib.sha256(rows.encode()).hexdigest(),
                  "quality_run_id": item.quality_run_id}  # fmt: skip
        canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        item.approval = ApprovalRequest.objects.create(
            action="sales.review_publish",
            title=f"Quality review: {item.title}"[:300],
            inputs=inputs,
            inputs_sha256=hashlib.sha256(canonical.encode()).hexdigest(),
            reason="the quality gate asks for a manual review (opened before approvals existed)",
            approver_role="Data Steward",
            approver_permission="quality.decide_reviewitem",
            quorum=1 if item.requested_by_id else 2,
            requested_by_id=item.requested_by_id,
            requested_by_label="migrated",
            object_type="sales.salesreport",
            object_id=str(report.pk),
            expires_at=timezone.now() + timedelta(hours=float(getattr(settings, "APPROVALS_EXPIRY_HOURS", 72))),
        )
        item.save(update_fields=["approval"])
        # The request's opening goes into the hash chain like any other (its execution checks the inputs hash
        # against this event). Live code, reached only when a database holds pending reviews.
        from audit.services import audit_log

        audit_log(
            action="approval.requested",
            object_type="approvals.approvalrequest",
            object_id=str(item.approval.pk),
            data={"action": "sales.review_publish", "inputs_sha256": item.approval.inputs_sha256,
                  "quorum": item.approval.quorum, "migrated_from_review_item": item.pk},
        )  # fmt: skip


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0001_approval_requests_decisions_destination_writers'),
        ('quality', '0001_initial'),
        ('sales', '0002_durable_publish_and_query_editor'),
    ]

    operations = [
        migrations.AddField(
            model_name='reviewitem',
            name='approval',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='review_item', to='approvals.approvalrequest'),
        ),
        migrations.RunPython(pending_reviews_to_approvals, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='reviewitem',
            name='resume',
        ),
        migrations.RemoveField(
            model_name='reviewitem',
            name='resume_outcome',
        ),
        migrations.AlterField(
            model_name='reviewitem',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('expired', 'Expired')], db_index=True, default='pending', max_length=10),
        ),
    ]

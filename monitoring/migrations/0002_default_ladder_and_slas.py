"""The default escalation ladder (owner -> Data Stewards -> Platform Admins) and the example SLAs of the design:
the monthly cleanup done by the 3rd, a requested sales report published within 15 minutes, every sync target
fresh within 10 minutes. All editable in the admin."""

from django.db import migrations

LADDER = [
    # level, audience, after_occurrences, after_minutes
    (1, "owner", 1, 0),
    (2, "Data Steward", 3, 30),
    (3, "Platform Admin", 5, 120),
]
SLAS = [
    {"name": "cleanup-by-the-3rd", "job": "looker_cleanup", "kind": "deadline", "day_of_month": 3,
     "objective_percent": 100.0, "description": "The monthly Looker cleanup has succeeded by the end of the 3rd."},
    {"name": "sales-report-in-15-min", "job": "sales_report", "kind": "latency", "within_minutes": 15,
     "objective_percent": 95.0, "description": "A requested sales report is published within 15 minutes."},
    {"name": "sync-fresh-in-10-min", "job": "sheets_sync", "kind": "freshness", "within_minutes": 10,
     "objective_percent": 99.0, "description": "Every enabled sync target was synced within the last 10 minutes."},
]  # fmt: skip


def seed(apps, schema_editor):
    EscalationStep = apps.get_model("monitoring", "EscalationStep")
    Sla = apps.get_model("monitoring", "Sla")
    for level, audience, occurrences, minutes in LADDER:
        EscalationStep.objects.get_or_create(
            job="", level=level, defaults={"audience": audience, "after_occurrences": occurrences, "after_minutes": minutes}
        )
    for sla in SLAS:
        Sla.objects.get_or_create(name=sla["name"], defaults=sla)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_monitoring_records_incidents_slas")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

"""Sales queries, their BigQuery runs (job metadata and cost), and the reports published to Sheets."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SalesQuery(models.Model):
    """A sales query: BigQuery SQL with named parameters (@start, @end, @regions, @all_regions).

    Defined in the admin or loaded from ``sales/sql/<name>.sql``. ``{grain}`` in the SQL is replaced by a
    whitelisted date part (DAY, WEEK, MONTH); everything else is a bound query parameter.
    """

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    sql = models.TextField()
    source_file = models.CharField(max_length=300, blank=True, help_text="set when loaded from sales/sql/")
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Who last changed the SQL: they shape every run of it, so they never approve one of its costly runs.
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "sales queries"
        permissions = [
            ("run_salesquery", "Can run sales queries"),
            ("approve_costly_query", "Can approve sales queries above SALES_APPROVAL_BYTES"),
        ]

    def __str__(self) -> str:
        return self.title or self.name

    def clean(self) -> None:
        # Issue 12: the report goes to a Google Sheet; confidential or restricted columns must not reach it unmasked.
        from django.core.exceptions import ValidationError

        from security.governance import classified_columns_in_sql

        sent = classified_columns_in_sql(self.sql.replace("{grain}", "DAY"))
        if sent:
            names = ", ".join(f"{c.dataset}.{c.column} ({c.level})" for c in sent)
            raise ValidationError(
                {
                    "sql": f"the report is published to a sheet and would carry {names} unmasked: aggregate them or "
                    "pass them through TO_HEX(SHA256(...))"
                }
            )


class QueryRun(models.Model):
    """One BigQuery execution with its metadata; the cost guard's refusals are recorded too.

    A sales run has validation jobs (the order lines checked in BigQuery) and its report job, each a row.
    """

    class Status(models.TextChoices):
        ESTIMATED = "estimated", "Dry run only"
        REFUSED = "refused", "Refused by the cost guard"
        AWAITING_APPROVAL = "awaiting_approval", "Waiting for approval (above SALES_APPROVAL_BYTES)"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Purpose(models.TextChoices):
        REPORT = "report", "Report query"
        VALIDATION = "validation", "Order-line validation"

    job_run = models.ForeignKey(
        "orchestration.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="query_runs"
    )
    query = models.ForeignKey(SalesQuery, on_delete=models.PROTECT, related_name="runs")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.REPORT, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    bq_job_id = models.CharField(max_length=300, blank=True)
    location = models.CharField(max_length=50, blank=True)
    sql_hash = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    bytes_estimated = models.PositiveBigIntegerField(default=0)
    bytes_processed = models.PositiveBigIntegerField(default=0)
    bytes_billed = models.PositiveBigIntegerField(default=0)
    slot_ms = models.PositiveBigIntegerField(default=0)
    cache_hit = models.BooleanField(default=False)
    rows = models.PositiveBigIntegerField(default=0)
    duration_s = models.FloatField(default=0)
    estimated_cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        what = "" if self.purpose == self.Purpose.REPORT else f" {self.purpose}"
        return f"{self.query.name}{what} run #{self.pk} ({self.status})"


class SalesReport(models.Model):
    """The processed result of a run and where it stands: published, waiting for review, or blocked."""

    class Status(models.TextChoices):
        BLOCKED = "blocked", "Blocked by the quality gate"
        PENDING_REVIEW = "pending_review", "Waiting for a quality review"
        # The intent is committed and the sheet write may be under way (or died): the sweeper settles it.
        PUBLISHING = "publishing", "Publishing"
        PUBLISHED = "published", "Published"
        PUBLISH_FAILED = "publish_failed", "Publish failed (previous values restored)"
        REJECTED = "rejected", "Rejected in review"

    query_run = models.OneToOneField(QueryRun, on_delete=models.CASCADE, related_name="report")
    quality_run = models.ForeignKey("quality.QualityRun", null=True, blank=True, on_delete=models.SET_NULL)
    grain = models.CharField(max_length=10, default="DAY")
    rows = models.JSONField(default=list, help_text="[{day, region, orders, revenue}] after the quality gate")
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    sheet_id = models.CharField(max_length=200, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_started_at = models.DateTimeField(null=True, blank=True)
    publish_requests = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"sales report #{self.pk} ({self.status})"

    @property
    def period(self) -> str:
        """The period and cut the report shows, as the sheet's status block and the admin name it."""
        from .params import period_text

        return period_text({**self.query_run.params, "grain": self.grain})

"""What a /metrics scrape and the operations page cost as run history grows (embedded SQLite, a scratch var dir).

    .venv/bin/python bench/monitoring_bench.py [--runs 2000 20000 100000]

Seeds N finished runs (a five-minute sync job's 90 days is ~26,000) with their monitoring records and a month of
per-minute API usage, then times one scrape (every database figure, host and process collectors) and the
operations page's series for 24 h and 30 d. Prints the figures and the ratio to the smallest N.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="monitoring-bench-")
    os.environ.pop("DATABASE_URL", None)
    os.environ["DATAOPS_VAR_DIR"] = scratch
    os.environ["DJANGO_SETTINGS_MODULE"] = "dataops_site.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from monitoring.metrics import metrics_render
    from monitoring.models import ApiUsage, RunRecord
    from monitoring.selectors import operations_series, window_get
    from orchestration.models import JobRun

    now = datetime.now(UTC)
    minutes = [now - timedelta(minutes=i) for i in range(30 * 24 * 60)]
    ApiUsage.objects.bulk_create(
        [ApiUsage(system="sheets", minute=m.replace(second=0, microsecond=0), requests=3) for m in minutes[::5]],
        batch_size=5000,
        ignore_conflicts=True,
    )
    baseline = None
    seeded = 0
    print(f"{'runs':>8} {'scrape s':>9} {'24h page s':>11} {'30d page s':>11} {'scrape x':>9}")
    for target in sorted(args.runs):
        batch = []
        for i in range(seeded, target):
            finished = now - timedelta(minutes=5 * i)
            batch.append(
                JobRun(job="sheets_sync", trigger="airflow", status="succeeded" if i % 20 else "failed", params={},
                       started_at=finished - timedelta(seconds=4), finished_at=finished)
            )  # fmt: skip
        runs = JobRun.objects.bulk_create(batch, batch_size=5000)
        RunRecord.objects.bulk_create(
            [
                RunRecord(job_run=r, job=r.job, status=r.status, trigger=r.trigger, requested_at=r.finished_at,
                          finished_at=r.finished_at, duration_s=4.0 + (r.pk % 7), rows=10, cells=40, api_calls=3)
                for r in runs
            ],
            batch_size=5000,
        )  # fmt: skip
        seeded = target
        started = time.perf_counter()
        body = metrics_render(disk_path=scratch)
        scrape = time.perf_counter() - started
        started = time.perf_counter()
        operations_series(window=window_get("24h"))
        day = time.perf_counter() - started
        started = time.perf_counter()
        operations_series(window=window_get("30d"))
        month = time.perf_counter() - started
        baseline = baseline or scrape
        print(f"{target:>8} {scrape:>9.3f} {day:>11.3f} {month:>11.3f} {scrape / baseline:>8.1f}x  ({len(body)} bytes)")


if __name__ == "__main__":
    main()

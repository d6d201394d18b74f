"""Audit chain: the cost of signing each event, of a full verification, and of bounding a huge payload.

Writes N events through ``audit_log`` twice in the same process: with the HMAC signatures (the code as it is)
and with a no-op signer (the chain as it was before issue 9: hashes only), then verifies the whole chain with and
without reading anchors, and bounds a 2 MB payload. A throwaway SQLite database in a temporary directory by
default (``--database-url postgres://...`` for PostgreSQL; the database is created and dropped by Django's test
runner machinery). Prints figures and ratios; a missed target prints a FAIL line.

    .venv/bin/python bench/audit_chain_bench.py --events 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "dataops_site.settings"
    os.environ["DATAOPS_VAR_DIR"] = str(var_dir)
    os.environ["BACKUP_STORAGE_URL"] = f"file://{var_dir / 'backups'}"
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
    os.environ.pop("CELERY_BROKER_URL", None)
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
        os.environ.setdefault("DJANGO_SECRET_KEY", "bench")
    else:
        os.environ.pop("DATABASE_URL", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    test_db = connection.creation.create_test_db(verbosity=0)
    try:
        run(args.events)
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)


def _write(n: int) -> float:
    from audit.services import audit_log

    started = time.perf_counter()
    for i in range(n):
        audit_log(
            action="job.requested",
            object_type="bench",
            object_id=str(i),
            data={"job": "looker_cleanup", "params": {"inactive_days": 90, "max_deletions": 100}, "dry_run": False},
        )
    return time.perf_counter() - started


def run(n: int) -> None:
    from audit import services as audit_services
    from audit.models import AuditChainHead, AuditEvent
    from audit.selectors import audit_chain_verify
    from audit.services import audit_payload_bound
    from orchestration.services import job_run_create, job_run_execute

    class NoSigner:
        """The chain before signatures: hashes only."""

        @classmethod
        def from_settings(cls):
            return cls()

        def head_mac(self, *a):
            return ""

        def event_mac(self, *a):
            return ""

    real = audit_services.AuditSigner
    audit_services.AuditSigner = NoSigner
    baseline = _write(n)
    audit_services.AuditSigner = real
    # Start the signed run on an empty chain (on PostgreSQL lift the triggers, as the bench database's owner).
    from django.db import connection

    with connection.cursor() as cursor:
        tables = ("audit_auditevent", "audit_auditchainhead")
        if connection.vendor == "postgresql":
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        AuditEvent.objects.all().delete()
        AuditChainHead.objects.all().delete()
        if connection.vendor == "postgresql":
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    signed = _write(n)

    job_run_execute(job_run_id=job_run_create(job="audit_anchor").pk)
    started = time.perf_counter()
    verdict = audit_chain_verify(read_anchors=False)
    verify_plain = time.perf_counter() - started
    started = time.perf_counter()
    with_anchors = audit_chain_verify()
    verify_anchors = time.perf_counter() - started

    huge = {"job": "x", "params": {"value": "9" * (2 * 1024 * 1024)}}
    started = time.perf_counter()
    bounded = audit_payload_bound(huge)
    bound_s = time.perf_counter() - started
    import json

    overhead = signed / baseline - 1
    print(f"events                 {n:,} ({os.environ.get('DATABASE_URL') and 'PostgreSQL' or 'SQLite'})")
    print(f"write, hashes only     {baseline:.2f} s  ({n / baseline:,.0f} events/s)  [baseline: the chain before]")
    print(f"write, hashes + HMAC   {signed:.2f} s  ({n / signed:,.0f} events/s)  ratio {signed / baseline:.2f}x")
    rate = verdict.checked / verify_plain
    print(f"verify (no anchors)    {verify_plain:.2f} s  ({rate:,.0f} events/s), ok={verdict.ok}")
    print(
        f"verify (with anchors)  {verify_anchors:.2f} s, ok={with_anchors.ok}, anchors={with_anchors.anchors_checked}"
    )
    print(f"2 MB payload bounded   {bound_s * 1000:.1f} ms -> {len(json.dumps(bounded)):,} bytes of JSON")
    if overhead > 0.25:
        print(f"FAIL signing costs {overhead:.0%} of a write (target <= 25%)", file=sys.stderr)
        print(f"FAIL signing costs {overhead:.0%} of a write (target <= 25%)")
    if not (verdict.ok and with_anchors.ok):
        print("FAIL the benchmark chain did not verify")


if __name__ == "__main__":
    main()

"""Benchmark: the Looker cleanup scan against a naive per-dashboard flow, plus the deletion phase.

Run from the project root::

    .venv/bin/python bench/looker_cleanup_bench.py [--dashboards 10000] [--latency-ms 20] [--page-size 500]
                                                   [--delete 200] [--concurrency 4] [--naive-limit K]

Everything runs in this one process: a throwaway SQLite database and backup store in a temporary directory
(``DATAOPS_VAR_DIR``; nothing under ``var/`` is touched), and an in-process Looker emulator on loopback holding
``--dashboards`` generated dashboards (plus a few LookML ones) that answers every API request after
``--latency-ms`` milliseconds, like a remote Looker would. The real ``looker_sdk`` runs through the project's
connector. Request counts come from the emulator's own counters (logins included), cross-checked with the
client's ``request_count``.

What is measured, in this order:

1. **Project scan + plan**: ``cleanup.services.inventory_refresh`` (paged dashboard searches, users, folders,
   schedules, bulk upsert into the database) then ``cleanup.policy.cleanup_plan_build(inactive_days=90)``.
   Target: at most ``ceil(N / page_size) + 10`` requests.
2. **Naive flow (the baseline)**: what a first script would do: list the dashboards (paged, it needs their
   ids), then ``GET /dashboards/{id}`` for each one, sequentially, and decide inactivity from each reply.
   At 10,000 dashboards and 20 ms it takes minutes; progress goes to stderr every 1,000 dashboards.
   ``--naive-limit K`` fetches only K dashboards and extrapolates linearly to all of them; every figure
   computed that way is marked ``(extrapolated)``. Target: the project's scan + plan is at least 20x faster.
3. **Deletions** (``cleanup_actions_commit`` + ``cleanup_actions_execute``: backup, verify, soft-delete),
   on three different slices of ``--delete`` planned dashboards each: with concurrency 1, with
   ``--concurrency``, and with ``--concurrency`` under a 429 storm (``--storm-429`` consecutive
   ``429 Retry-After: 0`` replies to ``PATCH`` after the first ``--storm-after`` PATCHes). Expected: about
   3 requests per dashboard (dashboard GET, LookML GET, PATCH), a speed-up close to the concurrency, and
   every deletion completed through the storm, paying only the retried requests.

How to read the output: the final table lists each figure; a ratio ``x`` is always "how many times more
(requests) or longer (time) the baseline takes". Lines starting with ``PASS``/``FAIL`` compare with the
targets above; a FAIL is also repeated loudly on stderr. The exit status is 0 whatever the figures (this is
a benchmark, not a test); only a crash exits non-zero.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INACTIVE_DAYS = 90
SCAN_SLACK = 10  # requests allowed on top of one per page of dashboards
TARGET_SPEEDUP = 20.0
PROGRESS_EVERY = 1000
LOGIN_KEY = "POST /api/4.0/login"
PATCH_KEY = "PATCH /api/4.0/dashboards/<dashboard_id>"


# --------------------------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dashboards", type=int, default=10_000, help="user-defined dashboards in the emulator")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency added to every request")
    parser.add_argument("--page-size", type=int, default=500, help="CLEANUP_PAGE_SIZE (scan and naive list)")
    parser.add_argument("--delete", type=int, default=200, help="dashboards per deletion slice (three slices)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrency of the concurrent deletion slices")
    parser.add_argument(
        "--naive-limit", type=int, default=None, help="fetch only K dashboards in the naive flow and extrapolate"
    )
    parser.add_argument("--storm-429", type=int, default=30, help="consecutive 429 replies in the storm slice")
    parser.add_argument("--storm-after", type=int, default=20, help="PATCHes let through before the storm starts")
    parser.add_argument("--seed", type=int, default=7, help="fixture seed")
    parser.add_argument("--verbose", action="store_true", help="keep the connector's retry warnings on stderr")
    args = parser.parse_args(argv)
    if args.dashboards < 1 or args.page_size < 1 or args.delete < 0 or args.concurrency < 1:
        parser.error("--dashboards, --page-size and --concurrency must be >= 1, --delete >= 0")
    if args.naive_limit is not None and args.naive_limit < 1:
        parser.error("--naive-limit must be >= 1")
    return args


def django_setup(var_dir: Path, *, page_size: int, verbose: bool) -> None:
    """Configure Django on a throwaway SQLite database and backup store, then migrate."""
    # Environment first: settings read it once, at import, during django.setup().
    os.environ["DJANGO_SETTINGS_MODULE"] = "dataops_site.settings"
    os.environ["DATAOPS_VAR_DIR"] = str(var_dir)
    os.environ["BACKUP_STORAGE_URL"] = f"file://{var_dir / 'backups'}"
    os.environ["EMAIL_URL"] = "memorymail://"  # the locmem backend
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
    os.environ.pop("DATABASE_URL", None)  # never write benchmark rows into a real database
    os.environ.pop("CELERY_BROKER_URL", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import django
    from django.conf import settings

    django.setup()
    from django.core.files.storage import storages
    from django.core.management import call_command

    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(var_dir / "backups"), "base_url": None},
        },
    }
    # The storage handler caches its backends on first use: start it afresh on the new settings.
    storages._backends = None
    storages._storages = {}
    storages.__dict__.pop("backends", None)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CLEANUP_PAGE_SIZE = page_size
    settings.CLEANUP_PROTECTED_FOLDERS = []
    call_command("migrate", verbosity=0, interactive=False)
    # The connector warns on every retry; the storm slice would flood stderr with them.
    logging.getLogger("connectors.looker").setLevel(logging.WARNING if verbose else logging.ERROR)
    logging.getLogger("cleanup").setLevel(logging.WARNING)


def point_settings_at(emulator: Any) -> None:
    from django.conf import settings

    from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET

    settings.LOOKER_BASE_URL = emulator.base_url
    settings.LOOKER_CLIENT_ID = EMULATOR_CLIENT_ID
    settings.LOOKER_CLIENT_SECRET = EMULATOR_CLIENT_SECRET
    settings.LOOKER_TIMEOUT = 30.0
    settings.LOOKER_BACKOFF_BASE = 0.05  # the real 0.5 s would only stretch the storm slice, not change its counts


# --------------------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (emulator and fixture included), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def counters_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = set(before) | set(after)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    return {k: v for k, v in sorted(delta.items()) if v}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 600 else f"{seconds:.0f} s ({seconds / 60:.1f} min)"


@dataclasses.dataclass
class Phase:
    """One measured phase: wall time and requests as the emulator counted them."""

    name: str
    wall_s: float = 0.0
    requests: int = 0
    client_requests: int = 0
    by_route: dict[str, int] = dataclasses.field(default_factory=dict)
    extrapolated: bool = False
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)


def run_scan(emulator: Any) -> tuple[Phase, Phase, Any, Any]:
    """The project's scan and plan; returns the two phases, the inventory stats and the plan."""
    from django.utils import timezone

    from cleanup.policy import cleanup_plan_build
    from cleanup.services import inventory_refresh
    from connectors.looker import looker_client

    now = timezone.now()
    looker = looker_client()
    before = emulator.counters()
    t0 = time.perf_counter()
    stats = inventory_refresh(looker=looker, now=now)
    t1 = time.perf_counter()
    after = emulator.counters()
    plan = cleanup_plan_build(inactive_days=INACTIVE_DAYS, now=now)
    t2 = time.perf_counter()
    looker.close()
    delta = counters_delta(before, after)
    scan = Phase("scan", wall_s=t1 - t0, requests=delta.get("total", 0), client_requests=looker.request_count,
                 by_route={k: v for k, v in delta.items() if k != "total"})
    plan_phase = Phase("plan", wall_s=t2 - t1, requests=counters_delta(after, emulator.counters()).get("total", 0))
    return scan, plan_phase, stats, plan


def _parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def run_naive(emulator: Any, *, page_size: int, limit: int | None) -> Phase:
    """The baseline: list the dashboards for their ids, then fetch each one's details, one by one."""
    from django.utils import timezone

    from connectors.looker import looker_client

    cutoff = timezone.now() - timedelta(days=INACTIVE_DAYS)
    looker = looker_client()
    before = emulator.counters()
    t0 = time.perf_counter()
    ids = [d.id for d in looker.dashboards_search(deleted=False, page_size=page_size, include_lookml=False)]
    t_list = time.perf_counter() - t0
    list_requests = counters_delta(before, emulator.counters()).get("total", 0)
    todo = ids if limit is None else ids[:limit]
    inactive = 0
    t1 = time.perf_counter()
    for index, dashboard_id in enumerate(todo, start=1):
        details = json.loads(looker.dashboard_get_json(dashboard_id=dashboard_id))
        seen = [t for t in (_parse_ts(details.get("last_viewed_at")), _parse_ts(details.get("last_accessed_at"))) if t]
        last = max(seen) if seen else _parse_ts(details.get("created_at"))
        if last is not None and last < cutoff and not details.get("favorite_count"):
            inactive += 1
        if index % PROGRESS_EVERY == 0:
            spent = time.perf_counter() - t1
            eta = spent / index * (len(todo) - index)
            say(f"  naive: {index:>6} of {len(todo)} dashboards fetched, {spent:.1f} s so far, ~{eta:.0f} s to go")
    t_fetch = time.perf_counter() - t1
    delta = counters_delta(before, emulator.counters())
    looker.close()
    phase = Phase("naive", wall_s=t_list + t_fetch, requests=delta.get("total", 0),
                  client_requests=looker.request_count, by_route={k: v for k, v in delta.items() if k != "total"},
                  notes={"dashboards": len(ids), "fetched": len(todo), "inactive_found": inactive,
                         "list_s": t_list, "list_requests": list_requests})
    if len(todo) < len(ids):
        # Linear in the number of dashboards: one GET each, at the per-GET cost just measured.
        scale = len(ids) / len(todo)
        fetch_requests = phase.requests - list_requests
        phase.wall_s = t_list + t_fetch * scale
        phase.requests = list_requests + round(fetch_requests * scale)
        phase.client_requests = round(list_requests + (looker.request_count - list_requests) * scale)
        phase.notes["inactive_found"] = round(inactive * scale)
        phase.extrapolated = True
    return phase


def run_deletions(emulator: Any, *, plan: Any, entries: list[Any], label: str, concurrency: int,
                  storm: Any = None) -> Phase:
    """Commit one slice of the plan as a job run's actions, then back up and soft-delete it."""
    from cleanup.models import CleanupAction
    from cleanup.services import cleanup_actions_commit, cleanup_actions_execute
    from connectors.looker import looker_client
    from orchestration.services import job_run_create

    job_run = job_run_create(
        job="looker_cleanup", params={"inactive_days": INACTIVE_DAYS, "max_deletions": max(len(entries), 1)}
    )
    actions = cleanup_actions_commit(
        job_run=job_run, plan=dataclasses.replace(plan, deletions=entries, lookml_reports=[])
    )
    looker = looker_client()
    rule = emulator.faults.add(storm) if storm is not None else None
    before = emulator.counters()
    t0 = time.perf_counter()
    try:
        outcome: Counter = cleanup_actions_execute(
            looker=looker, actions=actions, concurrency=concurrency, cutoff=plan.cutoff
        )
    finally:
        emulator.faults.clear()
    wall = time.perf_counter() - t0
    delta = counters_delta(before, emulator.counters())
    looker.close()
    failed = CleanupAction.objects.filter(job_run=job_run, status=CleanupAction.Status.FAILED)
    phase = Phase(label, wall_s=wall, requests=delta.get("total", 0), client_requests=looker.request_count,
                  by_route={k: v for k, v in delta.items() if k != "total"})
    phase.notes.update(
        planned=len(actions),
        deleted=outcome["deleted"],
        failed=outcome["failed_backup"] + outcome["failed_soft_delete"],
        outcome=dict(outcome),
        concurrency=concurrency,
        logins=delta.get(LOGIN_KEY, 0),
        answered_429=rule.fired if rule is not None else 0,
        first_error=next(iter(failed.order_by("pk").values_list("error", flat=True)), ""),
    )
    return phase


# --------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------


def verdict(ok: bool, text: str, fails: list[str]) -> str:
    if not ok:
        fails.append(text)
    return f"{'PASS' if ok else 'FAIL'}  {text}"


def print_report(args: argparse.Namespace, scan: Phase, plan_phase: Phase, naive: Phase, stats: Any, plan: Any,
                 deletions: list[Phase], rss: dict[str, float], slice_note: str) -> list[str]:
    from django.conf import settings

    fails: list[str] = []
    n = args.dashboards
    budget = math.ceil(n / args.page_size) + SCAN_SLACK
    project_wall = scan.wall_s + plan_phase.wall_s
    project_requests = scan.requests + plan_phase.requests
    speedup = naive.wall_s / project_wall if project_wall else float("inf")
    request_ratio = naive.requests / project_requests if project_requests else float("inf")
    ex = " (extrapolated)" if naive.extrapolated else ""

    rows: list[tuple[str, str]] = [
        ("setup", f"{n} dashboards (+ LookML), {args.latency_ms:g} ms latency per request, page size {args.page_size}"),
        ("inventory", f"{stats.active} active, {stats.trashed} in trash, {stats.owners_unknown} without a known owner"),
        ("plan", f"{len(plan.deletions)} to soft-delete, {len(plan.lookml_reports)} LookML to report, "
                 f"kept: {sum(plan.kept.values())}"),
        ("", ""),
        ("scan requests", f"{scan.requests} (client counted {scan.client_requests}, login included)"),
        ("scan budget", f"ceil({n}/{args.page_size}) + {SCAN_SLACK} = {budget}"),
        ("scan by route", ", ".join(f"{k.replace('/api/4.0', '')} {v}" for k, v in scan.by_route.items())),
        ("scan wall time", fmt_s(scan.wall_s)),
        ("plan wall time", f"{fmt_s(plan_phase.wall_s)} ({plan_phase.requests} requests)"),
        ("scan + plan", f"{fmt_s(project_wall)}, {project_requests} requests"),
        ("peak RSS", f"{rss['setup']:.0f} MB after setup (fixture + emulator), {rss['scan']:.0f} MB after scan + plan,"
                     f" {rss['end']:.0f} MB at the end (whole process)"),
        ("", ""),
        ("naive dashboards", f"{naive.notes['dashboards']} listed (active, user-defined), "
                             f"{naive.notes['fetched']} fetched one by one"
                             + (" (--naive-limit)" if naive.extrapolated else "")),
        ("naive requests", f"{naive.requests}{ex} (client counted {naive.client_requests}; list: "
                           f"{naive.notes['list_requests']} with the login, then one GET each)"),
        ("naive wall time", f"{fmt_s(naive.wall_s)}{ex} (list: {fmt_s(naive.notes['list_s'])})"),
        ("naive inactive", f"{naive.notes['inactive_found']}{ex} by last view/access (no schedule/folder/pin rules)"),
        ("", ""),
        ("requests ratio", f"{request_ratio:.1f}x fewer requests for the project{ex}"),
        ("wall time ratio", f"{speedup:.1f}x faster for the project (naive / scan+plan){ex}"),
    ]
    if deletions:
        rows.append(("", ""))
        if slice_note:
            rows.append(("deletion slices", slice_note))
        for phase in deletions:
            deleted, planned = phase.notes["deleted"], phase.notes["planned"]
            api = phase.requests - phase.notes["logins"]
            per = api / planned if planned else 0.0
            rate = planned / phase.wall_s if phase.wall_s else 0.0
            rows.append((
                f"delete {phase.name}",
                f"{deleted}/{planned} deleted, {phase.notes['failed']} failed, concurrency "
                f"{phase.notes['concurrency']}: {fmt_s(phase.wall_s)} ({rate:.1f}/s), {phase.requests} requests "
                f"({per:.2f} per dashboard without the login)",
            ))
        seq, conc = deletions[0], deletions[1] if len(deletions) > 1 else None
        if conc is not None and conc.wall_s:
            rows.append(("delete speed-up", f"{seq.wall_s / conc.wall_s:.1f}x with concurrency "
                                            f"{conc.notes['concurrency']} vs 1"))
        storm = deletions[2] if len(deletions) > 2 else None
        if storm is not None:
            expected = storm.notes["planned"] * 3 + storm.notes["logins"]
            extra = storm.requests - expected
            patches = storm.by_route.get(PATCH_KEY, 0)
            rows.append(("429 storm", f"{storm.notes['answered_429']} x 429 answered, {patches} PATCHes for "
                                      f"{storm.notes['planned']} dashboards, {extra:+d} requests vs 3 per dashboard"))
            requeued = storm.notes["outcome"].get("rate_limited_requeues", 0)
            rows.append(("429 storm backoff", f"{requeued} steps went back in the queue behind a "
                                              "pool-wide pause (Retry-After or exponential backoff); each call "
                                              f"also retries on its own (LOOKER_MAX_ATTEMPTS="
                                              f"{settings.LOOKER_MAX_ATTEMPTS})"))
            if storm.notes["first_error"]:
                rows.append(("429 storm error", f"first failure recorded: {storm.notes['first_error'][:150]}"))
            if conc is not None and conc.wall_s:
                rows.append(("429 storm cost", f"{storm.wall_s - conc.wall_s:+.2f} s vs the same slice size "
                                               f"without the storm"))

    width = max(len(label) for label, _ in rows)
    print()
    print("=" * 100)
    print("Looker cleanup benchmark: results")
    print("=" * 100)
    for label, value in rows:
        print(f"{label:<{width}}  {value}" if label or value else "")
    print("-" * 100)
    print(verdict(scan.requests <= budget, f"scan requests {scan.requests} <= budget {budget}", fails))
    print(verdict(speedup >= TARGET_SPEEDUP,
                  f"scan + plan {speedup:.1f}x faster than the naive flow (target >= {TARGET_SPEEDUP:g}x){ex}", fails))
    if deletions:
        seq = deletions[0]
        per_ok = all(
            p.notes["planned"] == 0 or (p.requests - p.notes["logins"]) / p.notes["planned"] <= 3.0 + 1e-9
            for p in deletions[:2]
        )
        print(verdict(per_ok, "deletions cost at most 3 requests per dashboard (dashboard GET, LookML GET, PATCH)",
                      fails))
        if len(deletions) > 1:
            conc = deletions[1]
            print(verdict(conc.wall_s < seq.wall_s,
                          f"concurrency {conc.notes['concurrency']} deletes faster than concurrency 1 "
                          f"({seq.wall_s / conc.wall_s:.1f}x)", fails))
        if len(deletions) > 2:
            storm = deletions[2]
            done = storm.notes["deleted"] == storm.notes["planned"] and storm.notes["failed"] == 0
            backed_off = storm.notes["answered_429"] > 0
            print(verdict(done and backed_off,
                          f"429 storm: {storm.notes['deleted']}/{storm.notes['planned']} deleted after "
                          f"{storm.notes['answered_429']} x 429 (retried with backoff)", fails))
    print("=" * 100, flush=True)
    return fails


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="looker-bench-") as tmp:
        var_dir = Path(tmp) / "var"
        django_setup(var_dir, page_size=args.page_size, verbose=args.verbose)

        from sandbox.common import FaultRule
        from sandbox.looker.fixtures import generate_fixture
        from sandbox.looker.testing import running_looker_emulator

        say(f"generating {args.dashboards} dashboards ...")
        fixture = generate_fixture(args.dashboards, seed=args.seed)
        with running_looker_emulator(fixture=fixture, latency_ms=0) as emulator:
            del fixture
            point_settings_at(emulator)
            emulator.latency_ms = args.latency_ms
            rss = {"setup": peak_rss_mb()}

            say("project scan + plan ...")
            scan, plan_phase, stats, plan = run_scan(emulator)
            rss["scan"] = peak_rss_mb()
            say(f"  {scan.requests} requests, {fmt_s(scan.wall_s + plan_phase.wall_s)}")

            which = "all" if args.naive_limit is None else f"the first {args.naive_limit} (then extrapolated)"
            say(f"naive flow: one GET per dashboard, {which} ...")
            naive = run_naive(emulator, page_size=args.page_size, limit=args.naive_limit)
            say(f"  {naive.requests} requests, {fmt_s(naive.wall_s)}{' (extrapolated)' if naive.extrapolated else ''}")

            size = args.delete
            slice_note = ""
            if size and len(plan.deletions) < 3 * size:
                size = len(plan.deletions) // 3
                slice_note = f"{size} per slice: the plan has only {len(plan.deletions)} (asked for {args.delete})"
            deletions: list[Phase] = []
            if size:
                slices = [plan.deletions[i * size:(i + 1) * size] for i in range(3)]
                storm = FaultRule(method="PATCH", path_pattern="/api/4.0/dashboards/*", status=429, retry_after=0,
                                  after=args.storm_after, times=args.storm_429)
                runs = [
                    ("sequential", 1, None),
                    ("concurrent", args.concurrency, None),
                    ("429 storm", args.concurrency, storm),
                ]
                for (label, concurrency, fault), entries in zip(runs, slices, strict=True):
                    say(f"deletions, {label}: {len(entries)} dashboards, concurrency {concurrency} ...")
                    phase = run_deletions(emulator, plan=plan, entries=entries, label=label,
                                          concurrency=concurrency, storm=fault)
                    say(f"  {phase.notes['deleted']} deleted, {phase.requests} requests, {fmt_s(phase.wall_s)}")
                    deletions.append(phase)
            rss["end"] = peak_rss_mb()

        fails = print_report(args, scan, plan_phase, naive, stats, plan, deletions, rss, slice_note)
    for text in fails:
        say(f"!!! FAIL: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the Looker cleanup scan at scale (10k and 100k dashboards in one run), a naive per-dashboard flow,
and the deletion phase.

Run from the project root::

    .venv/bin/python bench/looker_cleanup_bench.py                      # 10,000 and 100,000 dashboards: ~10 min
    .venv/bin/python bench/looker_cleanup_bench.py --sizes 1000 10000 50000 100000 --naive-limit 1000
    .venv/bin/python bench/looker_cleanup_bench.py --sizes 500 2000 --delete 50      # quick look

Each size runs against its own Looker emulator **process** (``python -m sandbox.looker --generate N``) answering
every API request after ``--latency-ms`` milliseconds, like a remote Looker; the project's side runs in its own
child process (a throwaway SQLite database and backup store in a temporary directory; ``var/`` is not touched),
so the peak memory printed is the app's alone: the child's RSS high-water mark (``ru_maxrss``), Django, the SDK
and every import included. The emulator's own high-water mark (``VmHWM``) is printed beside it. Request counts
come from the emulator's counters (logins included), cross-checked with the client's ``request_count``.

What is measured, per size:

1. **First scan + plan** on an empty mirror: ``cleanup.services.inventory_refresh`` (paged dashboard searches,
   LookML, owners, schedules, the mirror upsert) then ``cleanup.policy.cleanup_plan_build(inactive_days=90)``.
   Target: at most ``ceil(N / page_size) + 10`` requests. The time of each search page is recorded: the first
   and the last ten pages should cost the same (the emulator's search is indexed: no growth with the offset).
2. **Rescan**: the same again on the full mirror (nothing changed: nothing is written).

Across sizes: scan + plan time should grow linearly (10x the dashboards, at most 11x the time) and the peak
memory at the largest size stay under 600 MB. Then, at the smallest size only:

3. **Naive flow (the baseline)**: list the dashboards (paged, it needs their ids), then ``GET /dashboards/{id}``
   for each one, sequentially. ``--naive-limit K`` fetches only K and extrapolates linearly (marked
   ``(extrapolated)``). Target: the project's scan + plan is at least 20x faster.
4. **Deletions** (``cleanup_actions_commit`` + ``cleanup_actions_execute``: backup, verify, soft-delete) on three
   slices of ``--delete`` planned dashboards: concurrency 1, ``--concurrency``, and ``--concurrency`` under a 429
   storm. Expected: 3 requests per dashboard, a speed-up close to the concurrency, every deletion completed.

Anchors are the figures issue 15 measured before this work (same machine, same benchmark, emulator in-process:
its memory was counted with the app's). Lines starting with ``PASS``/``FAIL`` compare with the targets; a FAIL is
repeated on stderr. The exit status is 0 whatever the figures (a benchmark, not a test); only a crash exits non-zero.
The machine is shared: timings are noisy, ratios are taken within the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INACTIVE_DAYS = 90
SCAN_SLACK = 10  # requests allowed on top of one per page of dashboards
TARGET_SPEEDUP = 20.0
TARGET_GROWTH = 1.1  # time ratio per dashboards ratio: 10x the dashboards, at most 11x the time
TARGET_PEAK_MB = 600.0
PROGRESS_EVERY = 1000
LOGIN_KEY = "POST /api/4.0/login"
PATCH_KEY = "PATCH /api/4.0/dashboards/<dashboard_id>"
SEARCH_PATH = "/dashboards/search"
# Issue 15's measurements before this work: size -> (requests, scan + plan seconds, peak MB of the whole process,
# the in-process emulator and its fixture included).
ANCHORS: dict[int, tuple[int, float, float | None]] = {1_000: (8, 0.52, None), 10_000: (27, 3.7, 430.0),
                                                       50_000: (111, 28.2, 1400.0)}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="dashboards per run")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency added to every request")
    parser.add_argument("--page-size", type=int, default=500, help="CLEANUP_PAGE_SIZE (scan and naive list)")
    parser.add_argument("--delete", type=int, default=200, help="dashboards per deletion slice (0: skip)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrency of the concurrent deletion slices")
    parser.add_argument(
        "--naive-limit", type=int, default=1000, help="fetch only K dashboards in the naive flow and extrapolate "
        "(0: fetch them all, minutes at 10k; -1: skip the naive flow)"
    )  # fmt: skip
    parser.add_argument(
        "--baseline-size", type=int, default=10_000,
        help="the size at which the naive flow and the deletions run (the smallest size if not in --sizes)",
    )  # fmt: skip
    parser.add_argument("--storm-429", type=int, default=30, help="consecutive 429 replies in the storm slice")
    parser.add_argument("--storm-after", type=int, default=20, help="PATCHes let through before the storm starts")
    parser.add_argument("--seed", type=int, default=7, help="fixture seed")
    parser.add_argument("--verbose", action="store_true", help="keep the connector's retry warnings on stderr")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: the child process's JSON instructions
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.sizes) or args.page_size < 1 or args.delete < 0 or args.concurrency < 1:
        parser.error("--sizes, --page-size and --concurrency must be >= 1, --delete >= 0")
    args.sizes = sorted(set(args.sizes))
    if args.baseline_size not in args.sizes:
        args.baseline_size = args.sizes[0]
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


def point_settings_at(base_url: str) -> None:
    from django.conf import settings

    from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET

    settings.LOOKER_BASE_URL = base_url
    settings.LOOKER_CLIENT_ID = EMULATOR_CLIENT_ID
    settings.LOOKER_CLIENT_SECRET = EMULATOR_CLIENT_SECRET
    settings.LOOKER_TIMEOUT = 60.0
    settings.LOOKER_BACKOFF_BASE = 0.05  # the real 0.5 s would only stretch the storm slice, not change its counts


# --------------------------------------------------------------------------------------------------------------
# The emulator process
# --------------------------------------------------------------------------------------------------------------


class RemoteEmulator:
    """A Looker emulator process, driven through its ``/__emulator/`` control endpoints."""

    def __init__(self, *, dashboards: int, seed: int, latency_ms: float) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        command = [sys.executable, "-m", "sandbox.looker", "--port", "0", "--generate", str(dashboards),
                   "--seed", str(seed), "--latency-ms", str(latency_ms), "--log-level", "WARNING"]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.stop()
            raise RuntimeError(f"the Looker emulator did not start (said {self.base_url!r})")

    def _control(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        url = f"{self.base_url}/__emulator/{path}"
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - loopback emulator
            return json.loads(reply.read().decode())

    def counters(self) -> dict[str, int]:
        return self._control("counters")

    def add_fault(self, rule: dict[str, Any]) -> None:
        self._control("faults", method="POST", body=rule)

    def faults(self) -> list[dict[str, Any]]:
        return self._control("faults")

    def clear_faults(self) -> None:
        self._control("faults", method="DELETE")

    def peak_rss_mb(self) -> float:
        """The emulator process's RSS high-water mark (``VmHWM``), in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --------------------------------------------------------------------------------------------------------------
# Measuring (in the worker process)
# --------------------------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def counters_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = set(before) | set(after)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    return {k: v for k, v in sorted(delta.items()) if v}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 600 else f"{seconds:.0f} s ({seconds / 60:.1f} min)"


PAGE_TIMES: list[tuple[str, int, float]] = []


def time_search_pages() -> None:
    """Record how long each list request takes (path, offset, seconds), network latency included."""
    from connectors.looker import LookerClient

    original = LookerClient._get_list

    def timed(self: Any, action: str, path: str, params: dict[str, str]) -> Any:
        started = time.perf_counter()
        try:
            return original(self, action, path, params)
        finally:
            PAGE_TIMES.append((path, int(params.get("offset", 0)), time.perf_counter() - started))

    LookerClient._get_list = timed  # type: ignore[method-assign]


def run_scan(emulator: RemoteEmulator, label: str) -> dict[str, Any]:
    """The project's scan and plan; the figures as a dict."""
    from django.db import connection
    from django.utils import timezone

    from cleanup.policy import cleanup_plan_build
    from cleanup.services import inventory_refresh
    from connectors.looker import looker_client

    now = timezone.now()
    looker = looker_client()
    PAGE_TIMES.clear()
    statements = Counter()

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements["executemany" if many else "execute"] += 1
        if many and sql.lstrip().upper().startswith("INSERT"):
            statements["rows upserted"] += len(params)
        return execute(sql, params, many, context)

    before = emulator.counters()
    t0 = time.perf_counter()
    with connection.execute_wrapper(count):
        stats = inventory_refresh(looker=looker, now=now)
    t1 = time.perf_counter()
    after = emulator.counters()
    plan = cleanup_plan_build(inactive_days=INACTIVE_DAYS, now=now)
    t2 = time.perf_counter()
    looker.close()
    delta = counters_delta(before, after)
    search = [seconds for path, offset, seconds in PAGE_TIMES if path == SEARCH_PATH]
    say(f"  {label}: {delta.get('total', 0)} requests, scan {t1 - t0:.2f} s, plan {t2 - t1:.2f} s, "
        f"peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip
    return {
        "scan_s": t1 - t0,
        "plan_s": t2 - t1,
        "requests": delta.get("total", 0),
        "client_requests": looker.request_count,
        "by_route": {k: v for k, v in delta.items() if k != "total"},
        "plan_requests": counters_delta(after, emulator.counters()).get("total", 0),
        "stats": dataclasses.asdict(stats),
        "planned": len(plan.deletions),
        "lookml": len(plan.lookml_reports),
        "kept": sum(plan.kept.values()),
        "search_pages": len(search),
        "first_pages_ms": 1000 * statistics.median(search[:10]) if search else 0.0,
        "last_pages_ms": 1000 * statistics.median(search[-10:]) if search else 0.0,
        "peak_rss_mb": peak_rss_mb(),
        "statements": dict(statements),
    }


def _parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def run_naive(emulator: RemoteEmulator, *, page_size: int, limit: int | None) -> dict[str, Any]:
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
    requests = counters_delta(before, emulator.counters()).get("total", 0)
    client_requests = looker.request_count
    looker.close()
    result = {"wall_s": t_list + t_fetch, "requests": requests, "client_requests": client_requests,
              "dashboards": len(ids), "fetched": len(todo), "inactive_found": inactive, "list_s": t_list,
              "list_requests": list_requests, "extrapolated": False}  # fmt: skip
    if len(todo) < len(ids):
        # Linear in the number of dashboards: one GET each, at the per-GET cost just measured.
        scale = len(ids) / len(todo)
        result.update(
            wall_s=t_list + t_fetch * scale,
            requests=list_requests + round((requests - list_requests) * scale),
            client_requests=round(list_requests + (client_requests - list_requests) * scale),
            inactive_found=round(inactive * scale),
            extrapolated=True,
        )
    return result


def run_deletions(emulator: RemoteEmulator, *, plan: Any, entries: list[Any], label: str, concurrency: int,
                  storm: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
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
    if storm is not None:
        emulator.add_fault(storm)
    before = emulator.counters()
    t0 = time.perf_counter()
    try:
        outcome: Counter = cleanup_actions_execute(
            looker=looker, actions=actions, concurrency=concurrency, cutoff=plan.cutoff
        )
    finally:
        fired = sum(rule.get("fired", 0) for rule in emulator.faults())
        emulator.clear_faults()
    wall = time.perf_counter() - t0
    delta = counters_delta(before, emulator.counters())
    looker.close()
    failed = CleanupAction.objects.filter(job_run=job_run, status=CleanupAction.Status.FAILED)
    return {
        "label": label,
        "wall_s": wall,
        "requests": delta.get("total", 0),
        "patches": delta.get(PATCH_KEY, 0),
        "planned": len(actions),
        "deleted": outcome["deleted"],
        "failed": outcome["failed_backup"] + outcome["failed_soft_delete"],
        "requeued": outcome.get("rate_limited_requeues", 0),
        "concurrency": concurrency,
        "logins": delta.get(LOGIN_KEY, 0),
        "answered_429": fired,
        "first_error": next(iter(failed.order_by("pk").values_list("error", flat=True)), ""),
    }


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The child process: scan + plan twice at one size, then (optionally) the naive flow and the deletions."""
    with tempfile.TemporaryDirectory(prefix="looker-bench-") as tmp:
        var_dir = Path(tmp) / "var"
        django_setup(var_dir, page_size=spec["page_size"], verbose=spec["verbose"])
        point_settings_at(spec["base_url"])
        time_search_pages()
        emulator = RemoteEmulator.__new__(RemoteEmulator)  # attach to the parent's emulator process
        emulator.base_url = spec["base_url"]
        result: dict[str, Any] = {"rss_ready_mb": peak_rss_mb()}
        result["first"] = run_scan(emulator, "first scan + plan")
        result["rescan"] = run_scan(emulator, "rescan + plan (mirror up to date)")
        if spec["naive_limit"] is not None:
            limit = spec["naive_limit"] or None
            say(f"  naive flow: one GET per dashboard, {'all' if limit is None else f'the first {limit}'} ...")
            result["naive"] = run_naive(emulator, page_size=spec["page_size"], limit=limit)
        size = spec["delete"]
        if size:
            from django.utils import timezone

            from cleanup.policy import cleanup_plan_build

            plan = cleanup_plan_build(inactive_days=INACTIVE_DAYS, now=timezone.now())
            if len(plan.deletions) < 3 * size:
                size = len(plan.deletions) // 3
                result["slice_note"] = f"{size} per slice: the plan has only {len(plan.deletions)}"
            storm = {"method": "PATCH", "path_pattern": "/api/4.0/dashboards/*", "status": 429, "retry_after": 0,
                     "after": spec["storm_after"], "times": spec["storm_429"]}  # fmt: skip
            runs = [("sequential", 1, None), ("concurrent", spec["concurrency"], None),
                    ("429 storm", spec["concurrency"], storm)]  # fmt: skip
            result["deletions"] = []
            for index, (label, concurrency, fault) in enumerate(runs):
                entries = plan.deletions[index * size : (index + 1) * size]
                if not entries:
                    break
                say(f"  deletions, {label}: {len(entries)} dashboards, concurrency {concurrency} ...")
                result["deletions"].append(run_deletions(emulator, plan=plan, entries=entries, label=label,
                                                         concurrency=concurrency, storm=fault))  # fmt: skip
        result["rss_end_mb"] = peak_rss_mb()
        return result


# --------------------------------------------------------------------------------------------------------------
# Report (in the parent process)
# --------------------------------------------------------------------------------------------------------------


def verdict(ok: bool, text: str, fails: list[str]) -> str:
    if not ok:
        fails.append(text)
    return f"{'PASS' if ok else 'FAIL'}  {text}"


def anchor_text(n: int, index: int, unit: str) -> str:
    anchor = ANCHORS.get(n)
    if anchor is None or anchor[index] is None:
        return ""
    value = anchor[index]
    return f"   (anchor {value:g}{unit})"


def print_report(args: argparse.Namespace, results: dict[int, dict[str, Any]]) -> list[str]:
    fails: list[str] = []
    rows: list[tuple[str, str]] = [
        ("setup", f"sizes {', '.join(f'{n:,}' for n in args.sizes)} dashboards (+ LookML), {args.latency_ms:g} ms "
                  f"latency per request, page size {args.page_size}; app and emulator in separate processes"),
    ]  # fmt: skip
    for n, result in results.items():
        first, rescan = result["first"], result["rescan"]
        budget = math.ceil(n / args.page_size) + SCAN_SLACK
        wall = first["scan_s"] + first["plan_s"]
        stats = first["stats"]
        floor = first["requests"] * args.latency_ms / 1000
        rows += [
            ("", ""),
            (f"== {n:,}", f"{stats['active']:,} active, {stats['trashed']:,} in trash, {stats['owners_unknown']:,} "
                          f"without a known owner; plan {first['planned']:,} to soft-delete, {first['kept']:,} kept"),
            ("scan requests", f"{first['requests']} (client counted {first['client_requests']}), budget "
                              f"ceil({n}/{args.page_size}) + {SCAN_SLACK} = {budget}"
                              + anchor_text(n, 0, " requests")),
            ("scan by route", ", ".join(f"{k.replace('/api/4.0', '')} {v}" for k, v in first["by_route"].items())),
            ("scan + plan", f"{fmt_s(wall)} (scan {fmt_s(first['scan_s'])}, plan {fmt_s(first['plan_s'])}; "
                            f"network floor {floor:.2f} s)" + anchor_text(n, 1, " s")),
            ("search pages", f"{first['search_pages']} pages: first ten {first['first_pages_ms']:.1f} ms, last ten "
                             f"{first['last_pages_ms']:.1f} ms each (median, {args.latency_ms:g} ms latency included)"),
            ("peak memory", f"app {first['peak_rss_mb']:.0f} MB (RSS high-water mark of the app process: "
                            f"{result['rss_ready_mb']:.0f} MB after imports and migrate); emulator process "
                            f"{result['emulator_mb']:.0f} MB" + anchor_text(n, 2, " MB for both, in one process")),
            ("mirror writes", f"{first['statements'].get('rows upserted', 0):,} rows upserted in "
                              f"{first['statements'].get('executemany', 0)} executemany calls, "
                              f"{first['statements'].get('execute', 0)} other statements (first scan; anchor: 1,064 "
                              f"SQLite batches at 50k)"),
            ("rescan + plan", f"{fmt_s(rescan['scan_s'] + rescan['plan_s'])}, {rescan['requests']} requests, "
                              f"{rescan['stats']['changed']} changed / {rescan['stats']['new']} new rows written, "
                              f"{rescan['statements'].get('execute', 0)} statements"),
        ]  # fmt: skip
    sizes = list(results)
    growth: list[tuple[int, int, float, float]] = []
    pairs = list(zip(sizes, sizes[1:], strict=False))
    pairs += [(a, b) for a in sizes for b in sizes if b == 10 * a and (a, b) not in pairs]  # the 10x
    for small, large in pairs:
        t_small = results[small]["first"]["scan_s"] + results[small]["first"]["plan_s"]
        t_large = results[large]["first"]["scan_s"] + results[large]["first"]["plan_s"]
        growth.append((small, large, large / small, t_large / t_small))
    if growth:
        rows.append(("", ""))
        for small, large, size_ratio, time_ratio in growth:
            target = f"target <= {size_ratio * TARGET_GROWTH:.0f}x" if large == 10 * small else "information"
            text = (f"{size_ratio:.0f}x the dashboards, {time_ratio:.2f}x the scan + plan time ({target}; anchors: "
                    f"1k->10k 7.1x for 10x, 10k->50k 7.6x for 5x)")
            rows.append((f"growth {small:,} -> {large:,}", text))

    smallest = results[args.baseline_size]
    naive, deletions = smallest.get("naive"), smallest.get("deletions") or []
    if naive is not None:
        first = smallest["first"]
        project_wall = first["scan_s"] + first["plan_s"]
        ex = " (extrapolated)" if naive["extrapolated"] else ""
        rows += [
            ("", ""),
            (f"naive at {args.baseline_size:,}",
             f"{naive['dashboards']:,} listed, {naive['fetched']:,} fetched one by one; {naive['requests']:,} "
             f"requests{ex}, {fmt_s(naive['wall_s'])}{ex}"),
            ("vs the project", f"{naive['requests'] / max(first['requests'], 1):.0f}x fewer requests, "
                               f"{naive['wall_s'] / project_wall:.1f}x faster (naive / scan + plan){ex}"),
        ]  # fmt: skip
    if deletions:
        rows.append(("", ""))
        if smallest.get("slice_note"):
            rows.append(("deletion slices", smallest["slice_note"]))
        for phase in deletions:
            api = phase["requests"] - phase["logins"]
            per = api / phase["planned"] if phase["planned"] else 0.0
            rate = phase["planned"] / phase["wall_s"] if phase["wall_s"] else 0.0
            rows.append((f"delete {phase['label']}",
                         f"{phase['deleted']}/{phase['planned']} deleted, {phase['failed']} failed, concurrency "
                         f"{phase['concurrency']}: {fmt_s(phase['wall_s'])} ({rate:.1f}/s), {phase['requests']} "
                         f"requests ({per:.2f} per dashboard without the login)"))  # fmt: skip
        if len(deletions) > 2:
            storm = deletions[2]
            extra = storm["requests"] - (storm["planned"] * 3 + storm["logins"])
            rows.append(("429 storm", f"{storm['answered_429']} x 429 answered, {storm['patches']} PATCHes for "
                                      f"{storm['planned']} dashboards, {extra:+d} requests vs 3 per dashboard; "
                                      f"{storm['requeued']} steps requeued behind a pool-wide pause"))  # fmt: skip

    width = max(len(label) for label, _ in rows)
    print()
    print("=" * 110)
    print("Looker cleanup benchmark: results")
    print("=" * 110)
    for label, value in rows:
        print(f"{label:<{width}}  {value}" if label or value else "")
    print("-" * 110)
    for n, result in results.items():
        first = result["first"]
        budget = math.ceil(n / args.page_size) + SCAN_SLACK
        print(verdict(first["requests"] <= budget, f"{n:,}: scan requests {first['requests']} <= budget {budget}",
                      fails))  # fmt: skip
        if first["search_pages"] >= 20:
            flat = first["last_pages_ms"] <= 1.5 * first["first_pages_ms"]
            print(verdict(flat, f"{n:,}: the last search pages cost what the first do ({first['last_pages_ms']:.1f} "
                                f"vs {first['first_pages_ms']:.1f} ms)", fails))  # fmt: skip
    for small, large, size_ratio, time_ratio in growth:
        if large != 10 * small:
            continue  # informational: the target is the 10x (noise decides a 2x pair's last 10%)
        print(verdict(time_ratio <= size_ratio * TARGET_GROWTH,
                      f"{large:,} vs {small:,}: {time_ratio:.2f}x the time for {size_ratio:.0f}x the dashboards "
                      f"(at most {size_ratio * TARGET_GROWTH:.1f}x)", fails))  # fmt: skip
    largest = results[sizes[-1]]["first"]
    print(verdict(largest["peak_rss_mb"] < TARGET_PEAK_MB,
                  f"{sizes[-1]:,}: app peak memory {largest['peak_rss_mb']:.0f} MB < {TARGET_PEAK_MB:.0f} MB", fails))
    if naive is not None:
        first = smallest["first"]
        speedup = naive["wall_s"] / (first["scan_s"] + first["plan_s"])
        print(verdict(speedup >= TARGET_SPEEDUP, f"scan + plan {speedup:.1f}x faster than the naive flow "
                                                 f"(target >= {TARGET_SPEEDUP:g}x)", fails))  # fmt: skip
    if deletions:
        per_ok = all(p["planned"] == 0 or (p["requests"] - p["logins"]) / p["planned"] <= 3.0 + 1e-9
                     for p in deletions[:2])  # fmt: skip
        print(verdict(per_ok, "deletions cost at most 3 requests per dashboard (dashboard GET, LookML GET, PATCH)",
                      fails))  # fmt: skip
        if len(deletions) > 1:
            seq, conc = deletions[0], deletions[1]
            print(verdict(conc["wall_s"] < seq["wall_s"], f"concurrency {conc['concurrency']} deletes faster than "
                                                          f"concurrency 1 ({seq['wall_s'] / conc['wall_s']:.1f}x)",
                          fails))  # fmt: skip
        if len(deletions) > 2:
            storm = deletions[2]
            done = storm["deleted"] == storm["planned"] and storm["failed"] == 0 and storm["answered_429"] > 0
            print(verdict(done, f"429 storm: {storm['deleted']}/{storm['planned']} deleted after "
                                f"{storm['answered_429']} x 429 (retried with backoff)", fails))  # fmt: skip
    print("=" * 110, flush=True)
    return fails


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = worker(json.loads(args.worker))
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    results: dict[int, dict[str, Any]] = {}
    for n in args.sizes:
        say(f"== {n:,} dashboards: generating them in the emulator process ...")
        emulator = RemoteEmulator(dashboards=n, seed=args.seed, latency_ms=args.latency_ms)
        try:
            spec = {
                "base_url": emulator.base_url,
                "page_size": args.page_size,
                "verbose": args.verbose,
                "naive_limit": None if n != args.baseline_size or args.naive_limit < 0 else args.naive_limit,
                "delete": args.delete if n == args.baseline_size else 0,
                "concurrency": args.concurrency,
                "storm_429": args.storm_429,
                "storm_after": args.storm_after,
            }
            child = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True, check=True)  # fmt: skip
            line = next(x for x in reversed(child.stdout.splitlines()) if x.startswith("RESULT "))
            results[n] = json.loads(line.removeprefix("RESULT "))
            results[n]["emulator_mb"] = emulator.peak_rss_mb()
        finally:
            emulator.stop()
    fails = print_report(args, results)
    for text in fails:
        say(f"!!! FAIL: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

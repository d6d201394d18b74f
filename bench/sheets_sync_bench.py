"""Benchmark: the Sheets sync at 1,000 targets inside the five-minute schedule and the quotas, against a naive sync
(read all, clear, write everything), in the same run.

Run from the project root::

    .venv/bin/python bench/sheets_sync_bench.py                      # 1,000 targets, 10 principals: ~8 minutes
    .venv/bin/python bench/sheets_sync_bench.py --targets 200 --rows 1000 --principals 1   # the issue's anchor shape
    .venv/bin/python bench/sheets_sync_bench.py --targets 40 --rows 100 --principals 4 --no-naive   # quick look

Everything runs in this one process: a throwaway SQLite database in a temporary directory (``DATAOPS_VAR_DIR``;
nothing under ``var/`` is touched), Parquet sources in that directory, and two in-process Sheets + Drive
emulators on loopback holding the same spreadsheets (``--targets`` tables of ``--rows`` x ``--cols`` plus a
header, ``--per-spreadsheet`` tabs per spreadsheet), one for the project and one for the naive flow. Each emulator
answers every request after ``--latency-ms``. gspread runs through the project's connector in both flows.
Request counts come from the emulators' counters.

The project's spreadsheets belong to ``--principals`` teams, each writing as its own service account (a distinct
emulator user). The project's emulator **enforces Google's quotas** once the set-up is done: 60 read and 60 write
requests per minute per user, 300 of each per project (a request over them is answered 429 and counted); the
project's client-side limiters (per principal, and the project's shared one) keep under them. ``--feed shared``
(default) reads one Drive changes feed for every principal (``SHEETS_SYNC_FEED_PRINCIPAL=default``: a service
account that sees every spreadsheet); ``--feed per-principal`` reads one per principal.

What is measured, in this order:

1. **Set-up** (not compared): the project's first cycle writes every table, quotas and limiters off.
2. **No-change cycle**: nothing changed. Project: ``run_job sheets_sync``. Naive: per target, read the source,
   read the sheet's values, clear them, write everything (3 requests per target).
3. **1% cycle**: 1% of all source cells change, in ``--changed-targets`` targets on different spreadsheets.
4. **No-change cycle after the 1% cycle**: the project's own writes are not taken for changes.
5. **1% spread over every target** (the issue's target): every source changes, no sheet did: the project diffs
   each against its kept copy and writes each spreadsheet once, in fair turns between principals.
6. **No-change cycle after the spread**, and one with a changes feed per principal (``--feed`` the other way).

Targets (issue 15): the spread cycle completes inside the five-minute schedule with no request over the quotas; a
changed source on an unchanged sheet costs one write (no read); a quiet cycle stays near one request; the
principals share the quota fairly. Issue 4's targets stay checked: a 1% cycle writes only the changed cells and
costs at least 20x fewer requests than the naive sync. Anchors are issue 15's measurements before this work.
Lines starting with ``PASS``/``FAIL`` compare with the targets; a FAIL is repeated on stderr. The exit status is 0
whatever the figures (a benchmark, not a test); only a crash exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 20.0
SCHEDULE_S = 300.0
USER_QUOTA, PROJECT_QUOTA = 60, 300
READ = "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet"
WRITE = "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate"
FEED = "GET /drive/v3/changes"
# Issue 15's measurements (200 targets of 1,000 x 10 in 100 spreadsheets, one principal, 20 ms per request).
ANCHOR_SPREAD = {"targets": 200, "requests": 301, "seconds": 70.8, "limiter_s": 48.4, "naive_s": 27.7}
ANCHOR_1000_LIMITER_S = 7.3 * 60  # "at 1,000 targets the same cycle needs at least 7.3 minutes of limiter wait"
ANCHOR_QUIET = {"requests": 1, "seconds": 0.16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=1000, help="sync targets (tables)")
    parser.add_argument("--rows", type=int, default=200, help="rows per table (plus a header row)")
    parser.add_argument("--cols", type=int, default=10, help="columns per table (the first is the key)")
    parser.add_argument("--per-spreadsheet", type=int, default=2, help="tables (tabs) per spreadsheet")
    parser.add_argument("--principals", type=int, default=10, help="teams, each its own service account")
    parser.add_argument("--feed", choices=("shared", "per-principal"), default="shared", help="changes feeds")
    parser.add_argument("--concurrency", type=int, default=8, help="SHEETS_SYNC_CONCURRENCY")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency added to every request")
    parser.add_argument("--changed-targets", type=int, default=5, help="targets that carry the 1%% change")
    parser.add_argument("--no-spread", action="store_true", help="skip the spread-out 1%% cycle")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive flow (minutes at 1,000 targets)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="keep the connector's warnings on stderr")
    args = parser.parse_args(argv)
    if args.targets < 1 or args.rows < 1 or args.cols < 2 or args.per_spreadsheet < 1 or args.principals < 1:
        parser.error("--targets, --rows, --per-spreadsheet, --principals must be >= 1 and --cols >= 2")
    if not 1 <= args.changed_targets <= args.targets:
        parser.error("--changed-targets must be between 1 and --targets")
    return args


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def django_setup(var_dir: Path, *, verbose: bool) -> None:
    """Configure Django on a throwaway SQLite database, then migrate."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "dataops_site.settings"
    os.environ["DATAOPS_VAR_DIR"] = str(var_dir)
    os.environ["BACKUP_STORAGE_URL"] = f"file://{var_dir / 'backups'}"
    os.environ["EMAIL_URL"] = "memorymail://"
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
    os.environ.pop("DATABASE_URL", None)  # never write benchmark rows into a real database
    os.environ.pop("CELERY_BROKER_URL", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import django
    from django.conf import settings

    django.setup()
    from django.core.management import call_command

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("migrate", verbosity=0, interactive=False)
    level = logging.WARNING if verbose else logging.ERROR
    for name in ("connectors.sheets", "sheetsync", "sandbox"):
        logging.getLogger(name).setLevel(level)


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------


def make_frame(index: int, *, rows: int, cols: int, rng: random.Random) -> Any:
    """One source table: an int key, then int, text and float columns in turn."""
    import polars as pl

    data: dict[str, list[Any]] = {"id": list(range(1, rows + 1))}
    for c in range(1, cols):
        kind = c % 3
        if kind == 1:
            data[f"c{c}"] = [rng.randrange(1_000_000) for _ in range(rows)]
        elif kind == 2:
            data[f"c{c}"] = [f"t{index}-{rng.randrange(10_000)}" for _ in range(rows)]
        else:
            data[f"c{c}"] = [round(rng.random() * 1000, 2) for _ in range(rows)]
    return pl.DataFrame(data)


def change_cells(frame: Any, count: int, rng: random.Random) -> tuple[Any, int]:
    """Change ``count`` distinct non-key cells of ``frame``; returns the new frame and the cells changed."""
    import polars as pl

    columns = frame.columns[1:]
    positions = rng.sample(range(frame.height * len(columns)), min(count, frame.height * len(columns)))
    data = {name: frame[name].to_list() for name in frame.columns}
    for position in positions:
        row, col = divmod(position, len(columns))
        name = columns[col]
        value = data[name][row]
        if isinstance(value, str):
            data[name][row] = value + "*"
        elif isinstance(value, float):
            data[name][row] = round(value + 0.5, 2)
        else:
            data[name][row] = value + 1
    return pl.DataFrame(data, schema=frame.schema), len(positions)


@dataclass
class Table:
    index: int
    spreadsheet_id: str
    tab: str
    path: Path
    frame: Any
    principal: str


# --------------------------------------------------------------------------------------------------------------
# The two flows
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Measure:
    requests: int
    seconds: float
    cells: int
    by_route: dict[str, int]
    limiter_wait_s: float = 0.0
    refused: int = 0
    writes_by_user: dict[str, int] = field(default_factory=dict)
    write_log: list[tuple[float, str]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)


LIMITER_WAITS: list[float] = []
WRITE_LOG: list[tuple[float, str]] = []


def instrument() -> None:
    """Record how long the client-side limiters hold requests back, and when each principal writes."""
    from connectors.sheets import SheetsClient
    from sheetsync.services import ChainedRateLimiter

    original_acquire = ChainedRateLimiter.acquire

    def acquire(self: Any, kind: str = "read") -> float:
        waited = original_acquire(self, kind)
        LIMITER_WAITS.append(waited)
        return waited

    ChainedRateLimiter.acquire = acquire  # type: ignore[method-assign]
    original_write = SheetsClient.values_batch_update

    def write(self: Any, **kwargs: Any) -> Any:
        WRITE_LOG.append((time.monotonic(), self._http.session.headers.get("Authorization", "")))
        return original_write(self, **kwargs)

    SheetsClient.values_batch_update = write  # type: ignore[method-assign]


def project_cycle(emulator: Any) -> Measure:
    """One ``sheets_sync`` run through the job framework, as ``run_job`` does it."""
    from orchestration.models import JobRun
    from orchestration.services import job_run_create, job_run_execute

    emulator.reset_counters()
    LIMITER_WAITS.clear()
    WRITE_LOG.clear()
    started = time.perf_counter()
    run = job_run_execute(job_run_id=job_run_create(job="sheets_sync", trigger=JobRun.Trigger.CLI).pk)
    seconds = time.perf_counter() - started
    if run.status != JobRun.Status.SUCCEEDED or run.counters.get("failed"):
        raise RuntimeError(f"the project's cycle failed: {run.error or run.summary}")
    counters = emulator.counters()
    users = emulator.user_counters()
    refused = sum(n for kinds in users.values() for kind, n in kinds.items() if kind.endswith("refused"))
    writes = {user: kinds.get("write", 0) - kinds.get("write refused", 0) for user, kinds in users.items()}
    return Measure(counters.get("total", 0), seconds, int(run.counters.get("cells_written", 0)), routes(counters),
                   limiter_wait_s=sum(LIMITER_WAITS), refused=refused, writes_by_user=writes,
                   write_log=list(WRITE_LOG), counters=dict(run.counters))  # fmt: skip


def naive_cycle(emulator: Any, tables: list[Table], client: Any) -> Measure:
    """For every target, every cycle: read the source, read all values, clear, write everything."""
    import polars as pl

    from connectors.sheets import column_letters, grid_to_a1
    from sheetsync.diff import to_cell

    emulator.reset_counters()
    cells = 0
    started = time.perf_counter()
    for table in tables:
        frame = pl.read_parquet(table.path)
        values = [list(frame.columns)] + [[to_cell(v) for v in row] for row in frame.iter_rows()]
        whole = f"{grid_to_a1(table.tab, 1, 1)}:{column_letters(len(frame.columns))}"
        client.values_get(spreadsheet_id=table.spreadsheet_id, range=whole, value_render_option="UNFORMATTED_VALUE")
        client.values_clear(spreadsheet_id=table.spreadsheet_id, range=whole)
        result = client.values_batch_update(
            spreadsheet_id=table.spreadsheet_id, data=[(grid_to_a1(table.tab, 1, 1), values)], value_input_option="RAW"
        )
        cells += result.updated_cells
    seconds = time.perf_counter() - started
    counters = emulator.counters()
    return Measure(counters.get("total", 0), seconds, cells, routes(counters))


def routes(counters: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in sorted(counters.items()) if k != "total"}


def route_text(measure: Measure) -> str:
    short = {
        "GET /drive/v3/changes": "changes feed",
        "GET /drive/v3/changes/startPageToken": "start token",
        "GET /drive/v3/files/<file_id>": "files.get",
        "GET /v4/spreadsheets/<spreadsheet_id>": "meta",
        "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet": "batchGet",
        "GET /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>": "values.get",
        "POST /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>:clear": "clear",
        "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate": "batchUpdate",
        "POST /v4/spreadsheets/<spreadsheet_id>:batchUpdate": "resize",
    }
    return ", ".join(f"{short.get(k, k)} {v}" for k, v in measure.by_route.items()) or "-"


def busiest_minute(log: list[tuple[float, str]], user: str | None = None) -> int:
    """The most writes in any 60 s window (of one user, or all)."""
    times = sorted(t for t, who in log if user is None or who == user)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 60:
            start += 1
        best = max(best, end - start + 1)
    return best


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="sheets-sync-bench-") as tmp:
        var_dir = Path(tmp)
        sources = var_dir / "sources"
        sources.mkdir()
        say(f"setting up Django in {var_dir} ...")
        django_setup(var_dir, verbose=args.verbose)
        return run(args, rng, sources)


def run(args: argparse.Namespace, rng: random.Random, sources: Path) -> int:  # noqa: C901 - a script's story
    from django.conf import settings

    from connectors.sheets import SheetsClient
    from sandbox.sheets.testing import running_sheets_emulator
    from sheetsync.diff import to_cell
    from sheetsync.models import SyncTarget

    spreadsheets = (args.targets + args.per_spreadsheet - 1) // args.per_spreadsheet
    principals = [f"team{i:02d}" for i in range(args.principals)] if args.principals > 1 else [""]
    say(f"generating {args.targets} sources of {args.rows} x {args.cols} ...")
    tables: list[Table] = []
    for index in range(args.targets):
        frame = make_frame(index, rows=args.rows, cols=args.cols, rng=rng)
        path = sources / f"t{index:04d}.parquet"
        frame.write_parquet(path)
        sheet_index = index // args.per_spreadsheet
        tables.append(Table(index, f"sheet-{sheet_index:04d}", f"T{index % args.per_spreadsheet}", path, frame,
                            principals[sheet_index % len(principals)]))  # fmt: skip

    settings.SHEETS_SYNC_FILE_ROOTS = [str(sources)]
    settings.SHEETS_EMULATOR_AUTOSTART = False
    settings.SHEETS_PRINCIPALS = {"": "", **{p: "" for p in principals if p}}
    settings.SHEETS_SYNC_FEED_PRINCIPAL = "" if args.feed == "shared" else None
    settings.SHEETS_SYNC_CONCURRENCY = args.concurrency
    with (
        running_sheets_emulator(latency_ms=args.latency_ms) as project_emulator,
        running_sheets_emulator(latency_ms=args.latency_ms) as naive_emulator,
    ):
        grid_rows = args.rows + 200
        by_spreadsheet: dict[str, list[Table]] = {}
        for table in tables:
            by_spreadsheet.setdefault(table.spreadsheet_id, []).append(table)
        for spreadsheet_id, owned in by_spreadsheet.items():
            project_emulator.store.create_spreadsheet(
                spreadsheet_id, {t.tab: [] for t in owned}, spreadsheet_id=spreadsheet_id, rows=grid_rows
            )
            if not args.no_naive:
                naive_emulator.store.create_spreadsheet(
                    spreadsheet_id,
                    {
                        t.tab: [list(t.frame.columns)] + [[to_cell(v) for v in r] for r in t.frame.iter_rows()]
                        for t in owned
                    },
                    spreadsheet_id=spreadsheet_id,
                    rows=grid_rows,
                )
        SyncTarget.objects.bulk_create([
            SyncTarget(name=f"t{table.index:04d}", spreadsheet_id=table.spreadsheet_id, range=f"{table.tab}!A1",
                       source_kind=SyncTarget.SourceKind.FILE, source_file=str(table.path), key_columns="id",
                       principal=table.principal)
            for table in tables
        ])  # fmt: skip
        settings.SHEETS_API_ENDPOINT = project_emulator.base_url
        naive = SheetsClient(endpoint=naive_emulator.base_url, credentials_file=None, rate_limit_per_minute=None)
        instrument()

        say(f"set-up: the project's first cycle writes {args.targets} tables in {spreadsheets} spreadsheets ...")
        settings.SHEETS_RATE_LIMIT_PER_MINUTE = 0
        settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = 0
        setup = project_cycle(project_emulator)
        settings.SHEETS_RATE_LIMIT_PER_MINUTE = USER_QUOTA
        settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = PROJECT_QUOTA
        project_emulator.set_quota(read_per_minute=USER_QUOTA, write_per_minute=USER_QUOTA,
                                   project_read_per_minute=PROJECT_QUOTA,
                                   project_write_per_minute=PROJECT_QUOTA)  # fmt: skip
        time.sleep(0.1)

        naive_m: dict[str, Measure] = {}
        say("no-change cycle: project ...")
        quiet = project_cycle(project_emulator)
        if not args.no_naive:
            say("no-change cycle: naive ...")
            naive_m["quiet"] = naive_cycle(naive_emulator, tables, naive)

        total_cells = args.targets * args.rows * args.cols
        wanted = total_cells // 100
        chosen = [tables[i * args.targets // args.changed_targets] for i in range(args.changed_targets)]
        changed_cells = 0
        for position, table in enumerate(chosen):
            share = wanted // len(chosen) + (1 if position < wanted % len(chosen) else 0)
            table.frame, n = change_cells(table.frame, share, rng)
            table.frame.write_parquet(table.path)
            changed_cells += n
        changed_spreadsheets = len({t.spreadsheet_id for t in chosen})
        say(f"1% cycle ({changed_cells} cells in {len(chosen)} sources): project ...")
        one = project_cycle(project_emulator)
        if not args.no_naive:
            say("1% cycle: naive ...")
            naive_m["one"] = naive_cycle(naive_emulator, tables, naive)
        say("no-change cycle after the 1% cycle: project ...")
        after = project_cycle(project_emulator)

        spread = after_spread = None
        spread_cells = 0
        if not args.no_spread:
            for table in tables:
                table.frame, n = change_cells(table.frame, args.rows * args.cols // 100, rng)
                table.frame.write_parquet(table.path)
                spread_cells += n
            say(f"1% spread over all {args.targets} sources ({spread_cells} cells): project ...")
            spread = project_cycle(project_emulator)
            if not args.no_naive:
                say("1% spread: naive ...")
                naive_m["spread"] = naive_cycle(naive_emulator, tables, naive)
            say("no-change cycle after the spread: project ...")
            after_spread = project_cycle(project_emulator)
        other_feed = None
        if len(principals) > 1:
            settings.SHEETS_SYNC_FEED_PRINCIPAL = None if args.feed == "shared" else ""
            project_cycle(project_emulator)  # the other feeds' first cycle starts them
            say("no-change cycle with the other feed setting: project ...")
            other_feed = project_cycle(project_emulator)
        naive.close()

    print_report(args, spreadsheets, principals, setup, quiet, one, after, spread, after_spread, other_feed, naive_m,
                 changed_cells, changed_spreadsheets, len(chosen), spread_cells)  # fmt: skip
    return 0


def print_report(args: argparse.Namespace, spreadsheets: int, principals: list[str], setup: Measure, quiet: Measure,
                 one: Measure, after: Measure, spread: Measure | None, after_spread: Measure | None,
                 other_feed: Measure | None, naive_m: dict[str, Measure], changed_cells: int,
                 changed_spreadsheets: int, changed_targets: int, spread_cells: int) -> None:  # fmt: skip
    width = 110
    feeds = "one changes feed for all (SHEETS_SYNC_FEED_PRINCIPAL)" if args.feed == "shared" else "a feed per principal"
    lines = [
        f"setup              {args.targets} targets of {args.rows} rows x {args.cols} columns (+ header) in "
        f"{spreadsheets} spreadsheets ({args.per_spreadsheet} tabs each), {args.latency_ms:g} ms per request",
        f"principals         {len(principals)} (each its own emulator user: a per-user quota each), {feeds}, "
        f"SHEETS_SYNC_CONCURRENCY={args.concurrency}",
        f"quotas             enforced by the emulator after the set-up: {USER_QUOTA}/min per user, {PROJECT_QUOTA}/min "
        "per project (reads and writes each); the project's limiters on; the naive flow unthrottled",
        f"first sync         {setup.requests} requests ({route_text(setup)}), {setup.seconds:.2f} s, "
        f"{setup.cells:,} cells (set-up, quotas and limiters off)",
        "",
        f"{'cycle':<34}{'flow':<9}{'requests':>9}{'wall time':>11}{'cells written':>15}   requests by route",
    ]  # fmt: skip

    def row(label: str, flow: str, m: Measure) -> str:
        extra = ""
        if m.limiter_wait_s >= 0.05:
            extra += f"; limiters held requests {m.limiter_wait_s:.1f} s (summed over workers)"
        if m.refused:
            extra += f"; {m.refused} over quota (429)"
        return f"{label:<34}{flow:<9}{m.requests:>9}{m.seconds:>10.2f}s{m.cells:>15,}   {route_text(m)}{extra}"

    lines.append(row("no changes", "project", quiet))
    if "quiet" in naive_m:
        lines.append(row("", "naive", naive_m["quiet"]))
    lines.append(row(f"1% ({changed_cells:,} cells, {changed_targets} src)", "project", one))
    if "one" in naive_m:
        lines.append(row("", "naive", naive_m["one"]))
    lines.append(row("no changes, after the 1%", "project", after))
    if spread is not None:
        lines.append(row(f"1% spread ({spread_cells:,}, all src)", "project", spread))
        if "spread" in naive_m:
            lines.append(row("", "naive", naive_m["spread"]))
    if after_spread is not None:
        lines.append(row("no changes, after the spread", "project", after_spread))
    if other_feed is not None:
        other = "a feed per principal" if args.feed == "shared" else "one feed for all"
        lines.append(row(f"no changes, {other}", "project", other_feed))

    checks: list[tuple[bool, str]] = []
    lines += ["", "figures beside their anchors (issue 15, before this work)"]
    quiet_anchor = f"anchor {ANCHOR_QUIET['requests']} request, {ANCHOR_QUIET['seconds']} s at 200 targets"
    lines.append(f"  no-change cycle    {quiet.requests} request(s), {quiet.seconds:.2f} s at {args.targets} targets "
                 f"({quiet_anchor})")  # fmt: skip
    checks.append((quiet.requests <= (1 if args.feed == "shared" else len(principals)),
                   f"a quiet cycle costs {quiet.requests} request(s) at {args.targets} targets "
                   f"(at most 1 per changes feed)"))  # fmt: skip
    checks.append((after.requests <= quiet.requests,
                   f"the quiet cycle after the 1% cycle costs {after.requests}: our own writes are not changes"))
    checks.append((one.cells == changed_cells,
                   f"1% cycle writes only the changed cells: {one.cells:,} written, {changed_cells:,} changed"))
    budget_one = quiet.requests + changed_spreadsheets + 1
    checks.append((one.requests <= budget_one and one.by_route.get(READ, 0) == 0,
                   f"1% cycle: {one.requests} requests <= feed + one write per changed spreadsheet "
                   f"({changed_spreadsheets}) + one feed check = {budget_one}, no read"))  # fmt: skip
    if "quiet" in naive_m and "one" in naive_m:
        ratio_quiet = naive_m["quiet"].requests / max(quiet.requests, 1)
        ratio_one = naive_m["one"].requests / max(one.requests, 1)
        lines.append(f"  vs naive           no changes {ratio_quiet:.0f}x fewer requests, "
                     f"{naive_m['quiet'].seconds / max(quiet.seconds, 1e-9):.1f}x less time; 1% cycle {ratio_one:.0f}x "
                     f"fewer requests, {naive_m['one'].seconds / max(one.seconds, 1e-9):.1f}x less time")  # fmt: skip
        checks.append((ratio_quiet >= TARGET_RATIO, f"no-change cycle: {ratio_quiet:.0f}x fewer requests than naive"))
        checks.append((ratio_one >= TARGET_RATIO, f"1% cycle: {ratio_one:.0f}x fewer requests than naive"))
    if spread is not None:
        writes = spread.by_route.get(WRITE, 0)
        reads = spread.by_route.get(READ, 0)
        anchor = (f"anchor {ANCHOR_SPREAD['requests']} requests, {ANCHOR_SPREAD['seconds']} s "
                  f"({ANCHOR_SPREAD['limiter_s']} s on the limiter) at 200 targets; at 1,000 targets >= "
                  f"{ANCHOR_1000_LIMITER_S / 60:.1f} min of limiter wait alone")  # fmt: skip
        lines.append(f"  1% spread          {spread.requests} requests ({writes} writes, {reads} reads), "
                     f"{spread.seconds:.1f} s at {args.targets} targets ({anchor})")  # fmt: skip
        if args.targets == ANCHOR_SPREAD["targets"]:
            fewer = ANCHOR_SPREAD["requests"] / max(spread.requests, 1)
            lines.append(f"  ratio              {fewer:.1f}x fewer requests, "
                         f"{ANCHOR_SPREAD['seconds'] / spread.seconds:.1f}x less time than the anchor")  # fmt: skip
        else:
            under = ANCHOR_1000_LIMITER_S / spread.seconds
            lines.append(f"  ratio              {under:.1f}x under the anchor's limiter wait alone; "
                         f"{SCHEDULE_S / spread.seconds:.1f}x inside the five-minute schedule")  # fmt: skip
        if "spread" in naive_m:
            naive_s = naive_m["spread"].seconds
            speed = naive_s / spread.seconds
            pace = f"{speed:.2f}x faster than" if speed >= 1 else f"{1 / speed:.2f}x the time of"
            lines.append(f"  vs naive           {naive_m['spread'].requests / max(spread.requests, 1):.1f}x fewer "
                         f"requests, {pace} the naive unthrottled sync ({naive_s:.1f} s; anchor: the project took "
                         f"{ANCHOR_SPREAD['seconds'] / ANCHOR_SPREAD['naive_s']:.1f}x the naive time)")  # fmt: skip
        users = {u: n for u, n in spread.writes_by_user.items() if n}
        finish = {}
        start = min((t for t, _ in spread.write_log), default=0.0)
        for t, who in spread.write_log:
            user = who.rsplit(" ", 1)[-1]
            finish[user] = max(finish.get(user, 0.0), t - start)
        if users:
            one_user = max(busiest_minute(spread.write_log, w) for w in {w for _, w in spread.write_log})
            lines.append(f"  principals         writes {min(users.values())}-{max(users.values())} each; the last "
                         f"write of each at {min(finish.values()):.1f}-{max(finish.values()):.1f} s; busiest minute "
                         f"{busiest_minute(spread.write_log)} writes (project), {one_user} (a principal)")  # fmt: skip
        checks.append((spread.seconds <= SCHEDULE_S,
                       f"1% spread at {args.targets} targets: {spread.seconds:.1f} s inside the {SCHEDULE_S:.0f} s "
                       f"schedule"))  # fmt: skip
        checks.append((spread.refused == 0, f"1% spread: {spread.refused} requests over the quotas (429)"))
        checks.append((reads == 0 and writes <= spreadsheets,
                       f"1% spread: {reads} reads, {writes} writes for {spreadsheets} spreadsheets (one each, none "
                       f"read: every sheet was diffed against its kept copy)"))  # fmt: skip
        if len(users) > 1 and len(finish) > 1:
            counts = sorted(users.values())
            fair = counts[-1] - counts[0] <= max(1, round(0.1 * counts[-1]))
            checks.append((fair, f"1% spread: writes per principal {counts[0]}-{counts[-1]} (each its share)"))
    if after_spread is not None:
        checks.append((after_spread.requests <= quiet.requests,
                       f"the quiet cycle after the spread costs {after_spread.requests}"))
    lines.append("-" * width)
    for ok, text in checks:
        lines.append(f"{'PASS' if ok else 'FAIL'}  {text}")
        if not ok:
            say(f"FAIL  {text}")
    lines.append("=" * width)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

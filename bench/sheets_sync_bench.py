"""Benchmark: the Sheets sync against a naive sync (read all, clear, write everything), in the same run.

Run from the project root::

    .venv/bin/python bench/sheets_sync_bench.py [--targets 200] [--rows 1000] [--cols 10] [--per-spreadsheet 2]
                                               [--latency-ms 20] [--changed-targets 5] [--no-spread]

Everything runs in this one process: a throwaway SQLite database in a temporary directory (``DATAOPS_VAR_DIR``;
nothing under ``var/`` is touched), Parquet sources in that directory, and two in-process Sheets + Drive
emulators on loopback holding the same spreadsheets (``--targets`` tables of ``--rows`` x ``--cols`` plus a
header, ``--per-spreadsheet`` tabs per spreadsheet), one for the project and one for the naive flow, so neither
flow's writes disturb the other's change detection. Each emulator answers every request after ``--latency-ms``.
gspread runs through the project's connector in both flows. Request counts come from the emulators' counters.

What is measured, in this order:

1. **Set-up** (not compared): the project's first cycle writes every table (one start-token call, then a
   version, a read, a version check and one write per spreadsheet), with the client-side limiter off.
2. **No-change cycle**: nothing changed anywhere. Project: ``run_job sheets_sync`` (the changes feed, then every
   source is read and fingerprinted). Naive: for every target, read the source, read the sheet's values, clear
   them, write everything (3 requests per target).
3. **1% cycle**: 1% of all source cells change, concentrated in ``--changed-targets`` targets on different
   spreadsheets (the usual shape of a five-minute window: a few sources move). Same two flows.
4. **No-change cycle after the 1% cycle**: the project's own writes are in the changes feed; at the version it
   left, they are not changes.
5. **1% spread over every target** (informational, no target; ``--no-spread`` skips it): every spreadsheet
   changes, so the project needs its three requests on each of them.

The project's measured cycles run with the real client-side limiter (60 requests per minute per user, 300 per
project); it never binds for them. The naive flow runs with the limiter OFF, which favours it: at 60 per
minute its 600 requests per cycle would take ten minutes.

Targets (from issue 4): a no-change cycle costs at most 1 request plus 1 per changed source; a 1% cycle writes
only the changed cells with at most 3 requests per changed spreadsheet; both at least 20x fewer requests than
the naive sync. Lines starting with ``PASS``/``FAIL`` compare with them; a FAIL is repeated on stderr. The exit
status is 0 whatever the figures (a benchmark, not a test); only a crash exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 20.0
BATCH_GET = "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet"
MAX_REQUESTS_PER_CHANGED_SPREADSHEET = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200, help="sync targets (tables)")
    parser.add_argument("--rows", type=int, default=1000, help="rows per table (plus a header row)")
    parser.add_argument("--cols", type=int, default=10, help="columns per table (the first is the key)")
    parser.add_argument("--per-spreadsheet", type=int, default=2, help="tables (tabs) per spreadsheet")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency added to every request")
    parser.add_argument("--changed-targets", type=int, default=5, help="targets that carry the 1%% change")
    parser.add_argument("--no-spread", action="store_true", help="skip the informational spread-out 1%% cycle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="keep the connector's warnings on stderr")
    args = parser.parse_args(argv)
    if args.targets < 1 or args.rows < 1 or args.cols < 2 or args.per_spreadsheet < 1:
        parser.error("--targets, --rows, --per-spreadsheet must be >= 1 and --cols >= 2")
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


LIMITER_WAITS: list[float] = []


def count_limiter_waits() -> None:
    """Record how long the project's client-side limiter holds requests back (it returns the seconds waited)."""
    from sheetsync.services import ChainedRateLimiter

    original = ChainedRateLimiter.acquire

    def acquire(self: Any, kind: str = "read") -> float:
        waited = original(self, kind)
        LIMITER_WAITS.append(waited)
        return waited

    ChainedRateLimiter.acquire = acquire  # type: ignore[method-assign]


def project_cycle(emulator: Any) -> Measure:
    """One ``sheets_sync`` run through the job framework, as ``run_job`` does it."""
    from orchestration.models import JobRun
    from orchestration.services import job_run_create, job_run_execute

    emulator.reset_counters()
    LIMITER_WAITS.clear()
    started = time.perf_counter()
    run = job_run_execute(job_run_id=job_run_create(job="sheets_sync", trigger=JobRun.Trigger.CLI).pk)
    seconds = time.perf_counter() - started
    if run.status != JobRun.Status.SUCCEEDED or run.counters.get("failed"):
        raise RuntimeError(f"the project's cycle failed: {run.error or run.summary}")
    counters = emulator.counters()
    cells = int(run.counters.get("cells_written", 0))
    return Measure(counters.get("total", 0), seconds, cells, routes(counters), limiter_wait_s=sum(LIMITER_WAITS))


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
        "GET /v4/spreadsheets/<spreadsheet_id>/values:batchGet": "batchGet",
        "GET /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>": "values.get",
        "POST /v4/spreadsheets/<spreadsheet_id>/values/<path:range_name>:clear": "clear",
        "POST /v4/spreadsheets/<spreadsheet_id>/values:batchUpdate": "batchUpdate",
    }
    return ", ".join(f"{short.get(k, k)} {v}" for k, v in measure.by_route.items()) or "-"


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


def run(args: argparse.Namespace, rng: random.Random, sources: Path) -> int:
    from django.conf import settings

    from connectors.sheets import SheetsClient
    from sandbox.sheets.testing import running_sheets_emulator
    from sheetsync.diff import to_cell
    from sheetsync.models import SyncTarget

    spreadsheets = (args.targets + args.per_spreadsheet - 1) // args.per_spreadsheet
    say(f"generating {args.targets} sources of {args.rows} x {args.cols} ...")
    tables: list[Table] = []
    for index in range(args.targets):
        frame = make_frame(index, rows=args.rows, cols=args.cols, rng=rng)
        path = sources / f"t{index:04d}.parquet"
        frame.write_parquet(path)
        tables.append(Table(index, f"sheet-{index // args.per_spreadsheet:04d}", f"T{index % args.per_spreadsheet}",
                            path, frame))  # fmt: skip

    settings.SHEETS_SYNC_FILE_ROOTS = [str(sources)]
    settings.SHEETS_EMULATOR_AUTOSTART = False
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
            naive_emulator.store.create_spreadsheet(
                spreadsheet_id,
                {
                    t.tab: [list(t.frame.columns)] + [[to_cell(v) for v in r] for r in t.frame.iter_rows()]
                    for t in owned
                },
                spreadsheet_id=spreadsheet_id,
                rows=grid_rows,
            )
        for table in tables:
            SyncTarget.objects.create(
                name=f"t{table.index:04d}",
                spreadsheet_id=table.spreadsheet_id,
                range=f"{table.tab}!A1",
                source_kind=SyncTarget.SourceKind.FILE,
                source_file=str(table.path),
                key_columns="id",
            )
        settings.SHEETS_API_ENDPOINT = project_emulator.base_url
        naive = SheetsClient(endpoint=naive_emulator.base_url, credentials_file=None, rate_limit_per_minute=None)
        count_limiter_waits()

        say(f"set-up: the project's first cycle writes {args.targets} tables in {spreadsheets} spreadsheets ...")
        settings.SHEETS_RATE_LIMIT_PER_MINUTE = 0
        settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = 0
        setup = project_cycle(project_emulator)
        settings.SHEETS_RATE_LIMIT_PER_MINUTE = 60
        settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = 300

        say("no-change cycle: project ...")
        quiet = project_cycle(project_emulator)
        say("no-change cycle: naive ...")
        quiet_naive = naive_cycle(naive_emulator, tables, naive)

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
        say("1% cycle: naive ...")
        one_naive = naive_cycle(naive_emulator, tables, naive)
        say("no-change cycle after the 1% cycle: project ...")
        after = project_cycle(project_emulator)

        spread = spread_naive = None
        spread_cells = 0
        if not args.no_spread:
            for table in tables:
                table.frame, n = change_cells(table.frame, args.rows * args.cols // 100, rng)
                table.frame.write_parquet(table.path)
                spread_cells += n
            say(f"1% spread over all {args.targets} sources ({spread_cells} cells): project ...")
            spread = project_cycle(project_emulator)
            say("1% spread: naive ...")
            spread_naive = naive_cycle(naive_emulator, tables, naive)
        naive.close()

    # ---- report ----------------------------------------------------------------------------------------------
    width = 100
    lines = [
        f"setup              {args.targets} targets of {args.rows} rows x {args.cols} columns (+ header) in "
        f"{spreadsheets} spreadsheets ({args.per_spreadsheet} tabs each), {args.latency_ms:g} ms per request",
        "limiter            project: on (60/min per user, 300/min per project); naive: OFF (favours it: at 60/min "
        f"its {quiet_naive.requests} requests would take {quiet_naive.requests / 60:.0f} min)",
        f"first sync         project {setup.requests} requests ({route_text(setup)}), {setup.seconds:.2f} s, "
        f"{setup.cells} cells (set-up, limiter off)",
        "",
        f"{'cycle':<30}{'flow':<9}{'requests':>9}{'wall time':>11}{'cells written':>15}   requests by route",
    ]

    def row(label: str, flow: str, m: Measure) -> str:
        wait = f"; limiter held it {m.limiter_wait_s:.1f} s" if m.limiter_wait_s >= 0.05 else ""
        return f"{label:<30}{flow:<9}{m.requests:>9}{m.seconds:>10.2f}s{m.cells:>15,}   {route_text(m)}{wait}"

    lines += [
        row("no changes", "project", quiet),
        row("", "naive", quiet_naive),
        row(f"1% ({changed_cells:,} cells, {len(chosen)} src)", "project", one),
        row("", "naive", one_naive),
        row("no changes, after the 1%", "project", after),
    ]
    if spread is not None and spread_naive is not None:
        lines += [
            row(f"1% spread ({spread_cells:,}, info)", "project", spread),
            row("", "naive", spread_naive),
        ]
    ratio_quiet = quiet_naive.requests / max(quiet.requests, 1)
    ratio_one = one_naive.requests / max(one.requests, 1)
    lines += [
        "",
        f"no changes         {ratio_quiet:.0f}x fewer requests, {quiet_naive.seconds / max(quiet.seconds, 1e-9):.1f}x "
        f"less wall time than the naive sync",
        f"1% cycle           {ratio_one:.0f}x fewer requests, {one_naive.seconds / max(one.seconds, 1e-9):.1f}x less "
        f"wall time, {one_naive.cells / max(one.cells, 1):.0f}x fewer cells written",
    ]
    if spread is not None and spread_naive is not None:
        lines.append(
            f"1% spread (info)   {spread_naive.requests / max(spread.requests, 1):.1f}x fewer requests, "
            f"{spread_naive.seconds / max(spread.seconds, 1e-9):.1f}x less wall time: every spreadsheet changed, so "
            f"the project needs its 3 requests on each, and its {spread.by_route.get(BATCH_GET, 0)} reads exceed the "
            "per-user quota of 60 a minute: the limiter spreads them out (the naive flow runs unthrottled)"
        )
    lines.append("-" * width)
    budget_one = 1 + MAX_REQUESTS_PER_CHANGED_SPREADSHEET * changed_spreadsheets
    checks = [
        (
            quiet.requests <= 1,
            f"no-change cycle costs {quiet.requests} request(s) (target: at most 1 + 1 per changed source = 1)",
        ),  # fmt: skip
        (
            after.requests <= 1,
            f"no-change cycle after the 1% cycle costs {after.requests} request(s): our own writes "
            "are not taken for changes",
        ),  # fmt: skip
        (
            one.cells == changed_cells,
            f"1% cycle writes only the changed cells: {one.cells:,} written, {changed_cells:,} changed",
        ),  # fmt: skip
        (
            one.requests <= budget_one,
            f"1% cycle: {one.requests} requests <= 1 + 3 x {changed_spreadsheets} changed spreadsheets = {budget_one}",
        ),  # fmt: skip
        (
            ratio_quiet >= TARGET_RATIO,
            f"no-change cycle: {ratio_quiet:.0f}x fewer requests than the naive sync (target >= {TARGET_RATIO:.0f}x)",
        ),  # fmt: skip
        (
            ratio_one >= TARGET_RATIO,
            f"1% cycle: {ratio_one:.0f}x fewer requests than the naive sync (target >= {TARGET_RATIO:.0f}x)",
        ),  # fmt: skip
    ]
    for ok, text in checks:
        lines.append(f"{'PASS' if ok else 'FAIL'}  {text}")
        if not ok:
            say(f"FAIL  {text}")
    lines.append("=" * width)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

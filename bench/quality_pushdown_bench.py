"""Benchmark: the order-lines suite pushed down into BigQuery (the emulator) against pulling the lines into the app.

For each size in ``--rows`` (default 1M and 10M generated order lines), in the same run:

* **pushdown, counts**: ``ORDER_LINES_SUITE`` compiled to SQL (:mod:`quality.sql`), the one counts scan;
* **pushdown, counts + rows**: the same, then the bounded failing-keys-and-rows query (100 keys per check, the
  first 10,000 quarantined lines), as the sales job runs it;
* **pull, then polars**: every line fetched through the BigQuery REST API (``SELECT`` of the suite's columns,
  and the FX rates), a polars frame built from the rows, then ``suite_run`` in memory. Measured on at most
  ``--pull-limit`` lines (default 1M); for larger sizes its time is extrapolated linearly and marked so;
* **floor**: a plain ``COUNT(*), COUNT(col)...`` scan of the same columns and rows;
* **polars on the file** (reference, not an app path): ``suite_run`` on ``pl.scan_parquet`` of the same data, to
  check the failing counts where the pull is not measured.

The emulator runs in its own process (it plays BigQuery, it is not the app); every path runs in a fresh child
process whose peak RSS (``ru_maxrss``) is the app process's peak memory. Repeats run with the query cache off.

Printed: wall time per path (best of ``--repeat``), bytes processed, peak memory, the failing count of every check
on every path, and PASS/FAIL lines for the targets: pushdown of the largest size at least 20x faster than the
pull, at most 2x the floor, app peak memory under 300 MB, identical failing counts on every path. FAILs also go to
stderr; the exit status is 0 whatever the figures (only a crash exits non-zero).

    .venv/bin/python bench/quality_pushdown_bench.py                      # 1M and 10M: about 10 minutes here
    .venv/bin/python bench/quality_pushdown_bench.py --rows 200000 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATHS = ("counts", "rows", "floor", "pull", "file")
LABELS = {
    "counts": "pushdown: counts",
    "rows": "pushdown: counts + failing rows",
    "floor": "floor: COUNT scan, same columns",
    "pull": "pull via REST, then polars",
    "file": "polars on the Parquet file (ref.)",
}
SPEED_TARGET = 20.0  # pushdown at least this many times faster than the pull
FLOOR_TARGET = 2.0  # pushdown at most this many times the floor
MEMORY_TARGET = 300 * 2**20  # app peak RSS at the largest size
END = date(2026, 11, 30)


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


# --------------------------------------------------------------------------------------------------------------
# Children: one path each, in a fresh process
# --------------------------------------------------------------------------------------------------------------


def child(path: str, url: str, data_dir: str, repeat: int) -> None:
    """Run one path ``repeat`` times and print one JSON line: times, counts, bytes, peak RSS."""
    from connectors.bigquery import BigQueryClient
    from quality.sql import suite_compile
    from quality.suites import FX_RATES_TABLE, ORDER_LINES_SUITE

    client = BigQueryClient(project="dataops-local", api_endpoint=url, timeout=3600, max_attempts=1)
    as_of = datetime(END.year, END.month, END.day, tzinfo=UTC) + timedelta(days=1)
    times: list[float] = []
    counts: dict[str, int] = {}
    processed = 0
    extra: dict[str, Any] = {}
    for attempt in range(repeat):
        # A new reference time per repeat (one microsecond apart): another query text, so no cached answer.
        moment = as_of + timedelta(microseconds=attempt)
        compiled = suite_compile(ORDER_LINES_SUITE, table="sales.order_lines", as_of=moment)
        started = time.perf_counter()
        if path in ("counts", "rows"):
            from quality.warehouse import warehouse_run

            run = warehouse_run(
                compiled=compiled,
                client=client,
                maximum_bytes_billed=None,
                max_keys=100,
                quarantine_cap=10_000,
                fetch_rows=path == "rows",
                use_query_cache=False,
            )
            counts = {r.name: r.failed_count for r in run.result.check_results}
            processed = run.bytes_processed
            extra = {
                "plan": compiled.plan,
                "queries": len(run.jobs),
                "rows_fetched": run.details.get("failing_rows_fetched", 0),
            }
        elif path == "floor":
            columns = ", ".join(f"COUNT(`{c}`)" for c in compiled.columns)
            result = client.query_run(
                sql=f"SELECT COUNT(*), {columns} FROM `sales.order_lines` WHERE @nonce >= 0",  # noqa: S608
                params={"nonce": attempt},
                maximum_bytes_billed=None,
                use_query_cache=False,
            )
            processed = result.bytes_processed
        elif path == "pull":
            import polars as pl

            from quality.engine import rows_frame, suite_run

            columns = ", ".join(f"`{c}`" for c in ORDER_LINES_SUITE.schema)
            lines = client.query_run(
                sql=f"SELECT {columns} FROM `sales.order_lines` WHERE @nonce >= 0",  # noqa: S608
                params={"nonce": attempt},
                maximum_bytes_billed=None,
                use_query_cache=False,
            )
            fx = client.query_run(
                sql=f"SELECT rate_date, currency FROM `{FX_RATES_TABLE}`",  # noqa: S608
                maximum_bytes_billed=None,
                use_query_cache=False,
            )
            fetched = time.perf_counter() - started
            frame = rows_frame(
                ORDER_LINES_SUITE, list(ORDER_LINES_SUITE.schema), [tuple(r.values()) for r in lines.rows]
            )
            del lines
            rates = pl.DataFrame(fx.rows)
            result = suite_run(ORDER_LINES_SUITE, frame, as_of=moment, references={FX_RATES_TABLE: rates})
            counts = {r.name: r.failed_count for r in result.check_results if r.stage.value != "schema"}
            extra = {"fetch_s": fetched}
        elif path == "file":
            import polars as pl

            from quality.engine import suite_run

            rates = pl.read_csv(Path(data_dir) / "fx.usd_rates.csv", try_parse_dates=True)
            lines_file = Path(data_dir) / "sales.order_lines.parquet"
            result = suite_run(
                ORDER_LINES_SUITE, pl.scan_parquet(lines_file), as_of=moment, references={FX_RATES_TABLE: rates}
            )
            counts = {r.name: r.failed_count for r in result.check_results if r.stage.value != "schema"}
        times.append(time.perf_counter() - started)
    client.close()
    print(json.dumps({"times": times, "counts": counts, "bytes": processed, "maxrss": _maxrss(), **extra}))


def _run_child(path: str, url: str, data_dir: Path, repeat: int) -> dict[str, Any]:
    print(f"  running {LABELS[path]} ({repeat}x) ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", path, "--url", url, "--data-dir", str(data_dir), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{path} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------------
# The parent: data, emulator, table
# --------------------------------------------------------------------------------------------------------------


class Emulator:
    """The BigQuery emulator as its own process, seeded from a directory."""

    def __init__(self, data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.bigquery",
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                "--log-level",
                "WARNING",
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError(f"the emulator did not start (said {self.url!r})")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def generate(rows: int, directory: Path, seed: int, dirty_share: float) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sandbox.salesdata", "--out", str(directory), "--rows", str(rows), "--seed", str(seed),
         "--end", END.isoformat(), "--dirty-share", str(dirty_share)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def fmt_mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--pull-limit", type=int, default=1_000_000, help="largest size the pull is measured on")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dirty-share", type=float, default=0.003)
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.data_dir, args.repeat)
        return 0

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} at the start; python {sys.version.split()[0]}; "
          f"repeats {args.repeat} (best shown)")  # fmt: skip
    failures: list[str] = []
    passes: list[str] = []
    pull_per_row: float | None = None
    largest: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="pushdown-bench-"))
    try:
        for rows in sorted(args.rows):
            data = workdir / f"lines-{rows}"
            took = generate(rows, data, args.seed, args.dirty_share)
            print(f"\n== {rows:,} order lines ({args.dirty_share:.1%} dirty, generated in {took:.0f} s, "
                  f"Parquet {fmt_mb((data / 'sales.order_lines.parquet').stat().st_size)})")  # fmt: skip
            started = time.perf_counter()
            emulator = Emulator(data)
            print(f"emulator loaded the table in {time.perf_counter() - started:.0f} s ({emulator.url}, own process)")
            outcomes: dict[str, dict[str, Any]] = {}
            try:
                for path in ("counts", "rows", "floor"):
                    outcomes[path] = _run_child(path, emulator.url, data, args.repeat)
                if rows <= args.pull_limit:
                    outcomes["pull"] = _run_child("pull", emulator.url, data, 1)
            finally:
                emulator.stop()
            outcomes["file"] = _run_child("file", "", data, 1)

            if "pull" in outcomes:
                pull_per_row = min(outcomes["pull"]["times"]) / rows
            print(f"{'path':36s}{'wall s':>10s}{'rows/s':>14s}{'bytes processed':>18s}{'app peak RSS':>14s}  notes")
            for path in PATHS:
                if path == "pull" and path not in outcomes:
                    if pull_per_row is None:
                        continue
                    estimate = pull_per_row * rows
                    print(f"{LABELS[path]:36s}{estimate:>10.1f}{rows / estimate:>14,.0f}{'-':>18s}{'-':>14s}  "
                          f"(extrapolated from {args.pull_limit:,} lines)")  # fmt: skip
                    outcomes["pull_extrapolated"] = {"times": [estimate]}
                    continue
                out = outcomes[path]
                best = min(out["times"])
                notes = []
                if path in ("counts", "rows"):
                    notes.append(f"{out['plan']} plan, {out['queries']} queries, {out['rows_fetched']:,} rows fetched")
                if path == "pull":
                    notes.append(f"fetch {out['fetch_s']:.1f} s, then polars")
                if path == "file":
                    notes.append("reference for the counts; not an app path")
                bytes_text = f"{out['bytes']:,}" if out.get("bytes") else "-"
                print(f"{LABELS[path]:36s}{best:>10.2f}{rows / best:>14,.0f}{bytes_text:>18s}"
                      f"{fmt_mb(out['maxrss']):>14s}  {'; '.join(notes)}")  # fmt: skip

            counted = [p for p in ("counts", "rows", "pull", "file") if p in outcomes]
            names = list(outcomes["counts"]["counts"])
            print(f"\n{'failing rows per check':28s}" + "".join(f"{p:>12s}" for p in counted) + "  equal")
            equal = True
            for name in names:
                values = [outcomes[p]["counts"].get(name) for p in counted]
                same = len(set(values)) == 1
                equal &= same
                print(f"{name:28s}" + "".join(f"{v!s:>12s}" for v in values) + ("  yes" if same else "  NO"))
            (passes if equal else failures).append(
                f"{rows:,} lines: failing counts {'identical' if equal else 'DIFFER'} on {', '.join(counted)}"
            )
            largest = {"size": rows, **outcomes}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = largest["size"]
    push = min(largest["counts"]["times"])
    push_rows = min(largest["rows"]["times"])
    floor = min(largest["floor"]["times"])
    pull = largest.get("pull", largest.get("pull_extrapolated", {"times": [float("nan")]}))["times"][0]
    extrapolated = "pull" not in largest
    mark = " (pull extrapolated)" if extrapolated else ""
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("-" * 100)
    for ok, text in (
        (pull / push >= SPEED_TARGET, f"{rows:,} lines: pushdown counts {pull / push:.1f}x faster than the pull{mark} "
                                      f"(target >= {SPEED_TARGET:g}x); counts + rows {pull / push_rows:.1f}x"),
        (push / floor <= FLOOR_TARGET, f"{rows:,} lines: pushdown counts take {push / floor:.1f}x the floor scan "
                                       f"(target <= {FLOOR_TARGET:g}x); counts + rows {push_rows / floor:.1f}x"),
        (max(largest[p]["maxrss"] for p in ("counts", "rows")) < MEMORY_TARGET,
         f"{rows:,} lines: app peak RSS {fmt_mb(max(largest[p]['maxrss'] for p in ('counts', 'rows')))} for the "
         f"pushdown (target < {fmt_mb(MEMORY_TARGET)})"),
    ):  # fmt: skip
        (passes if ok else failures).append(text)
    for line in passes:
        print(f"PASS  {line}")
    for line in failures:
        print(f"FAIL  {line}")
        print(f"FAIL  {line}", file=sys.stderr)
    print("=" * 100)
    return 0


if __name__ == "__main__":
    sys.exit(main())

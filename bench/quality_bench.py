"""Benchmark: the quality pipeline (``quality.suite_run`` with ``ORDER_LINES_SUITE``) against Great Expectations,
pandera and plain pandas running the same checks on the same generated order lines.

Run from the project root, under the benchmark venv (which has the baseline libraries; the app's venv does not)::

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r requirements-bench.txt
    PYTHONPATH=. .venv-bench/bin/python bench/quality_bench.py                    # 1M and 5M rows, all baselines
    PYTHONPATH=. .venv-bench/bin/python bench/quality_bench.py --rows 200000 --skip great_expectations

What happens, per size in ``--rows``:

1. The order lines are generated once (``sandbox.salesdata.generate_order_lines`` when that module exists, else
   the vectorised generator below: same 15 columns, the same kinds of dirt) and written to a temporary Parquet
   file (zstd). Printed: its size on disk and its size in memory, measured as ``pyarrow.Table.nbytes`` of
   ``pyarrow.parquet.read_table`` (the Arrow buffers the file decodes to).
2. Each implementation runs in child processes (``--child IMPL``): once in a fresh child (for memory), then
   ``--repeat`` times in a row in another (for time). A run reads the Parquet file, runs the checks and returns
   the failing counts per check. "ours" is ``suite_run(ORDER_LINES_SUITE,
   pl.scan_parquet(path))`` and does more than the baselines: it also applies every transform and builds the
   cleaned frame, the quarantine (with reason codes) and the sample keys. The baselines are in
   ``bench/quality_baselines.py``. The wall time is the best of all runs, Parquet read included.
3. Peak memory is the ``ru_maxrss`` (peak resident set size) of the child that ran once: later runs in the same
   process would add the allocators' retained pages of earlier runs. The interpreter + imports baseline of the
   same implementation is measured in another child that only imports its libraries, and subtracted: "net
   peak" = peak - imports. The target is net peak of ours < 3x the in-memory Parquet size (Arrow).
4. The failing counts of every implementation are printed side by side and must be equal.

Printed: rows/s, wall time, peak and net memory, ratios vs ours (``x`` = how many times longer the baseline
takes / how much more memory it needs), then ``PASS``/``FAIL`` lines (FAILs also on stderr) for: faster than
every baseline; net peak memory < 3x the in-memory Parquet size; equal failing counts. The exit status is 0
whatever the figures; only a crash exits non-zero. Progress goes to stderr, the results to stdout.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OURS = "ours"
BASELINES = ("great_expectations", "pandera_pandas", "pandera_polars", "pandas")
LABELS = {
    OURS: "ours (polars)",
    "great_expectations": "Great Expectations",
    "pandera_pandas": "pandera on pandas",
    "pandera_polars": "pandera on polars",
    "pandas": "plain pandas",
}
VERSIONED = ("polars", "pyarrow", "pandas", "pandera", "great_expectations")
MEMORY_TARGET = 3.0  # net peak RSS of ours < this x the in-memory Parquet size


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------

CATEGORIES = {"ELE": "Electronics", "HOM": "Home & Kitchen", "TOY": "Toys & Games", "APP": "Apparel", "BOK": "Books"}
CHANNELS = ("web", "store", "marketplace", "partner")
DIRT_KINDS = (
    "negative_quantity",
    "revenue_mismatch",
    "null_region",
    "malformed_email",
    "future_order_ts",
    "duplicate_key",
    "unknown_currency",
)


def order_lines_generate(
    rows: int, *, seed: int = 7, dirty_share: float = 0.02, messy_share: float = 0.01, as_of: datetime
) -> tuple[Any, dict[str, int]]:
    """Order lines with planted dirt, vectorised (numpy + polars); returns the frame and the dirt planted.

    ``dirty_share`` of the rows carry exactly one kind of dirt each (split evenly over ``DIRT_KINDS``; a
    duplicated key also makes its clean twin fail the dedup check). ``messy_share`` of the clean rows have
    lower-case, space-padded codes that the cleaning stage fixes (they must not fail anything).
    """
    import numpy as np
    import polars as pl

    from quality.suites import COUNTRY_CURRENCY, COUNTRY_REGION

    countries = list(COUNTRY_REGION)
    rng = np.random.default_rng(seed)
    n = rows
    position = np.arange(n, dtype=np.int64)
    order_no = position // 3 + 10_000_001
    line_no = position % 3 + 1
    country_i = rng.integers(0, len(countries), n).astype(np.uint32)
    category_i = rng.integers(0, len(CATEGORIES), n).astype(np.uint32)
    channel_i = rng.integers(0, len(CHANNELS), n).astype(np.uint32)
    sku_no = rng.integers(0, 100_000, n)
    quantity = rng.integers(1, 11, n).astype(np.int64)
    unit_price = np.round(rng.uniform(1.0, 500.0, n), 2)
    discount = rng.choice(np.array([0.0, 0.05, 0.1, 0.15, 0.2]), n)
    as_of_us = (as_of - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    ts_us = as_of_us - rng.integers(60_000_000, 365 * 86_400 * 1_000_000, n)
    customer_no = rng.integers(0, max(1, n // 4), n)

    shuffled = rng.permutation(n)
    n_dirty = round(n * dirty_share)
    groups = dict(zip(DIRT_KINDS, np.array_split(shuffled[:n_dirty], len(DIRT_KINDS)), strict=True))
    clean = shuffled[n_dirty:]
    duplicates = groups["duplicate_key"]
    twins = clean[: len(duplicates)]
    order_no[duplicates] = order_no[twins]
    line_no[duplicates] = line_no[twins]
    quantity[groups["negative_quantity"]] *= -1
    revenue = np.round(quantity * unit_price * (1.0 - discount), 2)
    mismatch = groups["revenue_mismatch"]
    revenue[mismatch] += np.round(rng.uniform(1.0, 50.0, len(mismatch)), 2)
    future = groups["future_order_ts"]
    ts_us[future] = as_of_us + rng.integers(3_600_000_000, 30 * 86_400 * 1_000_000, len(future))

    def mask(indexes: Any) -> Any:
        marked = np.zeros(n, dtype=bool)
        marked[indexes] = True
        return marked

    messy = clean[len(duplicates) : len(duplicates) + round(n * messy_share)]
    raw = pl.DataFrame(
        {
            "order_no": order_no,
            "line_no": line_no,
            "ts": ts_us,
            "country": pl.Series(countries).gather(country_i),
            "region": pl.Series([COUNTRY_REGION[c] for c in countries]).gather(country_i),
            "currency": pl.Series([COUNTRY_CURRENCY[c] for c in countries]).gather(country_i),
            "category_code": pl.Series(list(CATEGORIES)).gather(category_i),
            "product_category": pl.Series(list(CATEGORIES.values())).gather(category_i),
            "sku_no": sku_no,
            "quantity": quantity,
            "unit_price": unit_price,
            "discount": discount,
            "revenue": revenue,
            "customer_no": customer_no,
            "channel": pl.Series(CHANNELS).gather(channel_i),
            "messy": mask(messy),
            "null_region": mask(groups["null_region"]),
            "bad_email": mask(groups["malformed_email"]),
            "bad_currency": mask(groups["unknown_currency"]),
        }
    )

    def messy_code(column: str) -> pl.Expr:
        padded = pl.format(" {} ", pl.col(column).str.to_lowercase())
        return pl.when(pl.col("messy")).then(padded).otherwise(pl.col(column))

    email = pl.format("user{}@example.com", pl.col("customer_no"))
    frame = raw.select(
        pl.format("SO-{}", pl.col("order_no")).alias("order_id"),
        pl.col("line_no"),
        pl.col("ts").cast(pl.Datetime("us", "UTC")).alias("order_ts"),
        pl.when(pl.col("null_region")).then(None).otherwise(messy_code("region")).alias("region"),
        messy_code("country").alias("country"),
        pl.format("SKU-{}-{}", "category_code", pl.col("sku_no").cast(pl.String).str.zfill(5)).alias("sku"),
        pl.col("product_category"),
        pl.col("quantity"),
        pl.col("unit_price"),
        pl.col("discount"),
        pl.col("revenue"),
        pl.when(pl.col("bad_currency")).then(pl.lit("XYZ")).otherwise(messy_code("currency")).alias("currency"),
        pl.format("C{}", pl.col("customer_no").cast(pl.String).str.zfill(8)).alias("customer_id"),
        pl.when(pl.col("bad_email")).then(email.str.replace("@", "_at_")).otherwise(email).alias("customer_email"),
        pl.col("channel"),
    )
    return frame, {kind: len(indexes) for kind, indexes in groups.items()}


def data_write(rows: int, path: Path, *, seed: int, dirty_share: float, as_of: datetime, own: bool = False) -> str:
    """Generate ``rows`` order lines into ``path`` (Parquet); returns which generator made them.

    ``as_of`` is the last microsecond of the data's last day: ``sandbox.salesdata`` is asked for data ending on
    that day, so its clean orders are all <= ``as_of`` and its "future" ones after it.
    """
    try:
        from sandbox.salesdata import generate_order_lines
    except ImportError:
        generate_order_lines = None
    if own:
        generate_order_lines = None
    if generate_order_lines is not None:
        kwargs: dict[str, Any] = {"rows": rows, "seed": seed, "dirty_share": dirty_share}
        if "end" in inspect.signature(generate_order_lines).parameters:
            kwargs["end"] = as_of.date()
        frame = generate_order_lines(**kwargs)
        source = "sandbox.salesdata.generate_order_lines"
    else:
        frame, planted = order_lines_generate(rows, seed=seed, dirty_share=dirty_share, as_of=as_of)
        source = f"the bench's own generator (planted dirt: {planted})"
    frame.write_parquet(path, compression="zstd")
    return source


def end_of_day(day: date) -> datetime:
    """The last microsecond of ``day`` in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, microseconds=-1)


def check_spec(as_of: datetime) -> dict[str, Any]:
    """The check parameters the baselines need, taken from the suite module so that all run the same checks."""
    from quality import suites

    return {
        "email_pattern": suites.EMAIL_PATTERN,
        "currency_pattern": suites.CURRENCY_PATTERN,
        "sku_pattern": suites.SKU_PATTERN,
        "iso_currencies": sorted(suites.ISO_CURRENCIES),
        "country_currency": dict(suites.COUNTRY_CURRENCY),
        "country_region": dict(suites.COUNTRY_REGION),
        "revenue_tolerance": suites.REVENUE_TOLERANCE,
        "float_slack": suites.FLOAT_SLACK,
        "as_of": as_of.isoformat(),
    }


# --------------------------------------------------------------------------------------------------------------
# Child process: one implementation
# --------------------------------------------------------------------------------------------------------------


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


_NOT_IN_BASELINES = frozenset({"exact_duplicate_lines", "fx_rate_for_the_day", "region_known"})


def _load_ours() -> Any:
    import dataclasses

    import polars as pl

    from quality.engine import suite_run
    from quality.suites import ORDER_LINES_SUITE

    # The 17 checks the baselines implement: the suite's later additions (exact-copy removal, the FX reference,
    # known regions) are left out so every implementation does the same work (bench/quality_pushdown_bench.py
    # measures the whole suite, in the warehouse and in memory).
    baseline_steps = tuple(s for s in ORDER_LINES_SUITE.steps if s.name not in _NOT_IN_BASELINES)
    suite = dataclasses.replace(ORDER_LINES_SUITE, steps=baseline_steps)

    def run(path: str, spec: dict[str, Any]) -> dict[str, int]:
        result = suite_run(suite, pl.scan_parquet(path), as_of=datetime.fromisoformat(spec["as_of"]))
        counts = {r.name: r.failed_count for r in result.check_results if not r.name.startswith("schema_")}
        counts["_gate"] = result.gate.decision.value  # type: ignore[assignment]
        counts["_cleaned_rows"] = result.cleaned.height
        counts["_quarantined_rows"] = result.quarantine.height
        return counts

    return run


def child_main(impl: str, path: str, spec_path: str, repeat: int, imports_only: bool) -> None:
    """Run one implementation and print one JSON line: best wall time, counts, peak RSS."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if impl == OURS:
        runner = _load_ours()
    else:
        from quality_baselines import load

        runner = load(impl)
    if imports_only:
        print(json.dumps({"impl": impl, "maxrss": _maxrss_bytes()}))
        return
    spec = json.loads(Path(spec_path).read_text())
    times = []
    counts: dict[str, Any] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        counts = runner(path, spec)
        times.append(time.perf_counter() - started)
    print(json.dumps({"impl": impl, "times": times, "counts": counts, "maxrss": _maxrss_bytes()}))


def _child(arguments: list[str], label: str) -> dict[str, Any]:
    """Run this script with ``arguments`` in a child process and return the JSON line it printed last."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("TQDM_DISABLE", "1")  # Great Expectations' progress bars
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{label} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_run(impl: str, path: Path, spec_path: Path, repeat: int, *, imports_only: bool = False) -> dict[str, Any]:
    """Run ``impl`` (or only its imports) in a child process and return what it printed."""
    arguments = ["--child", impl, "--parquet", str(path), "--spec", str(spec_path), "--repeat", str(repeat)]
    return _child(arguments + (["--imports-only"] if imports_only else []), impl)


# --------------------------------------------------------------------------------------------------------------
# Parent: generate, run, report
# --------------------------------------------------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _fail(message: str) -> None:
    print(f"FAIL {message}")
    print(f"FAIL {message}", file=sys.stderr)


def prepare_main(
    rows: int, path: str, spec_path: str, seed: int, dirty_share: float, as_of: str, own: bool = False
) -> None:
    """Child: write the data and the check spec; print the source and sizes as one JSON line.

    Runs in its own process so that the parent stays small: a child's ``ru_maxrss`` starts at the RSS of the
    process that spawned it (Linux keeps the high-water mark across exec), so a parent holding the generated
    data would inflate every measurement.
    """
    import polars as pl
    import pyarrow.parquet as pq

    moment = datetime.fromisoformat(as_of)
    started = time.perf_counter()
    source = data_write(rows, Path(path), seed=seed, dirty_share=dirty_share, as_of=moment, own=own)
    generated_s = time.perf_counter() - started
    Path(spec_path).write_text(json.dumps(check_spec(moment)))
    table = pq.read_table(path)
    arrow_bytes = table.nbytes
    del table
    polars_bytes = pl.read_parquet(path).estimated_size()
    sizes = {"disk": Path(path).stat().st_size, "arrow": arrow_bytes, "polars": polars_bytes}
    print(json.dumps({"source": source, "generated_s": generated_s, **sizes}))


def bench_size(rows: int, impls: list[str], args: argparse.Namespace, workdir: Path, as_of: datetime) -> None:
    """Benchmark every implementation on ``rows`` generated order lines and print the table for this size."""
    path = workdir / f"order_lines_{rows}.parquet"
    spec_path = workdir / "spec.json"
    print(f"[{rows:,} rows] generating ...", file=sys.stderr)
    prepared = _child(
        ["--prepare", str(rows), "--parquet", str(path), "--spec", str(spec_path), "--seed", str(args.seed)]
        + ["--dirty-share", str(args.dirty_share), "--as-of", as_of.isoformat()]
        + (["--own-generator"] if args.own_generator else []),
        "prepare",
    )
    source, generated_s = prepared["source"], prepared["generated_s"]
    arrow_bytes, disk_bytes, polars_bytes = prepared["arrow"], prepared["disk"], prepared["polars"]

    outcomes: dict[str, dict[str, Any]] = {}
    for impl in impls:
        print(f"[{rows:,} rows] {impl}: imports baseline, one run for memory, {args.repeat} for time", file=sys.stderr)
        base = child_run(impl, path, spec_path, 1, imports_only=True)
        single = child_run(impl, path, spec_path, 1)
        timed = child_run(impl, path, spec_path, args.repeat) if args.repeat > 1 else single
        if timed["counts"] != single["counts"]:
            raise RuntimeError(f"{impl}: counts differ between runs: {single['counts']} / {timed['counts']}")
        outcomes[impl] = {
            "times": single["times"] + timed["times"],
            "counts": single["counts"],
            "maxrss": single["maxrss"],
            "imports": base["maxrss"],
        }

    print()
    print(f"== {rows:,} rows: data from {source}, generated in {generated_s:.1f} s")
    print(
        f"   Parquet {_mb(disk_bytes)} on disk (zstd); in memory {_mb(arrow_bytes)} as Arrow "
        f"(pyarrow.parquet.read_table(...).nbytes, the reference below), {_mb(polars_bytes)} as a polars DataFrame"
    )
    ours = outcomes.get(OURS)
    header = (
        f"{'implementation':22s} {'wall s':>8s} {'rows/s':>12s} {'peak RSS':>11s} {'imports':>10s} "
        f"{'net peak':>11s} {'net/parquet':>11s} {'time x':>7s} {'net mem x':>9s}"
    )
    print(header)
    print("-" * len(header))
    for impl, outcome in outcomes.items():
        best = min(outcome["times"])
        net = max(0, outcome["maxrss"] - outcome["imports"])
        outcome["best"], outcome["net"] = best, net
        time_x = mem_x = ""
        if ours is not None and impl != OURS:
            time_x = f"{best / min(ours['times']):.2f}x"
            ours_net = max(1, ours["maxrss"] - ours["imports"])
            mem_x = f"{net / ours_net:.2f}x"
        print(
            f"{LABELS[impl]:22s} {best:8.3f} {rows / best:12,.0f} {_mb(outcome['maxrss']):>11s} "
            f"{_mb(outcome['imports']):>10s} {_mb(net):>11s} {net / arrow_bytes:10.2f}x {time_x:>7s} {mem_x:>9s}"
        )
    print(f"   wall s = best of 1 + {args.repeat} runs (two children), Parquet read included; peak RSS = ru_maxrss of")
    print("   a child that runs once; imports = ru_maxrss of a child that only imports the same libraries;")
    print("   net peak = peak RSS - imports; net/parquet = net peak / the Arrow in-memory size;")
    print("   time x / net mem x = baseline / ours (above 1 means ours is faster / smaller).")
    if ours is not None:
        extra = {k: v for k, v in ours["counts"].items() if k.startswith("_")}
        print(
            f"   ours also produced: gate {extra.get('_gate')}, {extra.get('_cleaned_rows'):,} cleaned rows, "
            f"{extra.get('_quarantined_rows'):,} quarantined rows with reason codes"
        )

    names = [name for name in (ours or next(iter(outcomes.values())))["counts"] if not name.startswith("_")]
    print()
    print(f"{'failing rows per check':28s}" + "".join(f"{impl[:18]:>19s}" for impl in outcomes) + "  equal")
    all_equal = True
    for name in names:
        values = [outcome["counts"].get(name) for outcome in outcomes.values()]
        equal = len(set(values)) == 1
        all_equal &= equal
        print(f"{name:28s}" + "".join(f"{v!s:>19s}" for v in values) + ("  yes" if equal else "  NO"))

    print()
    if ours is None:
        return
    baselines = [impl for impl in outcomes if impl != OURS]
    slowest_margin = min((outcomes[b]["best"] / ours["best"] for b in baselines), default=float("inf"))
    if baselines and slowest_margin > 1.0:
        print(f"PASS {rows:,} rows: ours is faster than every baseline (closest: {slowest_margin:.2f}x)")
    elif baselines:
        closest = min(baselines, key=lambda b: outcomes[b]["best"])
        _fail(f"{rows:,} rows: {LABELS[closest]} is not slower than ours ({slowest_margin:.2f}x)")
    ratio = ours["net"] / arrow_bytes
    verdict = f"{rows:,} rows: ours net peak {_mb(ours['net'])} = {ratio:.2f}x the in-memory Parquet size"
    if ratio < MEMORY_TARGET:
        print(f"PASS {verdict} (< {MEMORY_TARGET:g}x)")
    else:
        _fail(f"{verdict} (target < {MEMORY_TARGET:g}x)")
    if all_equal:
        print(f"PASS {rows:,} rows: failing counts equal across {len(outcomes)} implementations")
    else:
        _fail(f"{rows:,} rows: failing counts differ between implementations (see the NO lines)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000], help="sizes to benchmark")
    parser.add_argument("--skip", nargs="*", default=[], choices=BASELINES, help="baselines not to run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation (best wall time counts)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--dirty-share", type=float, default=0.003, help="share of rows carrying dirt (the generator's default)"
    )
    parser.add_argument(
        "--own-generator",
        action="store_true",
        help="use the bench's generator (with messy codes for the cleaning stage) even when sandbox.salesdata exists",
    )
    parser.add_argument("--child", choices=(OURS, *BASELINES), help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--imports-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.parquet, args.spec, args.repeat, args.imports_only)
        return
    if args.prepare:
        prepare_main(args.prepare, args.parquet, args.spec, args.seed, args.dirty_share, args.as_of, args.own_generator)
        return
    impls = [OURS, *(b for b in BASELINES if b not in args.skip)]
    as_of = end_of_day(datetime.now(UTC).date())
    versions = ", ".join(f"{name} {_version(name)}" for name in VERSIONED)
    print(f"quality bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {versions}")
    print(f"implementations: {', '.join(LABELS[impl] for impl in impls)}; reference time (as_of) {as_of.isoformat()}")
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        for rows in args.rows:
            bench_size(rows, impls, args, Path(tmp), as_of)


if __name__ == "__main__":
    main()

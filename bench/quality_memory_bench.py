"""Benchmark: the in-memory quality engine's peak memory and time against DuckDB and the engine before (issue 15).

The target: ``suite_run``'s peak memory within 1.5x DuckDB's on the same suite at 5M and 20M order lines, at no
more than 1.1x the engine's time before this work. Run from the project root with the project's venv (polars and
DuckDB are app dependencies; nothing else is needed)::

    .venv/bin/python bench/quality_memory_bench.py                         # 5M and 20M rows (20M peaks ~7 GB)
    .venv/bin/python bench/quality_memory_bench.py --rows 1000000 --repeat 1  # a quick look

Per size, the order lines are generated once into a Parquet file (``bench/quality_bench.py --prepare``:
``sandbox.salesdata.generate_order_lines``, zstd, row groups of 128k lines). Then the same job is done three
ways, each in fresh child processes (peak memory = the child's ``ru_maxrss``; the parent stays small):

* **new**: ``suite_run(suite, pl.scan_parquet(path), cleaned_sink=out)``: the checks in polars' streaming
  engine, only the flagged rows gathered, the cleaned rows written to a Parquet file in streaming mode;
* **old**: the engine as it was before (``--old-ref``, default the commit this work started from, extracted
  with ``git archive`` into a temporary directory and put first on the child's ``PYTHONPATH``):
  ``suite_run(suite, pl.scan_parquet(path))``, then ``result.cleaned.write_parquet(out)`` so both deliver the
  same file (its "in memory" time is ``suite_run`` alone, what ``quality_bench.py`` measured);
* **DuckDB**: the same suite compiled to SQL (``quality.sql.suite_compile``: the counts scan, the failing rows
  with 1,000 keys per check and every quarantined row, the clean rows with every column ``COPY``-ed to a zstd
  Parquet file), translated from BigQuery SQL with sqlglot, reading the Parquet file with ``read_parquet``.

The suite is ``ORDER_LINES_SUITE`` less the three steps the baselines of ``quality_bench.py`` leave out (exact
copies, the FX reference, known regions): 17 checks, two transforms, the issue's "same suite".

Each implementation runs ``--repeat`` times, interleaved (old, new, DuckDB, old, new, DuckDB...) so the machine's
load falls on all alike; peak memory is the first run's, time the best run's. A last child compares the outputs:
failing counts of all three, and for old against new the sample keys, the quarantine (rows and a hash of them)
and the cleaned files (rows, schema and a hash of every row, read in streaming mode).

Printed: per size a table (peak RSS, wall time, ratios) and PASS/FAIL lines for: new peak <= 1.5x DuckDB's; new
time <= 1.1x the old engine's (same output); identical results. FAILs also go to stderr; the exit status is 0
whatever the figures (only a crash exits non-zero). Note the load average printed beside the figures: the machine
is shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("old", "new", "duckdb")
LABELS = {"old": "old engine (before)", "new": "new engine (streaming)", "duckdb": "DuckDB (compiled SQL)"}
OLD_REF = "a36a549"  # main when this work started: the engine that held the batch, then its cleaned copy
MEMORY_TARGET = 1.5  # new peak RSS <= this x DuckDB's
TIME_TARGET = 1.1  # new wall time <= this x the old engine's (same output)
NOT_IN_BASELINES = frozenset({"exact_duplicate_lines", "fx_rate_for_the_day", "region_known"})
MAX_KEYS = 1000


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _suite() -> Any:
    from quality.suites import ORDER_LINES_SUITE

    steps = tuple(s for s in ORDER_LINES_SUITE.steps if s.name not in NOT_IN_BASELINES)
    return dataclasses.replace(ORDER_LINES_SUITE, steps=steps)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, default=str, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------------------------------------------


def child_engine(impl: str, path: str, out: str, as_of: datetime) -> dict[str, Any]:
    """One run of the old or new engine: counts, digests of samples and quarantine, and the cleaned file."""
    import polars as pl

    from quality.engine import suite_run

    suite = _suite()
    started = time.perf_counter()
    if impl == "new":
        result = suite_run(suite, pl.scan_parquet(path), as_of=as_of, max_keys_per_check=MAX_KEYS, cleaned_sink=out)
        checked = time.perf_counter()
        cleaned_rows = result.cleaned_rows
    else:
        result = suite_run(suite, pl.scan_parquet(path), as_of=as_of, max_keys_per_check=MAX_KEYS)
        checked = time.perf_counter()
        result.cleaned.write_parquet(out)
        cleaned_rows = result.cleaned.height
    done = time.perf_counter()
    checks = [r for r in result.check_results if not r.name.startswith("schema_")]
    quarantine = result.quarantine
    return {
        "wall": done - started,
        "in_memory": checked - started,
        "counts": {r.name: r.failed_count for r in checks},
        "samples": _digest({r.name: r.sample_keys for r in checks}),
        "quarantine_rows": quarantine.height,
        "quarantine": str(int(quarantine.hash_rows(seed=7).sum())) if quarantine.height else "0",
        "cleaned_rows": cleaned_rows,
        "gate": result.gate.decision.value,
    }


def child_duckdb(path: str, out: str, as_of: datetime) -> dict[str, Any]:
    """The suite compiled to SQL, in DuckDB over the Parquet file: counts, failing rows, clean rows to Parquet."""
    import duckdb
    import sqlglot

    from quality.sql import suite_compile

    suite = _suite()
    started = time.perf_counter()
    compiled = suite_compile(suite, table="bench.order_lines", as_of=as_of)
    everything = tuple(suite.schema)  # the clean rows with every column, as the engine writes them
    derived = compiled.output_columns[len(compiled.columns) :]
    compiled = dataclasses.replace(compiled, columns=everything, output_columns=(*everything, *derived))
    source = "read_parquet(" + "'" + path.replace("'", "''") + "')"

    def duck(sql: str) -> str:
        return sqlglot.transpile(sql, read="bigquery", write="duckdb")[0].replace('"bench"."order_lines"', source)

    con = duckdb.connect()
    names = [d[0] for d in con.execute(duck(compiled.counts_sql()), dict(compiled.params)).description]
    row = dict(zip(names, con.fetchone() or (), strict=True))
    rows, removed, quarantined, per_check = compiled.counts(row)
    params = compiled.failing_rows_params(max_keys=MAX_KEYS, quarantine_cap=rows)
    failing = con.execute(duck(compiled.failing_rows_sql()), params).fetchall()
    target = "'" + out.replace("'", "''") + "'"
    clean = duck(compiled.clean_rows_sql(compiled.output_columns))
    copied = con.execute(f"COPY ({clean}) TO {target} (FORMAT parquet, COMPRESSION zstd)", dict(compiled.params))
    written = copied.fetchone()
    return {
        "wall": time.perf_counter() - started,
        "counts": per_check,
        "quarantine_rows": quarantined,
        "failing_rows": len(failing),
        "cleaned_rows": int(written[0]) if written else rows - removed - quarantined,
        "plan": compiled.plan,
    }


def child_compare(files: list[str]) -> dict[str, Any]:
    """Rows, schema and a hash of every row of each cleaned file, read in streaming mode."""
    import polars as pl

    found = {}
    for file in files:
        lazy = pl.scan_parquet(file)
        schema = {name: str(dtype) for name, dtype in lazy.collect_schema().items()}
        summary = lazy.select(pl.len().alias("rows"), pl.struct(pl.all()).hash(seed=7).sum().alias("hash")).collect(
            engine="streaming"
        )
        found[file] = {"rows": int(summary["rows"][0]), "hash": str(summary["hash"][0]), "schema": schema}
    return found


def child_main(args: argparse.Namespace) -> None:
    as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
    if args.child == "imports":
        import duckdb  # noqa: F401
        import polars  # noqa: F401

        import quality.engine  # noqa: F401

        outcome: dict[str, Any] = {}
    elif args.child == "compare":
        outcome = child_compare(args.files)
    elif args.child == "duckdb":
        outcome = child_duckdb(args.parquet, args.out, as_of)  # type: ignore[arg-type]
    else:
        outcome = child_engine(args.child, args.parquet, args.out, as_of)  # type: ignore[arg-type]
    line = json.dumps({**outcome, "child": args.child, "parquet": args.parquet, "maxrss": _maxrss()})
    if args.out:  # every run also goes to runs.jsonl beside its output, should the whole bench not finish
        with (Path(args.out).parent / "runs.jsonl").open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    print(line)


def _child(arguments: list[str], *, pythonpath: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {arguments[:2]} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------------------------


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _fail(message: str) -> None:
    print(f"FAIL {message}")
    print(f"FAIL {message}", file=sys.stderr)


def _verdict(ok: bool, message: str) -> None:
    if ok:
        print(f"PASS {message}")
    else:
        _fail(message)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def old_tree(ref: str, workdir: Path) -> Path:
    """The ``quality`` and ``sandbox`` packages as of ``ref`` (git archive), for the old engine's children."""
    target = workdir / "old"
    target.mkdir()
    archive = workdir / "old.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "archive", ref, "quality", "sandbox"], cwd=ROOT, stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def bench_size(rows: int, args: argparse.Namespace, workdir: Path, old: Path, as_of: datetime) -> None:
    path = workdir / f"order_lines_{rows}.parquet"
    print(f"[{rows:,} rows] generating ... ({_load()})", file=sys.stderr)
    prepared = _child_prepare(rows, path, workdir, args, as_of)
    paths = {"new": [str(ROOT)], "old": [str(old), str(ROOT)], "duckdb": [str(ROOT)]}
    imports = {impl: _child(["--child", "imports"], pythonpath=paths[impl])["maxrss"] for impl in ("new", "old")}
    runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLS}
    outs = {impl: workdir / f"cleaned_{impl}_{rows}.parquet" for impl in IMPLS}
    loads = []
    for attempt in range(args.repeat):
        for impl in IMPLS:
            if impl == "duckdb" and attempt >= args.duckdb_repeat:
                continue
            print(f"[{rows:,} rows] {impl} run {attempt + 1}/{args.repeat} ({_load()})", file=sys.stderr)
            loads.append(os.getloadavg()[0])
            arguments = [
                "--child",
                impl,
                "--parquet",
                str(path),
                "--out",
                str(outs[impl]),
                "--as-of",
                as_of.isoformat(),
            ]
            runs[impl].append(_child(arguments, pythonpath=paths[impl]))
    if args.no_file_compare:  # rows only (from the runs): hashing three files of 20M rows takes minutes here
        compared = {str(outs[i]): {"rows": runs[i][0]["cleaned_rows"], "hash": "-", "schema": {}} for i in IMPLS}
    else:
        compared = _child(["--child", "compare", "--files", *(str(outs[i]) for i in IMPLS)], pythonpath=[str(ROOT)])

    peak = {impl: runs[impl][0]["maxrss"] for impl in IMPLS}
    best = {impl: min(r["wall"] for r in runs[impl]) for impl in IMPLS}
    print()
    print(
        f"== {rows:,} rows: Parquet {prepared['disk'] / 1e6:,.1f} MB on disk, {prepared['arrow'] / 1e6:,.1f} MB Arrow"
    )
    print(f"   load average during the runs: min {min(loads):.2f}, max {max(loads):.2f} (1-minute); {_load()} now")
    header = f"{'implementation':24s} {'peak RSS':>9s} {'vs DuckDB':>9s} {'wall s':>8s} {'vs old':>7s}  runs (s)"
    print(header)
    print("-" * len(header))
    for impl in IMPLS:
        times = ", ".join(f"{r['wall']:.1f}" for r in runs[impl])
        print(
            f"{LABELS[impl]:24s} {_gb(peak[impl]):>9s} {peak[impl] / peak['duckdb']:8.2f}x {best[impl]:8.2f} "
            f"{best[impl] / best['old']:6.2f}x  {times}"
        )
    in_memory = min(r["in_memory"] for r in runs["old"])
    print(
        f"   old engine's suite_run alone (cleaned kept in memory, not written): best {in_memory:.2f} s; "
        f"imports alone: old {_gb(imports['old'])}, new {_gb(imports['new'])}"
    )
    print(
        f"   peak RSS = ru_maxrss of the first run's child; wall s = best of {args.repeat} "
        f"(DuckDB {min(args.repeat, args.duckdb_repeat)}); every run writes the cleaned rows to a zstd Parquet file"
    )

    names = list(runs["new"][0]["counts"])
    equal_counts = all(runs[impl][0]["counts"] == runs["new"][0]["counts"] for impl in IMPLS)
    print(f"   failing rows per check (new): {json.dumps(runs['new'][0]['counts'])}")
    if not equal_counts:
        for name in names:
            values = [runs[impl][0]["counts"].get(name) for impl in IMPLS]
            if len(set(values)) > 1:
                print(f"   {name}: old/new/duckdb = {values}")
    new_run, old_run, duck_run = runs["new"][0], runs["old"][0], runs["duckdb"][0]
    files = {impl: compared[str(outs[impl])] for impl in IMPLS}
    print(
        f"   cleaned rows: old {old_run['cleaned_rows']:,}, new {new_run['cleaned_rows']:,}, "
        f"DuckDB {duck_run['cleaned_rows']:,}; quarantined: old {old_run['quarantine_rows']:,}, "
        f"new {new_run['quarantine_rows']:,}, DuckDB {duck_run['quarantine_rows']:,} (plan {duck_run['plan']})"
    )
    ratio = peak["new"] / peak["duckdb"]
    _verdict(
        ratio <= MEMORY_TARGET,
        f"{rows:,} rows: new peak {_gb(peak['new'])} = {ratio:.2f}x DuckDB's {_gb(peak['duckdb'])} "
        f"(target <= {MEMORY_TARGET:g}x; the old engine: {peak['old'] / peak['duckdb']:.2f}x)",
    )
    time_ratio = best["new"] / best["old"]
    _verdict(
        time_ratio <= TIME_TARGET,
        f"{rows:,} rows: new time {best['new']:.2f} s = {time_ratio:.2f}x the old engine's {best['old']:.2f} s "
        f"(target <= {TIME_TARGET:g}x)",
    )
    _verdict(equal_counts, f"{rows:,} rows: failing counts equal in old, new and DuckDB")
    same = (
        new_run["samples"] == old_run["samples"]
        and new_run["quarantine"] == old_run["quarantine"]
        and new_run["quarantine_rows"] == old_run["quarantine_rows"]
        and files["new"] == files["old"]
        and new_run["gate"] == old_run["gate"]
    )
    _verdict(
        same,
        f"{rows:,} rows: new = old in sample keys, quarantine (rows + row hash), gate and cleaned file "
        f"({files['new']['rows']:,} rows"
        + (", rows only: --no-file-compare)" if args.no_file_compare else ", same schema and row hash)"),
    )
    _verdict(
        files["duckdb"]["rows"] == files["new"]["rows"],
        f"{rows:,} rows: DuckDB's clean file has the same row count ({files['duckdb']['rows']:,})",
    )
    for out in outs.values():
        out.unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def _child_prepare(rows: int, path: Path, workdir: Path, args: argparse.Namespace, as_of: datetime) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "quality_bench.py"), "--prepare", str(rows), "--parquet", str(path)]
    command += ["--spec", str(workdir / "spec.json"), "--seed", str(args.seed), "--dirty-share", str(args.dirty_share)]
    command += ["--as-of", as_of.isoformat()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"prepare failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000_000, 20_000_000])
    parser.add_argument("--repeat", type=int, default=2, help="runs of the old and new engines (best time counts)")
    parser.add_argument("--duckdb-repeat", type=int, default=1, help="runs of DuckDB (its memory is the figure)")
    parser.add_argument("--old-ref", default=OLD_REF, help="git revision of the engine before (git archive)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dirty-share", type=float, default=0.003)
    parser.add_argument(
        "--no-file-compare", action="store_true", help="compare the cleaned files' row counts only, not their rows"
    )
    parser.add_argument("--workdir", help="where the Parquet files go (default: a temporary directory)")
    parser.add_argument("--child", choices=(*IMPLS, "imports", "compare"), help=argparse.SUPPRESS)
    parser.add_argument("--parquet", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", default=[], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return
    day = datetime.now(UTC).date()
    as_of = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, microseconds=-1)
    from importlib.metadata import version  # not the libraries themselves: the children inherit the parent's RSS

    print(
        f"quality memory bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, polars {version('polars')}, "
        f"duckdb {version('duckdb')}; old engine = {args.old_ref}; as_of {as_of.isoformat()}; {_load()}"
    )
    with tempfile.TemporaryDirectory(prefix="quality-memory-", dir=args.workdir) as tmp:
        old = old_tree(args.old_ref, Path(tmp))
        for rows in args.rows:
            bench_size(rows, args, Path(tmp), old, as_of)


if __name__ == "__main__":
    main()

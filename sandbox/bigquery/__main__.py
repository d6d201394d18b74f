"""Run the BigQuery emulator as a process.

``python -m sandbox.bigquery --port 9102 --data-dir DIR [--project dataops-local] [--location US]
[--latency-ms 0] [--job-running-ms 0]``

Loads every ``<dataset>.<table>.parquet|csv`` of DIR, prints the base URL once listening (point
``BIGQUERY_EMULATOR_HOST`` or the client's ``api_endpoint`` at it) and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sandbox.bigquery.engine import DEFAULT_LOCATION, DEFAULT_PROJECT
from sandbox.bigquery.server import BigQueryEmulator
from sandbox.common import serve_until_signalled


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.bigquery", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9102, help="port (0 = any free port)")
    parser.add_argument("--data-dir", required=True, help="directory of <dataset>.<table>.parquet|csv files")
    parser.add_argument("--project", default=DEFAULT_PROJECT, help="project id used in messages")
    parser.add_argument("--location", default=DEFAULT_LOCATION, help="location reported for jobs")
    parser.add_argument("--latency-ms", type=float, default=0, help="latency added to every request")
    parser.add_argument("--job-running-ms", type=float, default=0, help="how long new jobs report RUNNING")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the emulator and block until a termination signal."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        emulator = BigQueryEmulator(
            data_dir=args.data_dir,
            project=args.project,
            location=args.location,
            host=args.host,
            port=args.port,
            latency_ms=args.latency_ms,
            job_running_ms=args.job_running_ms,
        )
    except (OSError, ValueError) as exc:
        print(f"bigquery emulator: cannot load {args.data_dir}: {exc}", file=sys.stderr)
        return 2

    return serve_until_signalled(emulator, host=args.host, port=args.port, on_close=emulator.engine.close)


if __name__ == "__main__":
    sys.exit(main())

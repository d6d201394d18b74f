"""Run the Sheets + Drive emulator as a process.

``python -m sandbox.sheets --port 9102 [--fixture PATH] [--state PATH] [--latency-ms 0]
[--quota-per-minute N] [--project-quota-per-minute N]``

Prints the base URL once listening and runs until SIGTERM or SIGINT. With ``--state`` the state
is loaded from that file when it exists and rewritten atomically after every change.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sandbox.common import serve_until_signalled
from sandbox.sheets.server import SheetsEmulator
from sandbox.sheets.store import SheetsStore


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.sheets", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9102, help="port (0 = any free port)")
    parser.add_argument("--fixture", help="JSON fixture file to load (ignored when --state exists)")
    parser.add_argument("--state", help="state file: loaded if present, rewritten after mutations")
    parser.add_argument("--latency-ms", type=float, default=0, help="latency added to every request")
    parser.add_argument(
        "--quota-per-minute",
        type=int,
        default=None,
        metavar="N",
        help="answer 429 past N Sheets reads (and N writes) per minute per user (default: no quota)",
    )
    parser.add_argument(
        "--project-quota-per-minute",
        type=int,
        default=None,
        metavar="N",
        help="answer 429 past N Sheets reads (and N writes) per minute from all users together (default: none)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the emulator and block until a termination signal."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = SheetsStore.open(fixture_path=args.fixture, state_path=args.state)
    emulator = SheetsEmulator(store, host=args.host, port=args.port, latency_ms=args.latency_ms)
    if args.quota_per_minute is not None or args.project_quota_per_minute is not None:
        emulator.set_quota(
            read_per_minute=args.quota_per_minute,
            write_per_minute=args.quota_per_minute,
            project_read_per_minute=args.project_quota_per_minute,
            project_write_per_minute=args.project_quota_per_minute,
        )

    return serve_until_signalled(emulator, host=args.host, port=args.port, on_close=store.close)


if __name__ == "__main__":
    sys.exit(main())

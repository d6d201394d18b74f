"""Run the Looker emulator as a process.

``python -m sandbox.looker --port 9101 [--fixture PATH | --generate N] [--seed 7]
[--state PATH] [--latency-ms 0]``

Prints the base URL once listening and runs until SIGTERM or SIGINT; on the way out it flushes
the state file, so a restart with the same ``--state`` continues where this one stopped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sandbox.common import serve_until_signalled
from sandbox.looker.fixtures import generate_fixture
from sandbox.looker.server import LookerEmulator
from sandbox.looker.store import LookerStore

DEFAULT_GENERATE = 200


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.looker", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9101, help="port (0 = any free port)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--fixture", help="JSON fixture file to load")
    source.add_argument("--generate", type=int, metavar="N", help=f"generate N dashboards (default {DEFAULT_GENERATE})")
    parser.add_argument("--seed", type=int, default=7, help="seed for --generate")
    parser.add_argument("--state", help="state file: loaded if present, rewritten after mutations")
    parser.add_argument("--latency-ms", type=float, default=0, help="latency added to every request")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the emulator and block until a termination signal."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fixture = None
    state_exists = args.state is not None and Path(args.state).exists()
    if args.fixture is None and not state_exists:
        fixture = generate_fixture(args.generate if args.generate is not None else DEFAULT_GENERATE, seed=args.seed)
    store = LookerStore.open(fixture=fixture, fixture_path=args.fixture, state_path=args.state, fixture_owned=True)
    emulator = LookerEmulator(store, host=args.host, port=args.port, latency_ms=args.latency_ms)

    return serve_until_signalled(emulator, host=args.host, port=args.port, on_close=store.close)


if __name__ == "__main__":
    sys.exit(main())

"""A local emulator of the slice of Looker API 4.0 this project uses.

The real ``looker_sdk`` talks to it over loopback. Start one in-process with
:func:`sandbox.looker.testing.running_looker_emulator`, or as a shared process with
``python -m sandbox.looker --port 9101`` (see :mod:`sandbox.runner`).
"""

from sandbox.looker.fixtures import generate_fixture, load_fixture, write_fixture
from sandbox.looker.server import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET, LookerEmulator
from sandbox.looker.store import LookerStore

__all__ = [
    "EMULATOR_CLIENT_ID",
    "EMULATOR_CLIENT_SECRET",
    "LookerEmulator",
    "LookerStore",
    "generate_fixture",
    "load_fixture",
    "write_fixture",
]

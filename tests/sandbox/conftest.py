"""Fixtures for the emulator tests. These tests need no Django."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET
from sandbox.looker.server import LookerEmulator
from sandbox.looker.testing import running_looker_emulator


@pytest.fixture(autouse=True)
def _isolated_settings() -> Iterator[None]:
    """Replace the project-wide Django settings isolation: nothing here reads Django settings."""
    yield


@pytest.fixture
def emulator() -> Iterator[LookerEmulator]:
    """A fresh Looker emulator with the default generated content (50 dashboards, seed 7)."""
    with running_looker_emulator(n_dashboards=50) as emu:
        yield emu


def login(emu: LookerEmulator) -> requests.Session:
    """A requests session carrying a valid emulator token."""
    reply = requests.post(
        f"{emu.base_url}/api/4.0/login",
        data={"client_id": EMULATOR_CLIENT_ID, "client_secret": EMULATOR_CLIENT_SECRET},
        timeout=5,
    )
    reply.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
    return session

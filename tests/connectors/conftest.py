"""Fixtures for the connector tests: the real looker-sdk against the emulator on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.looker import LookerClient
from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET
from sandbox.looker.server import LookerEmulator
from sandbox.looker.testing import running_looker_emulator


@pytest.fixture(autouse=True)
def _isolated_settings() -> Iterator[None]:
    """Replace the project-wide Django settings isolation: the connector tests configure clients directly."""
    yield


@pytest.fixture
def emulator() -> Iterator[LookerEmulator]:
    """A fresh Looker emulator with the default generated content (50 dashboards, seed 7)."""
    with running_looker_emulator(n_dashboards=50) as emu:
        yield emu


@pytest.fixture
def make_client(emulator: LookerEmulator) -> Iterator[Callable[..., LookerClient]]:
    """Factory for clients aimed at the emulator, with fast backoff; closes them afterwards."""
    clients: list[LookerClient] = []

    def make(**overrides: Any) -> LookerClient:
        options: dict[str, Any] = {
            "base_url": emulator.base_url,
            "client_id": EMULATOR_CLIENT_ID,
            "client_secret": EMULATOR_CLIENT_SECRET,
            "timeout": 5,
            "max_attempts": 3,
            "backoff_base": 0.01,
            "backoff_max": 5,
        }
        options.update(overrides)
        client = LookerClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., LookerClient]) -> LookerClient:
    """A client with the default test options."""
    return make_client()

"""Fixtures for the quality engine tests. The engine is pure polars: these tests need no Django and no database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _isolated_settings() -> Iterator[None]:
    """Replace the project-wide Django settings isolation: nothing here reads Django settings."""
    yield

"""The walk makes every write of the API (each declared one, and each undeclared method to check it never
succeeds) as one user within a minute: more than the per-user write throttle allows (API_THROTTLE_WRITES), which
would answer 429 where the walk checks permissions. Throttling is tested in tests/api/test_throttles_lockouts.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _writes_unthrottled(monkeypatch) -> None:
    from api.throttles import WriteRateThrottle

    # DRF binds the rates when the throttle class is defined: change them there (restored after the test).
    monkeypatch.setitem(WriteRateThrottle.THROTTLE_RATES, "writes", "100000/min")

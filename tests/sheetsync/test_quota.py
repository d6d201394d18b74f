"""The client-side quota: the per-user and the process-wide project budgets both hold every request."""

from __future__ import annotations

import pytest

from connectors.sheets import SheetsRateLimiter
from sheetsync.services import ChainedRateLimiter, sync_sheets_client


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_tighter_budget_holds_and_both_count():
    clock = FakeClock()
    project = SheetsRateLimiter(per_minute=5, clock=clock, sleep=clock.sleep)
    user_a = SheetsRateLimiter(per_minute=3, clock=clock, sleep=clock.sleep)
    user_b = SheetsRateLimiter(per_minute=3, clock=clock, sleep=clock.sleep)
    a, b = ChainedRateLimiter(project, user_a), ChainedRateLimiter(project, user_b)
    for _ in range(3):
        assert a.acquire("read") == 0
    assert b.acquire("read") == 0 and b.acquire("read") == 0  # the project's 5 are used up now
    assert b.acquire("read") == pytest.approx(60.0)  # waits for the project's window, not its own
    assert clock.slept == [pytest.approx(60.0)]
    assert a.acquire("write") == 0  # reads and writes are separate quotas


@pytest.mark.django_db
def test_the_sync_client_carries_both_budgets(settings, sheets):
    settings.SHEETS_RATE_LIMIT_PER_MINUTE = 60
    settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = 300
    client = sync_sheets_client()
    assert isinstance(client.limiter, ChainedRateLimiter)
    assert [lim.per_minute for lim in client.limiter.limiters] == [300, 60]
    assert sync_sheets_client().limiter.limiters[0] is client.limiter.limiters[0]  # shared by the process
    settings.SHEETS_RATE_LIMIT_PER_MINUTE = 0
    settings.SHEETS_SYNC_PROJECT_RATE_LIMIT_PER_MINUTE = 0
    assert sync_sheets_client().limiter is None

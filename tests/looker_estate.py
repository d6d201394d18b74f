"""A small Looker estate whose every dashboard has a known fate under the default policy (90 days).

Built on the emulator's generator (for realistic elements, filters and layouts), then each dashboard's
activity, owner and folder are set by hand. ``EXPECTED_PLAN`` is what the cleanup must soft-delete.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from sandbox.looker.fixtures import generate_fixture, iso

NOW = datetime.now(UTC).replace(microsecond=0)

# looker id -> (description, last viewed days ago or None, created days ago, overrides)
SPEC: dict[str, tuple[str, int | None, int, dict]] = {
    "101": ("recently viewed", 5, 400, {}),
    "102": ("inactive 200 days", 200, 700, {}),
    "103": ("inactive but favourited", 120, 500, {"favorite_count": 3}),
    "104": ("inactive with an active schedule", 300, 600, {}),
    "105": ("inactive in the protected folder", 400, 900, {"folder_id": "6"}),
    "106": ("never viewed, created 500 days ago", None, 500, {}),
    "107": ("never viewed, created 30 days ago", None, 30, {}),
    "108": ("inactive 150 days, owner gone from Looker", 150, 600, {"user_id": "9999"}),
    "109": ("inactive 95 days, owner without email", 95, 300, {"user_id": "4"}),
    "110": ("already in the trash", 300, 800, {"deleted": True}),
    "111": ("inactive 500 days (pinned by some tests)", 500, 900, {}),
    "112": ("inactive 100 days, disabled schedule only", 100, 400, {}),
    "113": ("inactive 200 days, linked to a LookML dashboard", 200, 500, {"lookml_link_id": "thelook::sales_overview"}),
}
EXPECTED_PLAN = ["102", "106", "108", "109", "111", "112", "113"]
EXPECTED_LOOKML_REPORT = ["thelook::sales_overview"]
OWNER_EMAIL = "owner.five@example.com"


def small_estate() -> dict:
    base = generate_fixture(len(SPEC), seed=11, now=NOW)
    users = base["users"][:5]
    for u in users:
        u["email"] = f"user{u['id']}@example.com"
    users[3]["email"] = None  # user 4 has no email
    users[4]["email"] = OWNER_EMAIL
    templates = [d for d in base["dashboards"] if "::" not in d["id"]]
    dashboards = []
    for (looker_id, (title, viewed, created, overrides)), template in zip(SPEC.items(), templates, strict=True):
        d = copy.deepcopy(template)
        d.update(
            id=looker_id,
            title=f"{title.capitalize()} ({looker_id})",
            folder_id="3",
            user_id="5",
            created_at=iso(NOW - timedelta(days=created)),
            updated_at=iso(NOW - timedelta(days=created)),
            last_viewed_at=iso(NOW - timedelta(days=viewed)) if viewed is not None else None,
            last_accessed_at=iso(NOW - timedelta(days=viewed)) if viewed is not None else None,
            view_count=10 if viewed is not None else 0,
            favorite_count=0,
            deleted=False,
            deleted_at=None,
            deleter_id=None,
            lookml_link_id=None,
        )
        d.update(overrides)
        if d["deleted"]:
            d["deleted_at"] = iso(NOW - timedelta(days=10))
            d["deleter_id"] = "1"
        for element in d["dashboard_elements"]:
            element["dashboard_id"] = looker_id
        for f in d["dashboard_filters"]:
            f["dashboard_id"] = looker_id
        dashboards.append(d)
    lookml = copy.deepcopy(next(d for d in base["dashboards"] if d["id"] == "thelook::sales_overview"))
    lookml.update(
        last_viewed_at=iso(NOW - timedelta(days=300)),
        last_accessed_at=None,
        favorite_count=0,
        created_at=iso(NOW - timedelta(days=900)),
    )
    dashboards.append(lookml)
    plan_template = (
        base["scheduled_plans"][0]
        if base["scheduled_plans"]
        else {
            "name": "delivery",
            "user_id": "5",
            "crontab": "0 7 * * 1",
            "timezone": "UTC",
            "run_as_recipient": False,
            "scheduled_plan_destination": [],
        }
    )
    plans = [
        {**copy.deepcopy(plan_template), "id": "901", "dashboard_id": "104", "enabled": True},
        {**copy.deepcopy(plan_template), "id": "902", "dashboard_id": "112", "enabled": False},
    ]
    return {**base, "users": users, "dashboards": dashboards, "scheduled_plans": plans}

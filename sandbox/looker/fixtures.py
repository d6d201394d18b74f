"""Deterministic, realistic Looker content for the emulator.

:func:`generate_fixture` builds the emulator's store format (also the fixture file format):

.. code-block:: text

    {"version": 1, "generated": {...}, "api_user_id": "1",
     "users": [...], "folders": [...], "dashboards": [...], "scheduled_plans": [...]}

Dashboards carry their ``dashboard_elements`` (each with a ``query``), ``dashboard_filters`` and
``dashboard_layouts`` (positions only: the emulator derives titles and vis types when it renders).
Timestamps are ISO 8601 strings ending in ``Z``; every id is a string.

Activity is deliberately mixed so cleanup policies have something to decide: recently viewed,
stale (100-400 days), very stale, never viewed, favourited, soft-deleted, owned by users who no
longer exist, LookML dashboards (``model::name`` ids) and dashboards linked to them, and
scheduled plans (enabled and disabled).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIXTURE_VERSION = 1
API_USER_ID = "1"

_FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Donald",
    "Katherine",
    "John",
    "Hedy",
    "Tim",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
)
_LAST_NAMES = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Knuth",
    "Johnson",
    "Backus",
    "Lamarr",
    "Berners-Lee",
    "Wilson",
    "van Rossum",
    "Borg",
    "Stroustrup",
)

# (id, name, parent_id, weight for dashboard placement)
_FOLDERS: tuple[tuple[str, str, str | None, int], ...] = (
    ("1", "Shared", None, 2),
    ("2", "Users", None, 0),
    ("3", "Sales", "1", 6),
    ("4", "Marketing", "1", 5),
    ("5", "Finance Certified", "1", 2),
    ("6", "Protected", "1", 1),
    ("7", "Operations", "1", 4),
    ("8", "Sandbox", "1", 5),
    ("9", "Archive", "1", 2),
    ("lookml", "LookML Dashboards", None, 0),
)
PROTECTED_FOLDER_IDS = ("5", "6")

# model -> explore -> (dimensions, measures, tile titles)
_MODELS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {
    "thelook": {
        "order_items": (
            (
                "order_items.created_date",
                "order_items.created_month",
                "order_items.status",
                "products.category",
                "products.brand",
                "users.state",
            ),
            (
                "order_items.count",
                "order_items.total_sale_price",
                "order_items.average_sale_price",
                "order_items.total_gross_margin",
            ),
            (
                "Revenue by Month",
                "Orders by Status",
                "Top Brands",
                "Sales by Category",
                "Gross Margin Trend",
                "Average Order Value",
            ),
        ),
        "users": (
            ("users.created_month", "users.country", "users.state", "users.age_tier", "users.traffic_source"),
            ("users.count", "users.average_age"),
            ("New Users", "Users by Country", "Traffic Sources", "Age Distribution"),
        ),
        "inventory_items": (
            ("inventory_items.created_week", "products.department", "distribution_centers.name"),
            ("inventory_items.count", "inventory_items.total_cost"),
            ("Inventory on Hand", "Stock by Distribution Center", "Inventory Cost"),
        ),
    },
    "finance": {
        "ledger": (
            ("ledger.posted_month", "ledger.account", "ledger.cost_center"),
            ("ledger.total_debit", "ledger.total_credit", "ledger.balance"),
            ("Balance by Account", "Monthly Close", "Cost Center Spend"),
        ),
        "invoices": (
            ("invoices.issued_date", "invoices.customer", "invoices.status"),
            ("invoices.count", "invoices.total_amount", "invoices.days_outstanding"),
            ("Open Invoices", "Days Sales Outstanding", "Invoice Aging"),
        ),
    },
    "marketing": {
        "sessions": (
            ("sessions.start_date", "sessions.landing_page", "sessions.channel"),
            ("sessions.count", "sessions.bounce_rate", "sessions.conversion_rate"),
            ("Sessions by Channel", "Bounce Rate", "Landing Page Performance"),
        ),
        "campaigns": (
            ("campaigns.name", "campaigns.launch_week", "campaigns.channel"),
            ("campaigns.spend", "campaigns.clicks", "campaigns.cost_per_click"),
            ("Campaign Spend", "Click-through by Campaign", "Cost per Click"),
        ),
    },
}
_VIS_TYPES = (
    "looker_line",
    "looker_column",
    "looker_bar",
    "looker_pie",
    "single_value",
    "table",
    "looker_area",
    "looker_scatter",
)
_TITLE_SUBJECTS = (
    "Sales",
    "Revenue",
    "Pipeline",
    "Customer",
    "Marketing",
    "Finance",
    "Inventory",
    "Operations",
    "Retention",
    "Growth",
    "Churn",
    "Support",
    "Product",
    "Web",
)
_TITLE_KINDS = (
    "Overview",
    "Weekly Review",
    "KPIs",
    "Deep Dive",
    "Daily Pulse",
    "Scorecard",
    "Tracker",
    "Executive Summary",
    "Drilldown",
    "Health Check",
)
_TITLE_SUFFIXES = ("", "", "", " (old)", " v2", " - Copy", " EMEA", " APAC", " Q3", " draft")
_FILTER_DEFAULTS = {
    "date_filter": ("7 days", "30 days", "this quarter", "last month", "1 year"),
    "field_filter": ("", "Complete", "USA", "Jeans,Outerwear"),
}
_LOOKML_DASHBOARDS = (
    ("thelook::sales_overview", "Sales Overview (LookML)", "thelook", "order_items"),
    ("thelook::customer_lifetime", "Customer Lifetime (LookML)", "thelook", "users"),
    ("finance::revenue_daily", "Daily Revenue (LookML)", "finance", "ledger"),
    ("marketing::campaign_funnel", "Campaign Funnel (LookML)", "marketing", "campaigns"),
    ("thelook::inventory_health", "Inventory Health (LookML)", "thelook", "inventory_items"),
    ("finance::ar_aging", "AR Aging (LookML)", "finance", "invoices"),
)
_SLUG_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_GRID_COLUMNS = 24


def iso(dt: datetime | None) -> str | None:
    """Format a datetime the way the emulator serves it: UTC, milliseconds, trailing ``Z``."""
    if dt is None:
        return None
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str | None) -> datetime | None:
    """Parse an emulator timestamp back into an aware datetime."""
    if value is None:
        return None
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Ids:
    """Sequential string ids per kind."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def next(self, kind: str) -> str:
        value = self._next.get(kind, 1)
        self._next[kind] = value + 1
        return str(value)


def _layout_components(rng: random.Random, ids: _Ids, element_ids: list[str]) -> list[dict[str, Any]]:
    """Pack tiles of mixed widths onto Looker's 24-column "newspaper" grid."""
    components: list[dict[str, Any]] = []
    row = column = 0
    row_height = 0
    for element_id in element_ids:
        width = rng.choice((6, 8, 8, 12, 12, 24))
        height = rng.choice((4, 6, 6, 8))
        if column + width > _GRID_COLUMNS:
            row += row_height
            column = 0
            row_height = 0
        components.append(
            {
                "id": ids.next("layout_component"),
                "dashboard_element_id": element_id,
                "row": row,
                "column": column,
                "width": width,
                "height": height,
            }
        )
        column += width
        row_height = max(row_height, height)
    return components


def _elements_filters_layout(
    rng: random.Random,
    ids: _Ids,
    dashboard_id: str,
    model: str,
    explore: str,
    n_elements: int,
    n_filters: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    dimensions, measures, tile_titles = _MODELS[model][explore]
    elements: list[dict[str, Any]] = []
    for index in range(n_elements):
        element_id = ids.next("element")
        if index > 0 and rng.random() < 0.12:
            text = rng.choice(("About this dashboard", "Definitions", "Data freshness"))
            elements.append(
                {
                    "id": element_id,
                    "dashboard_id": dashboard_id,
                    "type": "text",
                    "title": None,
                    "title_text": text,
                    "subtitle_text": None,
                    "body_text": f"{text}: numbers refresh nightly from the {model} model.",
                    "note_text": None,
                    "title_hidden": False,
                    "query_id": None,
                    "query": None,
                    "look_id": None,
                    "refresh_interval": None,
                }
            )
            continue
        query_id = ids.next("query")
        picked_dims = rng.sample(dimensions, k=min(len(dimensions), rng.randint(1, 2)))
        picked_measures = rng.sample(measures, k=min(len(measures), rng.randint(1, 2)))
        vis = rng.choice(_VIS_TYPES)
        elements.append(
            {
                "id": element_id,
                "dashboard_id": dashboard_id,
                "type": "vis",
                "title": rng.choice(tile_titles),
                "title_text": None,
                "subtitle_text": None,
                "body_text": None,
                "note_text": rng.choice((None, None, None, "Excludes test orders")),
                "title_hidden": False,
                "query_id": query_id,
                "query": {
                    "id": query_id,
                    "model": model,
                    "view": explore,
                    "fields": picked_dims + picked_measures,
                    "filters": None,
                    "sorts": [f"{picked_measures[0]} desc"],
                    "limit": rng.choice(("500", "5000", "50")),
                    "vis_config": {"type": vis},
                },
                "look_id": None,
                "refresh_interval": None,
            }
        )
    filters: list[dict[str, Any]] = []
    for index in range(n_filters):
        kind = "date_filter" if index == 0 else "field_filter"
        dimension = dimensions[0] if kind == "date_filter" else rng.choice(dimensions[1:])
        label = "Date" if kind == "date_filter" else dimension.split(".")[-1].replace("_", " ").title()
        filters.append(
            {
                "id": ids.next("filter"),
                "dashboard_id": dashboard_id,
                "name": label,
                "title": label,
                "type": kind,
                "default_value": rng.choice(_FILTER_DEFAULTS[kind]),
                "model": model,
                "explore": explore,
                "dimension": dimension,
                "row": index,
                "listens_to_filters": [],
                "allow_multiple_values": True,
                "required": False,
                "ui_config": {"type": "advanced", "display": "popover"},
            }
        )
    layouts = [
        {
            "id": ids.next("layout"),
            "type": "newspaper",
            "active": True,
            "column_width": None,
            "width": None,
            "components": _layout_components(rng, ids, [e["id"] for e in elements]),
        }
    ]
    return elements, filters, layouts


def _activity(rng: random.Random, now: datetime, created: datetime) -> tuple[datetime | None, datetime | None, int]:
    """(last_viewed_at, last_accessed_at, view_count) with a realistic mix."""
    age_days = max((now - created).total_seconds() / 86400.0, 0.0)
    roll = rng.random()
    if roll < 0.35:  # in active use
        ago = rng.uniform(0, min(60.0, age_days))
        views = rng.randint(5, 2000)
    elif roll < 0.65:  # stale: 100-400 days
        ago = rng.uniform(100, 400)
        views = rng.randint(1, 120)
    elif roll < 0.75:  # very stale
        ago = rng.uniform(400, 1000)
        views = rng.randint(1, 40)
    else:  # never viewed
        accessed = None
        if rng.random() < 0.15:  # but scheduled deliveries or API calls touched it
            accessed = now - timedelta(days=rng.uniform(0, min(30.0, age_days)))
        return None, accessed, 0
    if ago > age_days:  # cannot have been viewed before it existed
        ago = rng.uniform(0, age_days)
    viewed = now - timedelta(days=ago)
    accessed = viewed
    if rng.random() < 0.2:  # API or schedule access after the last human view
        accessed = now - timedelta(days=rng.uniform(0, ago))
    return viewed, accessed, views


def _slug(rng: random.Random) -> str:
    return "".join(rng.choices(_SLUG_ALPHABET, k=22))


def generate_fixture(n_dashboards: int, *, seed: int = 7, now: datetime | None = None) -> dict[str, Any]:
    """Generate emulator content with ``n_dashboards`` user-defined dashboards.

    Deterministic for a given ``seed`` and ``now`` (``now`` defaults to the current time, so
    pass it when you need identical output). A few LookML dashboards (``model::name`` ids) come
    on top of ``n_dashboards``.
    """
    if n_dashboards < 0:
        raise ValueError("n_dashboards must be >= 0")
    if now is None:
        now = datetime.now(UTC).replace(microsecond=0)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    rng = random.Random(seed)
    ids = _Ids()

    # Users: about n/20, at least 5; id 1 is the API user the emulator acts as.
    n_users = max(5, n_dashboards // 20)
    users: list[dict[str, Any]] = []
    for index in range(n_users):
        user_id = str(index + 1)
        if index == 0:
            first, last = "API", "Admin"
        else:
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        no_email = index > 0 and (index % 17 == 4 or rng.random() < 0.03)
        email = None if no_email else f"{first}.{last}.{user_id}@example.com".lower().replace(" ", "")
        users.append(
            {
                "id": user_id,
                "first_name": first,
                "last_name": last,
                "display_name": f"{first} {last}",
                "email": email,
                "is_disabled": index > 0 and rng.random() < 0.05,
                "locale": "en",
                "created_at": iso(now - timedelta(days=rng.uniform(30, 1500))),
            }
        )
    user_ids = [u["id"] for u in users]
    # Owners that were deleted from Looker: ids that no users row carries.
    gone_user_ids = [str(n_users + 1000 + k) for k in range(3)]

    folders = [
        {
            "id": folder_id,
            "name": name,
            "parent_id": parent_id,
            "creator_id": API_USER_ID,
            "created_at": iso(now - timedelta(days=1100)),
            "is_personal": False,
            "is_shared_root": folder_id == "1",
            "is_users_root": folder_id == "2",
        }
        for folder_id, name, parent_id, _weight in _FOLDERS
    ]
    placeable = [f for f in _FOLDERS if f[3] > 0]
    folder_choices = [f[0] for f in placeable]
    folder_weights = [f[3] for f in placeable]

    model_explores = [(model, explore) for model, explores in _MODELS.items() for explore in explores]
    lookml_count = max(2, min(len(_LOOKML_DASHBOARDS), n_dashboards // 25))
    lookml_specs = _LOOKML_DASHBOARDS[:lookml_count]

    dashboards: list[dict[str, Any]] = []
    three_years = 3 * 365.0
    for index in range(n_dashboards):
        dashboard_id = ids.next("dashboard")
        created = now - timedelta(days=rng.uniform(1, three_years), seconds=rng.randint(0, 86399))
        viewed, accessed, view_count = _activity(rng, now, created)
        updated = created + (now - created) * rng.random() * rng.random()
        model, explore = rng.choice(model_explores)
        elements, filters, layouts = _elements_filters_layout(
            rng, ids, dashboard_id, model, explore, rng.randint(1, 6), rng.randint(0, 3)
        )
        # Small fixtures still get one of each awkward case, at fixed positions.
        owner_gone = rng.random() < 0.03 or index == 2
        owner = rng.choice(gone_user_ids) if owner_gone else rng.choice(user_ids)
        title = f"{rng.choice(_TITLE_SUBJECTS)} {rng.choice(_TITLE_KINDS)}{rng.choice(_TITLE_SUFFIXES)}"
        deleted = rng.random() < 0.03 or index == 1
        deleted_at = iso(updated + (now - updated) * rng.uniform(0.1, 1.0)) if deleted else None
        linked = rng.random() < 0.02 or index == 3
        dashboards.append(
            {
                "id": dashboard_id,
                "title": title,
                "description": rng.choice(("", f"{title} for the {model} team.", f"Built from {model}.{explore}.")),
                "slug": _slug(rng),
                "folder_id": rng.choices(folder_choices, weights=folder_weights)[0],
                "user_id": owner,
                "hidden": rng.random() < 0.01,
                "created_at": iso(created),
                "updated_at": iso(updated),
                "last_viewed_at": iso(viewed),
                "last_accessed_at": iso(accessed),
                "view_count": view_count,
                "favorite_count": rng.randint(1, 12) if view_count and rng.random() < 0.12 else 0,
                "deleted": deleted,
                "deleted_at": deleted_at,
                "deleter_id": rng.choice(user_ids) if deleted else None,
                "lookml_link_id": rng.choice(lookml_specs)[0] if linked else None,
                "query_timezone": None,
                "refresh_interval": None,
                "preferred_viewer": "dashboards-next",
                "load_configuration": "wait",
                "show_title": True,
                "show_filters_bar": True,
                "crossfilter_enabled": rng.random() < 0.3,
                "dashboard_elements": elements,
                "dashboard_filters": filters,
                "dashboard_layouts": layouts,
            }
        )
        if index == 0:
            dashboards[-1]["folder_id"] = PROTECTED_FOLDER_IDS[1]

    for lookml_id, title, model, explore in lookml_specs:
        created = now - timedelta(days=rng.uniform(200, three_years))
        viewed, accessed, view_count = _activity(rng, now, created)
        elements, filters, layouts = _elements_filters_layout(
            rng, ids, lookml_id, model, explore, rng.randint(2, 6), rng.randint(1, 3)
        )
        dashboards.append(
            {
                "id": lookml_id,
                "title": title,
                "description": f"Defined in LookML ({lookml_id}).",
                "slug": None,
                "folder_id": "lookml",
                "user_id": None,
                "hidden": False,
                "created_at": iso(created),
                "updated_at": iso(created),
                "last_viewed_at": iso(viewed),
                "last_accessed_at": iso(accessed),
                "view_count": view_count,
                "favorite_count": 0,
                "deleted": False,
                "deleted_at": None,
                "deleter_id": None,
                "lookml_link_id": lookml_id,
                "query_timezone": None,
                "refresh_interval": None,
                "preferred_viewer": "dashboards-next",
                "load_configuration": "wait",
                "show_title": True,
                "show_filters_bar": True,
                "crossfilter_enabled": False,
                "dashboard_elements": elements,
                "dashboard_filters": filters,
                "dashboard_layouts": layouts,
            }
        )

    scheduled_plans: list[dict[str, Any]] = []
    for index, dashboard in enumerate(dashboards[:n_dashboards]):
        scheduled = rng.random() < 0.08 or index in (4, 5)
        if not scheduled:
            continue
        for plan_index in range(rng.randint(1, 2)):
            plan_id = ids.next("scheduled_plan")
            owner = rng.choice(user_ids)
            enabled = rng.random() < 0.7
            if plan_index == 0 and index in (4, 5):
                enabled = index == 4
            plan_created = parse_iso(dashboard["created_at"])
            assert plan_created is not None
            scheduled_plans.append(
                {
                    "id": plan_id,
                    "name": f"{dashboard['title']} delivery",
                    "dashboard_id": dashboard["id"],
                    "user_id": owner,
                    "enabled": enabled,
                    "crontab": rng.choice(("0 7 * * 1", "0 6 * * *", "0 9 1 * *")),
                    "timezone": "UTC",
                    "run_as_recipient": False,
                    "created_at": iso(plan_created + (now - plan_created) * rng.random()),
                    "updated_at": iso(now - timedelta(days=rng.uniform(0, 90))),
                    "scheduled_plan_destination": [
                        {
                            "id": ids.next("destination"),
                            "scheduled_plan_id": plan_id,
                            "format": rng.choice(("wysiwyg_pdf", "csv_zip", "wysiwyg_png")),
                            "type": "email",
                            "address": f"team-{rng.randint(1, 40)}@example.com",
                        }
                    ],
                }
            )

    return {
        "version": FIXTURE_VERSION,
        "generated": {"seed": seed, "now": iso(now), "n_dashboards": n_dashboards},
        "api_user_id": API_USER_ID,
        "users": users,
        "folders": folders,
        "dashboards": dashboards,
        "scheduled_plans": scheduled_plans,
    }


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically: a temp file in the same directory, then ``os.replace``.

    With ``overwrite=False`` the file is only created: ``FileExistsError`` if it already exists
    (even when another process creates it at the same moment).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, target)
        else:
            os.link(tmp_name, target)  # atomic create-if-absent
            os.unlink(tmp_name)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def write_fixture(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write fixture (or state) data as compact JSON, atomically."""
    return write_text_atomic(path, json.dumps(data, separators=(",", ":")))


def load_fixture(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a fixture (or state) file written by :func:`write_fixture`."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or "dashboards" not in data:
        raise ValueError(f"{path} is not a Looker emulator fixture")
    return data

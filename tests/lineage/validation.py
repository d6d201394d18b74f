"""Validate OpenLineage events against the vendored spec (core + each facet by its own schemaURL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

HERE = Path(__file__).parent / "schema"
CUSTOM = Path(__file__).resolve().parents[2] / "lineage" / "static" / "lineage" / "schemas"
SPEC_VERSION = "2-0-2"


def registry(site_url: str) -> Registry:
    resources = []
    for path in [HERE / "OpenLineage.json", *sorted((HERE / "facets").glob("*.json"))]:
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    for path in sorted(CUSTOM.glob("*.json")):
        doc = json.loads(path.read_text())
        resources.append((f"{site_url.rstrip('/')}/static/lineage/schemas/{path.name}", Resource.from_contents(doc)))
    return Registry().with_resources(resources)


def _validate(reg: Registry, url: str, instance: Any) -> None:
    base, _, fragment = url.partition("#")
    try:
        reg.get_or_retrieve(base)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"schema {base} is not vendored (facet version drift?)") from exc
    validator = Draft202012Validator({"$ref": url}, registry=reg, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{url}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    found = list((event.get("run") or {}).get("facets", {}).values())
    found += list((event.get("job") or {}).get("facets", {}).values())
    for key, kind in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for dataset in event.get(key) or []:
            found += list((dataset.get("facets") or {}).values()) + list((dataset.get(kind) or {}).values())
    return found


def validate_event(event: dict[str, Any], *, site_url: str, reg: Registry | None = None) -> None:
    """The event against RunEvent of the spec version, then each facet against the schema its _schemaURL names."""
    reg = reg or registry(site_url)
    assert event["schemaURL"] == f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json#/$defs/RunEvent"
    _validate(reg, event["schemaURL"], event)
    for facet in _facets(event):
        _validate(reg, facet["_schemaURL"], facet)

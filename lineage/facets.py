"""This project's custom OpenLineage facets; each has ``_producer`` and a ``_schemaURL`` served from static files.

The JSON schemas live in ``lineage/static/lineage/schemas/`` (served at ``{DATAOPS_SITE_URL}/static/...``).
"""

from __future__ import annotations

from typing import Any

import attr
from django.conf import settings
from openlineage.client.generated.base import RunFacet


def schema_url(name: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/static/lineage/schemas/{name}.json#/$defs/{name}"


@attr.define
class DataOpsRunFacet(RunFacet):
    """Which JobRun of the control plane this is and who answers for it."""

    jobRunId: int | None = attr.field(default=None)  # noqa: N815
    job: str = attr.field(default="")
    trigger: str = attr.field(default="")
    principal: str = attr.field(default="")
    dryRun: bool = attr.field(default=False)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return schema_url("DataOpsRunFacet")


@attr.define
class QueryCostRunFacet(RunFacet):
    """What the run's BigQuery jobs cost: bytes, slot time and the estimated price."""

    bytesProcessed: int = attr.field(default=0)  # noqa: N815
    bytesBilled: int = attr.field(default=0)  # noqa: N815
    slotMs: int = attr.field(default=0)  # noqa: N815
    estimatedCostUsd: str = attr.field(default="0")  # noqa: N815
    pricePerTibUsd: float = attr.field(default=0.0)  # noqa: N815
    bigqueryJobIds: list[str] = attr.field(factory=list)  # noqa: N815
    cacheHit: bool = attr.field(default=False)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return schema_url("QueryCostRunFacet")


@attr.define
class StageRunFacet(RunFacet):
    """One of the design's four metadata stages of a run (extraction, transformation, validation, loading)."""

    stage: str
    outcome: str
    rowsIn: int | None = attr.field(default=None)  # noqa: N815
    rowsOut: int | None = attr.field(default=None)  # noqa: N815
    durationSeconds: float | None = attr.field(default=None)  # noqa: N815
    details: dict[str, Any] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("StageRunFacet")


@attr.define
class GovernanceRunFacet(RunFacet):
    """A governance action (soft delete, restore, publish, approval, quarantine release): who, on what, when."""

    action: str
    actor: str
    objectType: str = attr.field(default="")  # noqa: N815
    objectId: str = attr.field(default="")  # noqa: N815
    jobRunId: int | None = attr.field(default=None)  # noqa: N815
    details: dict[str, Any] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("GovernanceRunFacet")

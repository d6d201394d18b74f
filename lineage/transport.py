"""The default OpenLineage transport: the control plane's own database (``type: dataops_db``).

Registered with openlineage-python's transport factory, so it is configured the library's way too
(``transport: {type: dataops_db}`` in openlineage.yml). Every event the project emits goes through it; when the
library's own configuration names another transport (OPENLINEAGE_URL, OPENLINEAGE_CONFIG / openlineage.yml,
OPENLINEAGE__TRANSPORT__*), the stored event also waits in the outbox for delivery there (see services).
"""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.serde import Serde
from openlineage.client.transport import Config, Transport, register_transport


@attr.define
class DatabaseConfig(Config):
    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> DatabaseConfig:  # noqa: ARG003
        return cls()


@register_transport
class DatabaseTransport(Transport):
    kind = "dataops_db"
    config_class = DatabaseConfig

    def __init__(self, config: DatabaseConfig | None = None) -> None:
        self.config = config or DatabaseConfig()

    def emit(self, event: Any) -> Any:
        from .services import lineage_event_store

        return lineage_event_store(payload=Serde.to_dict(event))

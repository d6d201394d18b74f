"""Data lineage (OpenLineage): see ``lineage.services``.

openlineage-python's package ``openlineage.client`` imports, in its ``__init__``, the client and with it every
transport it ships (HTTP through requests, async HTTP through httpx and asyncio, Kafka, Datadog...): about 0.2 s
of CPU in each process, a third of a small ``run_job`` (issue 15). A job run only needs the event classes
(``event_v2``, ``facet_v2``, ``generated``), the serializer and the UUID helper, which import none of that. So
this package, imported before any of its modules, registers ``openlineage.client`` unexecuted (its submodules
import from its path as usual); the first use of one of its own names (``OpenLineageClient``...) runs its
``__init__`` then, in place (:func:`_client_package`). ``lineage.services`` uses the client only when the library
is configured (an outside transport, filters, facets, tags); otherwise it stores the event as the client would.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

_LOCK = threading.Lock()


def _client_package() -> None:
    if "openlineage.client" in sys.modules:  # imported already (fully, or registered here): leave it
        return
    spec = importlib.util.find_spec("openlineage.client")
    if spec is None or spec.loader is None:  # not installed: the import errors say so where it is used
        return
    package = importlib.util.module_from_spec(spec)  # its __path__ and __spec__, its code not run yet
    loaded = False

    def __getattr__(name: str):  # noqa: N807 - PEP 562: the package's first missing name
        nonlocal loaded
        if name.startswith("__"):
            raise AttributeError(name)
        if importlib.util.find_spec(f"openlineage.client.{name}") is not None:  # a submodule: import just it
            return importlib.import_module(f"openlineage.client.{name}")
        with _LOCK:
            if not loaded:
                loaded = True
                del package.__getattr__  # the package's own names from now on
                spec.loader.exec_module(package)
        return ModuleType.__getattribute__(package, name)

    package.__getattr__ = __getattr__
    sys.modules["openlineage.client"] = package


_client_package()

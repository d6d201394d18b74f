"""Functions imported on their first call, for modules every process imports at Django set-up.

Admin modules (imported by the admin's autodiscovery) and approval registrations (``ready()``) name service
functions whose modules import the SDKs: looker_sdk, google-cloud-bigquery, gspread, polars, sqlglot. Naming them
through ``lazy_function`` keeps those imports out of a process that never calls them: every ``run_job`` (one per
Airflow task) would otherwise pay about a second for them at start-up (issue 15).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_function(dotted_path: str) -> Callable[..., Any]:
    """A stand-in for the function at ``dotted_path`` ("package.module.name"), imported when first called.

    The function is looked up on every call, so a test that patches it on its module is seen.
    """
    module_name, _, name = dotted_path.rpartition(".")
    if not module_name or not name:
        raise ValueError(f"lazy_function expects 'package.module.name', got {dotted_path!r}")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module_name), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__module__ = module_name
    call.__doc__ = f"{dotted_path}, imported on the first call."
    return call

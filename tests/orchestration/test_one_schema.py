"""One declaration per job drives the admin form, the API's validation and the Airflow DAG's params (issue 11).

The three are generated from ``JobSpec.params_schema()``; these tests read each one back and check that they name
the same parameters with the same types, bounds, choices and defaults, and refuse the same bad values with the
same words. The DAG's params are checked twice: in ``dags/job_params.json`` (what the DAG file reads) and as
Airflow's own DagBag parses them.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from django import forms

from orchestration.params import (
    DAG_PARAMS_FILE,
    api_params_validate,
    dag_params,
    dag_params_text,
    params_form_class,
    params_serializer_class,
)
from orchestration.registry import jobs_all
from tests.airflow.conftest import AIRFLOW_VENV, ROOT, airflow_installed
from tests.conftest import require

pytestmark = pytest.mark.django_db

# Bad values per type, and a value out of bounds: every reader must refuse each one.
BAD = {"int": ["x", "1.5", "-1000000"], "date": ["2026-13-01", "yesterday"]}  # a checkbox sends no bad bool


def _form_view(field: forms.Field) -> dict:
    widget = field.widget
    view: dict = {"required": field.required, "initial": field.initial}
    attrs = widget.attrs
    if "min" in attrs and getattr(widget, "input_type", "") != "date":
        view.update(minimum=attrs["min"], maximum=attrs["max"])
    choices = [c for c, _ in getattr(widget, "choices", []) if c != ""]
    if choices:
        view["enum"] = choices
    return view


def test_form_serializer_and_dag_params_come_from_the_one_declaration():
    assert DAG_PARAMS_FILE.read_text() == dag_params_text(), "dags/job_params.json is stale: manage.py dag_params"
    on_disk = json.loads(DAG_PARAMS_FILE.read_text())
    for spec in jobs_all():
        schema = spec.params_schema()
        props = schema["properties"]
        form = params_form_class(spec)()
        serializer = params_serializer_class(spec)()
        dag = dag_params(spec)
        names = set(props)
        assert set(form.fields) - {"dry_run"} == names == set(serializer.fields) == set(dag) == set(on_disk[spec.name])
        assert ("dry_run" in form.fields) == spec.supports_dry_run
        for name, prop in props.items():
            param = spec.params[name]
            f = _form_view(form.fields[name])
            s = serializer.fields[name]
            d = dag[name]
            assert f["required"] == s.required == (name in schema["required"]) == param.required, (spec.name, name)
            assert d["type"] == [prop["type"], "null"] and d["description"].startswith(param.help)
            if prop["type"] == "integer":
                assert f["minimum"] == s.schema["minimum"] == d["minimum"] == prop["minimum"], (spec.name, name)
                assert f["maximum"] == s.schema["maximum"] == d["maximum"] == prop["maximum"], (spec.name, name)
            if "enum" in prop:
                assert f["enum"] == s.schema["enum"] == d["enum"] == prop["enum"], (spec.name, name)
            if prop.get("format") == "date":
                attrs = form.fields[name].widget.attrs
                assert form.fields[name].widget.input_type == "date" and d["format"] == "date"
                assert attrs["min"] == prop["formatMinimum"] and attrs["max"] == prop["formatMaximum"]
            if "default" in prop:
                assert f["initial"] == s.default == prop["default"], (spec.name, name)
                if not callable(param.default):
                    assert d["default"] == prop["default"], (spec.name, name)


def test_the_form_and_the_api_refuse_the_same_values_with_the_same_words():
    checked = 0
    for spec in jobs_all():
        for name, param in spec.params.items():
            for bad in BAD.get(param.type, []):
                raw = {n: p.default_value() for n, p in spec.params.items() if p.default_value() is not None}
                raw |= {"start": "2026-10-01", "end": "2026-10-31"} if spec.name == "sales_report" else {}
                raw[name] = bad
                form_cls = params_form_class(spec)
                form_cls.check_context = False  # the outside-world check has its own test (test_trigger_form)
                form = form_cls(data=raw)
                assert not form.is_valid(), (spec.name, name, bad)
                _, api = api_params_validate(spec, raw)
                assert form.errors[name] == api[name], (spec.name, name, bad)
                checked += 1
    assert checked >= 10


def test_the_sales_form_offers_dropdowns_date_pickers_and_defaults():
    spec = next(s for s in jobs_all() if s.name == "sales_report")
    html = str(params_form_class(spec)())
    assert '<select name="grain"' in html and '<option value="day" selected>' in html
    assert '<select name="query"' in html and "daily_revenue" in html  # choices from the queries the project knows
    assert 'type="date"' in html and 'min="2000-01-01"' in html
    assert 'type="radio"' in html and 'name="dry_run"' in html  # a mode, not a box that defaults to acting


DAG_PARAMS_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "params": {d.dag_id: {k: {**d.params.get_param(k).schema, "description": d.params.get_param(k).description,
                              "default": d.params.get_param(k).value} for k in d.params} for d in bag.dags.values()},
}))
"""


@pytest.mark.airflow
def test_airflow_parses_the_same_params(tmp_path):
    require(airflow_installed(), f"needs Airflow 3.3 in {AIRFLOW_VENV} (scripts/airflow.sh install)")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [str(AIRFLOW_VENV / "bin" / "python"), "-c", DAG_PARAMS_PROBE, str(ROOT / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    for spec in jobs_all():
        assert parsed["params"][spec.name] == dag_params(spec), spec.name

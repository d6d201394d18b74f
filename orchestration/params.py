"""One parameter declaration per job, three readers: the admin trigger form, the API's validation, Airflow's ``params``.

A job declares its parameters once (``JobSpec.params``, :class:`~orchestration.registry.ParamSpec`). From that
declaration's JSON Schema (``JobSpec.params_schema()``) this module builds

- the admin form (:func:`params_form_class`): a select for choices, a date picker for dates, number inputs with
  their bounds, defaults filled in; every field parses with the parameter's own ``ParamSpec.parse``, so the form
  says exactly what the API, the CLI and ``run_job`` say;
- the API's input serializer (:func:`params_serializer_class`): the same fields, bounds and choices (the OpenAPI
  schema shows them), the same parse;
- the Airflow DAG's ``params`` (:func:`dag_params`): written to ``dags/job_params.json`` by
  ``manage.py dag_params --write`` (the DAG file imports nothing of the project, so it reads that file).

Checks that need the outside world (the data BigQuery holds, the regions it knows) are a job's
``params_context_check``: the form and the API run it before anything is created, so a bad range never
becomes a failed run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework import serializers

from .registry import JobError, JobSpec, ParamOutOfBounds, ParamSpec, _preview, jobs_all

DAG_PARAMS_FILE = Path(settings.BASE_DIR) / "dags" / "job_params.json"
# JSON Schema keywords Airflow's ``Param`` validates (``formatMinimum`` and friends are not among them).
_DAG_KEYWORDS = ("type", "format", "enum", "pattern", "minimum", "maximum", "maxLength", "maxItems", "items")


def param_error(spec: ParamSpec, raw: Any) -> str:
    """Why ``raw`` is not a valid value of ``spec``, as every caller words it ('' when it is valid)."""
    try:
        spec.parse(raw)
    except ParamOutOfBounds as exc:
        return f"{_preview(raw)} is out of bounds: {exc}"
    except (TypeError, ValueError, OverflowError) as exc:
        return f"{_preview(raw)} is not a valid {spec.type}: {exc}"
    return ""


def _field_of(message: str, names: list[str]) -> str | None:
    """The parameter a cross-field message is about (its first word naming one), else None (the whole form)."""
    for word in message.replace("(", " ").replace(")", " ").split():
        if word in names:
            return word
    return None


def params_errors(spec: JobSpec, raw: Mapping[str, Any], *, context: bool = True) -> dict[str | None, list[str]]:
    """Every problem with ``raw`` as ``{parameter (None: the whole set): [messages]}``, empty when it may run.

    Field by field with the parameter's own parse, then the job's cross-field check, then (``context``) the job's
    check against the outside world (``params_context_check``: does the data exist?).
    """
    errors: dict[str | None, list[str]] = {}
    try:
        parsed = spec.params_parse(raw)
    except JobError:
        for name, p in spec.params.items():
            value = raw.get(name)
            if value in (None, "", []):
                if p.required:
                    errors.setdefault(name, []).append(f"required ({p.help})")
                continue
            problem = param_error(p, value)
            if problem:
                errors.setdefault(name, []).append(problem)
        if not errors:  # the cross-field check (end before start...)
            try:
                spec.params_parse(raw)
            except JobError as exc:
                message = str(exc).removeprefix(f"{spec.name}: ")
                errors.setdefault(_field_of(message, list(spec.params)), []).append(message)
        return errors
    if context and spec.params_context_check:
        for name, message in import_string(spec.params_context_check)(params=parsed).items():
            errors.setdefault(name if name in spec.params else None, []).append(message)
    return errors


def param_choices(spec: JobSpec) -> dict[str, list[str]]:
    """Choices known only at run time (the sales queries in the admin), by parameter; cheap, no network."""
    return import_string(spec.param_choices)() if spec.param_choices else {}


# --- the admin form -------------------------------------------------------------------------------------------


class ParamFormField(forms.Field):
    """A form field that parses with the parameter's own ``ParamSpec.parse`` (the API and the CLI use the same)."""

    def __init__(self, *, param: ParamSpec, **kwargs: Any) -> None:
        self.param = param
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, list):
            value = [v for v in value if v]
        if value in self.empty_values or value == []:
            return None
        problem = param_error(self.param, value)
        if problem:
            raise forms.ValidationError(problem)
        return self.param.parse(value)


def _form_field(name: str, param: ParamSpec, schema: dict[str, Any], choices: list[str] | None) -> forms.Field:
    initial = schema.get("default")
    attrs: dict[str, Any] = {"data-param": name}
    if schema.get("type") == "boolean":
        return ParamFormField(
            param=param, required=False, initial=bool(initial), help_text=param.help, widget=forms.CheckboxInput
        )
    if schema.get("type") == "integer":
        attrs.update(min=schema["minimum"], max=schema["maximum"], step=1)
        widget: forms.Widget = forms.NumberInput(attrs=attrs)
    elif schema.get("format") == "date":
        attrs.update(type="date", min=schema.get("formatMinimum"), max=schema.get("formatMaximum"))
        widget = forms.DateInput(attrs=attrs)
    elif schema.get("type") == "array":
        options = choices if choices is not None else schema["items"].get("enum")
        if options:
            widget = forms.CheckboxSelectMultiple(attrs=attrs, choices=[(c, c) for c in options])
        else:
            attrs.update(maxlength=schema["maxItems"] * (schema["items"]["maxLength"] + 1))
            widget = forms.TextInput(attrs=attrs)
    else:
        options = choices if choices is not None else schema.get("enum")
        if options:
            blank = [] if param.required or initial is not None else [("", "---------")]
            widget = forms.Select(attrs=attrs, choices=blank + [(c, c) for c in options])
        else:
            attrs.update(maxlength=schema["maxLength"])
            widget = forms.TextInput(attrs=attrs)
    return ParamFormField(param=param, required=param.required, initial=initial, help_text=param.help, widget=widget)


class JobParamsForm(forms.Form):
    """Base of the generated forms: per-field errors, then the job's cross-field and data checks, inline."""

    spec: JobSpec
    check_context = True

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        raw = {k: v for k, v in data.items() if k in self.spec.params and v not in (None, "", [])}
        for name, messages in params_errors(self.spec, raw, context=self.check_context).items():
            for message in messages:
                self.add_error(name, message)
        return data

    def params(self) -> dict[str, Any]:
        """The parameters as ``job_run_request`` takes them (ISO dates, lists), only those given."""
        return {k: v for k, v in self.cleaned_data.items() if k in self.spec.params and v not in (None, "", [])}


def params_form_class(spec: JobSpec, *, dry_run_field: bool = True) -> type[JobParamsForm]:
    """The admin trigger form of ``spec``, generated from its parameter schema."""
    schema = spec.params_schema()["properties"]
    dynamic = param_choices(spec)
    fields: dict[str, Any] = {
        name: _form_field(name, param, schema[name], dynamic.get(name)) for name, param in spec.params.items()
    }
    if spec.supports_dry_run and dry_run_field:
        # A choice, not a checkbox: nobody deletes by leaving a box unticked. A real run of a job that confirms
        # (the cleanup) shows its plan first and changes nothing until the plan is confirmed.
        fields["dry_run"] = forms.TypedChoiceField(
            label="Mode",
            choices=[
                ("", "Real run (a job that deletes shows its plan first and asks)"),
                ("on", "Dry run: plan only, change nothing"),
            ],  # fmt: skip
            coerce=bool,
            empty_value=False,
            required=False,
            initial="",
            widget=forms.RadioSelect,
        )
    fields["spec"] = spec
    return type(f"{spec.name}ParamsForm", (JobParamsForm,), fields)


# --- the API -----------------------------------------------------------------------------------------------------


class ParamSerializerField(serializers.Field):
    """An API field that parses with the parameter's own ``ParamSpec.parse``."""

    def __init__(self, *, param: ParamSpec, schema: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.param = param
        self.schema = schema or {}  # the OpenAPI document shows the bounds and choices
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        problem = param_error(self.param, data)
        if problem:
            raise serializers.ValidationError(problem)
        return self.param.parse(data)

    def to_representation(self, value: Any) -> Any:
        return value


_OPENAPI_TYPES = {"integer": "integer", "boolean": "boolean", "string": "string", "array": "array"}


def _serializer_field(param: ParamSpec, schema: dict[str, Any], choices: list[str] | None) -> serializers.Field:
    shown = dict(schema)
    if choices is not None:
        if schema.get("type") == "array":
            shown["items"] = {**schema["items"], "enum": choices}
        else:
            shown["enum"] = choices
    return ParamSerializerField(
        param=param,
        schema=shown,
        required=param.required,
        allow_null=not param.required,
        help_text=param.help,
        default=serializers.empty if param.required else schema.get("default"),
    )


def params_serializer_class(spec: JobSpec) -> type[serializers.Serializer]:
    """The API's serializer of ``spec``'s parameters, generated from the same schema as the form."""
    schema = spec.params_schema()["properties"]
    dynamic = param_choices(spec)
    fields: dict[str, Any] = {
        name: _serializer_field(param, schema[name], dynamic.get(name)) for name, param in spec.params.items()
    }

    def validate(self: serializers.Serializer, attrs: dict[str, Any]) -> dict[str, Any]:
        problems = params_errors(spec, {k: v for k, v in attrs.items() if v not in (None, "", [])})
        if problems:
            raise serializers.ValidationError(
                {(k or serializers.api_settings.NON_FIELD_ERRORS_KEY): v for k, v in problems.items()}
            )
        return attrs

    fields["validate"] = validate
    return type(f"{spec.name}ParamsSerializer", (serializers.Serializer,), fields)


def api_params_validate(spec: JobSpec, raw: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Validate raw API parameters with the generated serializer: (values given, {field: [errors]})."""
    if not isinstance(raw, Mapping):
        return {}, {"params": ["must be an object of parameter name to value"]}
    unknown = sorted(str(k)[:40] for k in raw if k not in spec.params)
    if unknown:
        return {}, {"params": [f"unknown parameter(s) {', '.join(unknown[:10])}; known: {', '.join(spec.params)}"]}
    serializer = params_serializer_class(spec)(data=dict(raw))
    if not serializer.is_valid():
        return {}, {k: [str(m) for m in v] for k, v in serializer.errors.items()}
    return {k: v for k, v in raw.items() if v not in (None, "", [])}, {}


# --- Airflow -----------------------------------------------------------------------------------------------------


def dag_params(spec: JobSpec) -> dict[str, dict[str, Any]]:
    """The DAG's ``params`` of ``spec`` (``Param`` keyword arguments), from the same schema as the form.

    Every value may stay null: a run the control plane triggers carries only ``{"job_run_id": N}`` in its conf, and
    a null parameter means the job's own default. Bounds that move with time ("today + a year") and defaults read
    from settings are left to ``run_job``, which parses every value again.
    """
    schema = spec.params_schema()["properties"]
    out: dict[str, dict[str, Any]] = {}
    for name, param in spec.params.items():
        prop = schema[name]
        entry: dict[str, Any] = {k: prop[k] for k in _DAG_KEYWORDS if k in prop}
        entry["type"] = [prop["type"], "null"]
        static_default = param.default if not callable(param.default) else None
        entry["default"] = static_default
        entry["description"] = param.help + (" (required)" if param.required else "")
        if callable(param.min):
            entry.pop("minimum", None)
        if callable(param.max):
            entry.pop("maximum", None)
        out[name] = entry
    return out


def dag_params_document() -> dict[str, dict[str, dict[str, Any]]]:
    """Every job's DAG ``params``, as ``dags/job_params.json`` holds them."""
    return {spec.name: dag_params(spec) for spec in jobs_all()}


def dag_params_text() -> str:
    return json.dumps(dag_params_document(), indent=2, sort_keys=True) + "\n"

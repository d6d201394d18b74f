"""The admin's "Run a job" page and its live cost estimate (issue 11).

The form is generated from the job's parameter declaration (:mod:`orchestration.params`) and refuses bad input
inline before any JobRun exists: a value out of its type or bounds, end before start, a range beyond the data, a
region or query that does not exist. A job that confirms (the cleanup) shows its plan with the numbers first; a
sales report over a sheet that shows another period says so and asks. The estimate endpoint answers the form's
JavaScript as the fields change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.module_loading import import_string

from connectors.errors import ConnectorError

from .approvals import job_confirmation
from .models import JobRun
from .params import params_form_class
from .registry import JobError, JobFailed, JobSpec, job_get
from .services import job_run_request

_SHEET_CHECKS = {"sales_report": "sales.params.report_destination_check"}


def _spec_for(request, job: str) -> JobSpec:
    from .admin import job_trigger_allowed

    try:
        spec = job_get(job)
    except JobError as exc:
        raise PermissionDenied(str(exc)) from exc
    if not job_trigger_allowed(request.user, spec):
        raise PermissionDenied(f"you may not run {spec.name}")
    return spec


def trigger_view(model_admin: Any, request, job: str):
    """GET: the form. POST: check, then preview/confirm, estimate, or run (redirect to the run)."""
    spec = _spec_for(request, job)
    form = params_form_class(spec)(request.POST or None)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Run {spec.title}",
        "spec": spec,
        "form": form,
        "opts": model_admin.model._meta,
        "estimate_url": reverse("admin:orchestration_jobrun_estimate", args=[spec.name]) if spec.estimator else "",
        "confirms": job_confirmation(spec.name) is not None,
    }

    def page():
        return TemplateResponse(request, "admin/orchestration/jobrun/trigger.html", context)

    if request.method != "POST" or not form.is_valid():
        return page()
    dry_run = bool(form.cleaned_data.get("dry_run"))
    params = form.params()
    confirm = job_confirmation(spec.name) if not dry_run else None
    if confirm is not None:
        try:
            preview = confirm(params=spec.params_parse(params))
        except (JobError, JobFailed) as exc:
            form.add_error(None, str(exc))
            return page()
        context["preview"] = preview
        if "_confirm" not in request.POST or request.POST.get("plan_sha256", "") != preview.plan_sha256:
            if "_confirm" in request.POST:
                model_admin.message_user(
                    request, "The plan changed since you saw it: read it again before confirming.", messages.WARNING
                )
            return page()
    if spec.estimator and "_estimate" in request.POST:
        try:
            context["estimate"] = import_string(spec.estimator)(params=spec.params_parse(params)).text()
        except (JobError, JobFailed) as exc:
            form.add_error(None, str(exc))
        return page()
    sheet_check = _SHEET_CHECKS.get(spec.name)
    if sheet_check and not dry_run:
        try:
            warning = import_string(sheet_check)(params=spec.params_parse(params))
        except (JobError, JobFailed, ConnectorError) as exc:
            form.add_error(None, f"could not read the destination sheet: {exc}")
            return page()
        if warning and request.POST.get("_overwrite_confirmed") != warning.token:
            context["sheet_warning"] = warning
            return page()
    try:
        run = job_run_request(
            job=spec.name, params=params, dry_run=dry_run, trigger=JobRun.Trigger.ADMIN, actor=request.user
        )
    except JobError as exc:
        form.add_error(None, str(exc))
        return page()
    run.refresh_from_db()
    if run.status == JobRun.Status.FAILED_TO_TRIGGER:
        model_admin.message_user(request, f"{run} could not be triggered: {run.error}", messages.ERROR)
    else:
        where = f" in Airflow as {run.dag_id}/{run.dag_run_id}" if run.follows_airflow else ""
        model_admin.message_user(
            request, f"{run} queued{where}" + (f": {run.status}" if run.is_finished else ""), messages.SUCCESS
        )
    return HttpResponseRedirect(reverse("admin:orchestration_jobrun_change", args=[run.pk]))


def estimate_view(model_admin: Any, request, job: str) -> JsonResponse:
    """JSON for the form's script: the field errors, or the dry-run estimate (bytes, billed bytes, cost) and data.

    A GET with the form's fields; it creates nothing. BigQuery bills every query at least 10 MiB: the answer
    gives what the run would bill, not only what it would read.
    """
    spec = _spec_for(request, job)
    if not spec.estimator:
        return JsonResponse({"ok": False, "errors": {"__all__": [f"{spec.name} has no cost estimate"]}}, status=404)
    form = params_form_class(spec, dry_run_field=False)(request.GET)
    body: dict[str, Any] = {"ok": False}
    if spec.name == "sales_report":
        from sales.params import sales_data_availability

        try:
            body["data"] = sales_data_availability().as_dict()
        except ConnectorError as exc:
            body["data_error"] = str(exc)
    if not form.is_valid():
        body["errors"] = {k: [str(m) for m in v] for k, v in form.errors.items()}
        return JsonResponse(body)
    try:
        estimate = import_string(spec.estimator)(params=spec.params_parse(form.params()))
    except (JobError, JobFailed) as exc:
        body["errors"] = {"__all__": [str(exc)]}
        return JsonResponse(body)
    body.update(ok=True, text=estimate.text(), **estimate.as_dict())
    return JsonResponse(body)

"""Views outside the admin: the Prometheus endpoint and the "was this useful?" answer."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from .metrics import metrics_render
from .selectors import feedback_target
from .services import FEEDBACK_MODELS, feedback_record


def _bearer_ok(request: HttpRequest) -> bool:
    token = settings.MONITORING_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not token or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Allowed with ``Authorization: Bearer $MONITORING_METRICS_TOKEN`` or for a logged-in
    user with ``monitoring.view_metrics`` (Platform Admins, Auditors)."""
    if not _bearer_ok(request):
        user = request.user
        if not user.is_authenticated:
            response = HttpResponse(
                "metrics need a bearer token or a staff login\n", status=401, content_type="text/plain"
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        if not user.has_perm("monitoring.view_metrics"):
            return HttpResponse("you may not read the metrics\n", status=403, content_type="text/plain")
    return HttpResponse(metrics_render(disk_path=str(settings.VAR_DIR)), content_type=CONTENT_TYPE_LATEST)


@require_POST
@login_required
def feedback(request: HttpRequest, label: str, object_id: str) -> HttpResponse:
    """Record a "was this useful?" answer on a report or review, then go back to it."""
    if label not in FEEDBACK_MODELS:
        raise Http404("no feedback on this kind of object")
    if not request.user.has_perm("monitoring.add_feedback"):
        raise PermissionDenied("you may not give feedback")
    target = feedback_target(label=label, object_id=object_id)
    if target is None:
        raise Http404("no such object")
    useful = request.POST.get("useful") == "yes"
    feedback_record(target=target, user=request.user, useful=useful, comment=request.POST.get("comment", ""))
    messages.success(request, "Thank you: your feedback was recorded.")
    back = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        app_label, model_name = label.split(".")
        back = reverse(f"admin:{app_label}_{model_name}_change", args=[target.pk])
    return HttpResponseRedirect(back)

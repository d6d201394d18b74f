"""The console's pages outside the admin's models: the 403 page, the site root, and setting one's time zone."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponseForbidden, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template import loader
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .services import TimeZoneError, user_time_zone_set
from .timezones import SESSION_KEY

# The admin's standard pages and the permission each needs (any one of them).
_PAGE_PERMISSIONS = {
    "changelist": ("view", "change"),
    "change": ("view", "change"),
    "history": ("view", "change"),
    "add": ("add",),
    "delete": ("delete",),
}


def missing_permission(request, exception: Exception | None) -> str:
    """What the refused request needed, in words: the exception's own message, else the admin page's permission."""
    message = str(exception or "").strip()
    if message:
        return message
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return ""
    name = match.url_name or ""
    if match.namespace == "admin" and "_" in name:
        page = name.rsplit("_", 1)[1]
        perms = _PAGE_PERMISSIONS.get(page)
        if perms:
            from django.contrib import admin

            for model in admin.site._registry:
                prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
                if name == prefix + page:
                    codes = " or ".join(f"{model._meta.app_label}.{p}_{model._meta.model_name}" for p in perms)
                    return f"this page needs the permission {codes} ({model._meta.verbose_name_plural})"
    return ""


def permission_denied(request, exception=None):
    """The styled 403 page: what was refused, which permission it needs, and the way home."""
    template = loader.get_template("403.html")
    context = {
        "missing": missing_permission(request, exception),
        "path": request.path,
        "home_url": reverse("admin:index"),
        "site_header": "DataOps control plane",
    }
    return HttpResponseForbidden(template.render(context, request))


def site_root(request):
    """The site's root ("View site"): each person's home in the admin."""
    return redirect("admin:index")


@require_POST
@staff_member_required
def time_zone_set(request):
    """Set one's own time zone: ``source=browser`` (the browser's default, sent once by console/timezone.js, never
    overriding a choice) or ``source=chosen`` (the home's form)."""
    source = "browser" if request.POST.get("source") == "browser" else "chosen"
    try:
        profile = user_time_zone_set(user=request.user, time_zone=request.POST.get("time_zone", ""), source=source)
    except TimeZoneError as exc:
        if source == "browser":
            return JsonResponse({"error": str(exc)}, status=400)
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:index"))
    request.session[SESSION_KEY] = profile.time_zone
    if source == "browser":
        return JsonResponse({"time_zone": profile.time_zone})
    messages.success(request, f"Times are now shown in {profile.time_zone}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("admin:index")
    return HttpResponseRedirect(target)

"""Admin: the data classification (read-only page from the registry) and the reveals of masked values."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from dataops_site.admin_base import ReadOnlyAdmin

from .models import RevealGrant
from .selectors import classification_table


def classification_view(request):
    """The read-only classification page: every declared dataset's columns, levels and personal-data marks."""
    if not request.user.has_perm("security.view_classification"):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Data classification",
        **classification_table(user=request.user),
    }
    return TemplateResponse(request, "admin/security/classification.html", context)


@admin.register(RevealGrant)
class RevealGrantAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "dataset_or_model", "object_ref", "level", "created_at", "expires_at")
    list_select_related = ("user",)
    list_filter = ("dataset_or_model", "level")
    search_fields = ("object_ref", "user__username", "reason")
    date_hierarchy = "created_at"

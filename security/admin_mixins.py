"""Admin building blocks for records holding classified values (issue 12).

:class:`ClassifiedAdminMixin` records each view of a record's detail page (``security.record_read``), knows who is
looking (so display methods can mask by clearance) and adds a "Reveal values" form: a reason, a time limit, an
audit event.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .access import VIA_ADMIN, needs_access_record, record_access
from .masking import mask_row
from .reveal import RevealRefused, reveal_active, reveal_allowed, value_reveal

VIEWER_ATTR = "_security_viewer"


def viewer_of(obj: Any) -> Any:
    """The user an admin page loaded ``obj`` for (None outside the admin: masks everything above public)."""
    return getattr(obj, VIEWER_ATTR, None)


def values_table(dataset: str, row: dict[str, Any], user: Any, *, revealed: bool = False) -> str:
    """A row's values as a two-column table, masked by ``user``'s clearance."""
    shown = mask_row(dataset, row, user, revealed=revealed)
    return format_html(
        "<table class='security-values'><tbody>{}</tbody></table>",
        format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, "" if v is None else v) for k, v in shown.items())
        ),
    )


class ClassifiedAdminMixin:
    """For a ModelAdmin whose records carry classified values (``classified_model``: ``quality.quarantinedrow``)."""

    classified_model: str = ""
    change_form_template = "admin/security/classified_change_form.html"

    def classified_ref(self, obj: Any) -> str:
        return str(obj.pk)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            setattr(obj, VIEWER_ATTR, request.user)
            obj._security_revealed = reveal_active(request.user, self.classified_model, self.classified_ref(obj))
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if obj is not None and request.method == "GET" and self.has_view_permission(request, obj):
            if needs_access_record(self.classified_model):
                record_access(
                    request.user,
                    dataset_or_model=self.classified_model,
                    object_ref=self.classified_ref(obj),
                    purpose="admin detail page",
                    via=VIA_ADMIN,
                )
            extra_context["security_reveal"] = {
                "allowed": reveal_allowed(request.user),
                "active": obj._security_revealed,
                "url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_reveal", args=[obj.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_reveal"
        return [path("<int:pk>/reveal/", self.admin_site.admin_view(self.reveal_view), name=name), *super().get_urls()]

    def reveal_view(self, request, pk: int):
        obj = get_object_or_404(self.model, pk=pk)
        if request.method != "POST" or not self.has_view_permission(request, obj):
            raise PermissionDenied
        try:
            grant = value_reveal(
                user=request.user,
                dataset_or_model=self.classified_model,
                object_ref=self.classified_ref(obj),
                reason=request.POST.get("reason", ""),
            )
        except RevealRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Values revealed until {grant.expires_at:%H:%M} UTC (audited).")
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[pk]))

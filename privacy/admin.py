"""Data-subject requests and compliance evidence in the admin.

- the requests' list (read-only: each was made through the search page, by pseudonym only);
- ``search/``: find everything about a person, then erase or pseudonymise it (Data Protection);
- ``evidence/``: the GDPR record of processing, SOX change evidence and the access report, as a printable page
  or CSV (Auditors, Data Protection, Platform Admins).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from .evidence import REPORTS, evidence_csv, evidence_export
from .models import SubjectRequest
from .subjects import PLACES, SubjectRequestError, identifier_parse, subject_erase, subject_search


@admin.register(SubjectRequest)
class SubjectRequestAdmin(admin.ModelAdmin):
    list_display = ("pk", "created_at", "kind", "subject", "identifier_kind", "requested_by", "reason")
    list_select_related = ("requested_by",)
    list_filter = ("kind", "identifier_kind")
    search_fields = ("subject", "reason")
    change_list_template = "admin/privacy/subjectrequest/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # made on the search page only

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of a request is evidence

    def get_urls(self):
        return [
            path("search/", self.admin_site.admin_view(self.search_view), name="privacy_subjectrequest_search"),
            path("evidence/", self.admin_site.admin_view(self.evidence_view), name="privacy_subjectrequest_evidence"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_search": request.user.has_perm("privacy.search_subject"),
            "can_evidence": request.user.has_perm("privacy.view_evidence"),
        }
        return super().changelist_view(request, extra_context)

    def search_view(self, request):
        """GET: the form. POST action=find: what is stored, per place. POST action=erase|pseudonymise: do it."""
        if not request.user.has_perm("privacy.search_subject"):
            raise PermissionDenied("finding a person's data needs the Data Protection role")
        context = {
            **self.admin_site.each_context(request),
            "title": "Find and erase a person's data",
            "opts": self.model._meta,
            "places": PLACES,
            "can_erase": request.user.has_perm("privacy.erase_subject"),
            "kinds": SubjectRequest.Kind.choices,
        }
        if request.method == "POST":
            action = request.POST.get("action", "find")
            context["identifier"] = request.POST.get("identifier", "")
            try:
                ident = identifier_parse(context["identifier"])
                if action == "find":
                    found = subject_search(identifier=ident, actor=request.user)
                    context["found"] = [(PLACES[k], v) for k, v in found.counts().items()]
                    context["total"] = found.total
                    context["subject"] = ident.pseudonym
                else:
                    if not context["can_erase"]:
                        raise PermissionDenied("erasing a person's data needs the Data Protection role")
                    done = subject_erase(
                        identifier=ident, kind=action, reason=request.POST.get("reason", ""), actor=request.user
                    )
                    changed = ", ".join(f"{PLACES[k]}: {v}" for k, v in done.changed.items() if v)
                    summary = f"Request #{done.pk} ({done.get_kind_display()}): {changed or 'nothing'}"
                    self.message_user(request, summary)
                    return HttpResponseRedirect(reverse("admin:privacy_subjectrequest_change", args=[done.pk]))
            except SubjectRequestError as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
        return TemplateResponse(request, "admin/privacy/subjectrequest/search.html", context)

    def evidence_view(self, request):
        """``?report=gdpr|sox|access`` (default gdpr) as a printable page, or ``&format=csv``."""
        if not request.user.has_perm("privacy.view_evidence"):
            raise PermissionDenied("the compliance evidence needs the Auditor or Data Protection role")
        report = request.GET.get("report", "gdpr")
        fmt = request.GET.get("format", "html")
        if report not in REPORTS or fmt not in ("html", "csv"):
            return HttpResponse(
                f"unknown report or format: report is one of {', '.join(REPORTS)}; format html or csv",
                status=400,
                content_type="text/plain",
            )
        evidence = evidence_export(report=report, fmt=fmt, actor=request.user)
        if fmt == "csv":
            response = HttpResponse(evidence_csv(evidence), content_type="text/csv; charset=utf-8")
            stamp = evidence.generated_at.strftime("%Y%m%dT%H%M%S")
            response["Content-Disposition"] = f'attachment; filename="evidence-{report}-{stamp}.csv"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": evidence.title,
            "opts": self.model._meta,
            "evidence": evidence,
            "reports": list(REPORTS),
        }
        return TemplateResponse(request, "admin/privacy/subjectrequest/evidence.html", context)

"""Links between objects: to an object's admin page, to its audit events, and out to Looker and Google Sheets.

``RelatedLinksMixin`` adds a read-only "related" panel to a ModelAdmin's change page: declare
``related_links(obj) -> list[(label, url)]`` on the admin and add ``"related_panel"`` to ``readonly_fields``.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.contrib import admin
from django.db import models
from django.urls import NoReverseMatch, Resolver404, get_script_prefix, resolve, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

Link = tuple[str, str]


def admin_change_url(label_lower: str, pk: object) -> str | None:
    """The admin change page of ``app_label.model`` #pk, or None when the model has no admin page."""
    app, _, model = label_lower.partition(".")
    try:
        return reverse(f"admin:{app}_{model}_change", args=[pk])
    except NoReverseMatch:
        return None


def object_admin_url(obj: models.Model) -> str | None:
    return admin_change_url(obj._meta.label_lower, obj.pk)


def audit_events_url(*, object_type: str = "", object_id: object = "", job_run_id: int | None = None) -> str:
    """The audit list filtered to one object's events (or one run's)."""
    query = (
        {"job_run_id": job_run_id} if job_run_id is not None else {"object_type": object_type, "object_id": object_id}
    )
    return reverse("admin:audit_auditevent_changelist") + "?" + urlencode(query)


def audit_events_url_for(obj: models.Model) -> str:
    return audit_events_url(object_type=obj._meta.label_lower, object_id=obj.pk)


def looker_dashboard_url(looker_id: str) -> str | None:
    """The dashboard in Looker's own UI (LOOKER_UI_URL, else the API host LOOKERSDK_BASE_URL)."""
    host = (getattr(settings, "LOOKER_UI_URL", "") or settings.LOOKER_BASE_URL or "").rstrip("/")
    if not host or not looker_id:
        return None
    return f"{host}/dashboards/{quote(str(looker_id), safe='')}"


def google_sheet_url(spreadsheet_id: str) -> str | None:
    if not spreadsheet_id:
        return None
    return f"https://docs.google.com/spreadsheets/d/{quote(spreadsheet_id, safe='')}"


def links_html(links: list[Link]) -> str:
    """A short list of links; external ones open in a new tab."""
    if not links:
        return "-"
    return format_html(
        '<ul class="related-links" style="margin:0;padding-left:1.2em">{}</ul>',
        format_html_join(
            "",
            '<li><a href="{}"{}>{}</a></li>',
            ((url, mark_safe(' target="_blank" rel="noopener"') if url.startswith("http") else "", label)
             for label, url in links),
        ),
    )  # fmt: skip


def link_visible(user: object, url: str) -> bool:
    """Whether ``user`` may open ``url``: links out always; an admin page when they may view its model."""
    if user is None or url.startswith("http"):
        return True
    path, prefix = urlsplit(url).path, get_script_prefix()
    if prefix != "/" and path.startswith(prefix):  # reverse() prefixed it (a site served under a sub-path)
        path = "/" + path[len(prefix) :]
    try:
        match = resolve(path)
    except Resolver404:
        return False
    model_admin = getattr(match.func, "model_admin", None)  # set by ModelAdmin.get_urls()' wrap()
    if not isinstance(model_admin, admin.ModelAdmin):
        return True
    opts = model_admin.model._meta
    return any(user.has_perm(f"{opts.app_label}.{perm}_{opts.model_name}") for perm in ("view", "change"))


def related_links_for(obj: models.Model, user: object = None) -> list[Link]:
    """The object's chain and its audit events, without the links ``user`` could not open."""
    from .chains import chain_links

    links = [link for link in chain_links(obj) if link and link[1]]
    links.append(("audit events of this object", audit_events_url_for(obj)))
    return [link for link in links if link_visible(user, link[1])]


VIEWER = "_related_viewer"


class RelatedLinksMixin:
    """A "related" panel on the change page: the object's neighbours along its chain and its audit events, only
    those the reader may open."""

    def related_links(self, obj: models.Model) -> list[Link]:
        from .chains import chain_links

        return chain_links(obj)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            setattr(obj, VIEWER, request.user)  # the panel leaves out what this reader may not open
        return obj

    @admin.display(description="related")
    def related_panel(self, obj: models.Model) -> str:
        if obj is None or obj.pk is None:
            return "-"
        user = getattr(obj, VIEWER, None)
        links = [link for link in self.related_links(obj) if link and link[1]]
        links.append(("audit events of this object", audit_events_url_for(obj)))
        return links_html([link for link in links if link_visible(user, link[1])])

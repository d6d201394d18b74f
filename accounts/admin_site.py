"""The project's admin site: Django's, with a person's own password change going through the audited service."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminPasswordChangeForm as OwnPasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.urls import reverse


class AuditedOwnPasswordChangeForm(OwnPasswordChangeForm):
    """ "Change password" for oneself (old password required), saved by ``user_password_set``."""

    def save(self, commit: bool = True):
        from .services import user_password_set

        return user_password_set(user=self.user, password=self.cleaned_data["new_password1"], actor=self.user)


class DataOpsAdminSite(admin.AdminSite):
    """Installed as the default site by ``accounts.apps.DataOpsAdminConfig`` (Django's documented way)."""

    # Each person's home (console.selectors.home_for) above the list of apps; "View site" leads to it.
    index_template = "admin/console/home.html"
    site_url = "/"

    def index(self, request, extra_context=None):
        """The admin index with the person's home: what waits for them, what failed, the last runs."""
        from console.selectors import home_for
        from console.timezones import time_zone_context

        extra_context = {
            "home": home_for(user=request.user),
            **time_zone_context(request),
            **(extra_context or {}),
        }
        return super().index(request, extra_context)

    def password_change(self, request, extra_context=None):
        """Django's own view and template, with the audited form."""
        defaults = {
            "form_class": AuditedOwnPasswordChangeForm,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return PasswordChangeView.as_view(**defaults)(request)

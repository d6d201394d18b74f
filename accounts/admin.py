"""Admin for users, groups and API tokens: every save, delete and password change goes through an audited
service in ``accounts/services.py``.

A Platform Admin manages accounts and roles but can make nobody (themselves included) a superuser, sets no
per-user permissions and cannot reach superuser accounts. Role groups are defined by ``accounts/roles.py``: the
admin shows them read-only. API tokens are issued and revoked by superusers only; the key is shown once.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from audit.services import audit_context

from .roles import ROLE_PERMISSIONS
from .services import (
    api_token_create,
    api_token_revoke,
    group_delete,
    group_save,
    token_fingerprint,
    user_create,
    user_delete,
    user_password_set,
    user_permissions_set,
    user_roles_set,
    user_update,
)

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.unregister(TokenProxy)
# DRF's token prints as its key, which the admin puts in page titles and breadcrumbs: name it by its user instead
# (TokenProxy exists for the admin only; Token itself is left as DRF made it).
TokenProxy.__str__ = lambda self: f"API token of {self.user} (sha256:{token_fingerprint(self.key)})"


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change password" form, saving through ``user_password_set`` (the actor comes from the
    view's audit context)."""

    def save(self, commit: bool = True):
        usable = self.cleaned_data.get("set_usable_password", True)
        password = self.cleaned_data.get("password1") if usable else None
        return user_password_set(user=self.user, password=password, actor=None)


@admin.register(User)
class RoleUserAdmin(UserAdmin):
    """Non-superusers manage accounts and roles (groups) only: no superuser flag, no per-user permissions,
    and superuser accounts are out of their reach."""

    change_password_form = AuditedPasswordChangeForm

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(is_superuser=False)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += ["is_superuser", "user_permissions", "last_login", "date_joined"]
        return readonly

    def user_change_password(self, request, id, form_url=""):
        with audit_context(user=request.user):
            return super().user_change_password(request, id, form_url)

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if not change:
            user_create(user=obj, actor=request.user)
        else:
            user_update(user=obj, actor=request.user, fields=form.changed_data)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # Instead of form.save_m2m(): roles and per-user permissions each through their audited service.
        if "groups" in form.cleaned_data:
            user_roles_set(user=form.instance, roles=form.cleaned_data["groups"], actor=request.user)
        if "user_permissions" in form.cleaned_data:
            user_permissions_set(
                user=form.instance, permissions=form.cleaned_data["user_permissions"], actor=request.user
            )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj) -> None:
        user_delete(user=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for user in queryset.order_by("pk"):
            user_delete(user=user, actor=request.user)


@admin.register(Group)
class RoleGroupAdmin(GroupAdmin):
    """Groups: the roles are read-only here (``accounts/roles.py`` is their one source); other groups are
    created, edited and deleted through audited services (superusers only: no role holds auth.*_group but view)."""

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.name in ROLE_PERMISSIONS:
            return False  # shown, never saved: a role's permissions come from roles.py
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.name in ROLE_PERMISSIONS:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Group, form, change: bool) -> None:
        try:
            group_save(group=obj, actor=request.user, permissions=form.cleaned_data.get("permissions"))
        except ValueError as exc:
            raise PermissionDenied(str(exc)) from exc

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        pass  # the permissions were set by group_save, with their audit event

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        group_delete(group=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        roles = [g.name for g in queryset if g.name in ROLE_PERMISSIONS]
        if roles:
            raise PermissionDenied(f"{', '.join(roles)}: roles cannot be deleted")
        for group in queryset.order_by("pk"):
            group_delete(group=group, actor=request.user)


@admin.register(TokenProxy)
class ApiTokenAdmin(TokenAdmin):
    """API tokens: issued and revoked through audited services; pages show a fingerprint, never the key (DRF's
    TokenAdmin, which this extends, already keeps the key out of URLs by addressing tokens by their user)."""

    list_display = ("fingerprint", "user", "created")
    list_select_related = ("user",)
    list_filter = ("created",)
    fields = ("user",)
    autocomplete_fields = ("user",)
    search_fields = ("user__username",)
    ordering = ("user__username",)

    @admin.display(description="token")
    def fingerprint(self, obj: TokenProxy) -> str:
        return f"sha256:{token_fingerprint(obj.key)}"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a token is issued or revoked, never edited

    def get_readonly_fields(self, request, obj=None):
        return ("user", "created") if obj is not None else ()

    def get_fields(self, request, obj=None):
        return ("user", "created") if obj is not None else ("user",)

    def save_model(self, request: HttpRequest, obj: TokenProxy, form, change: bool) -> None:
        try:
            token = api_token_create(user=obj.user, actor=request.user)
        except ValueError as exc:
            raise PermissionDenied(str(exc)) from exc
        obj.key, obj.created = token.key, token.created
        self.message_user(
            request,
            f"API token for {obj.user}: {token.key} (copy it now; the admin never shows it again)",
            messages.WARNING,
        )

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:authtoken_tokenproxy_changelist"))  # never a URL with the key

    def delete_model(self, request: HttpRequest, obj: TokenProxy) -> None:
        api_token_revoke(token=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TokenProxy]) -> None:
        for token in queryset.select_related("user").order_by("created"):
            api_token_revoke(token=token, actor=request.user)

"""Admin for users, groups and API tokens: every save, delete and password change goes through an audited
service in ``accounts/services.py``.

A Platform Admin manages accounts and roles but can make nobody (themselves included) a superuser, sets no
per-user permissions and cannot reach superuser accounts. Granting a role above Viewer opens an approval request
that a second Platform Admin decides (the page says so; nothing is granted until then); revocations and Viewer
apply at once. Role groups are defined by ``accounts/roles.py``: the admin shows them read-only. Every staff user
creates and revokes their own API tokens on *API tokens → mine* (read scope at once, write scope once a second
Platform Admin approves; the key is shown once, to its owner only); Platform Admins see and revoke everyone's.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from knox import admin as _knox_admin  # noqa: F401 - registers knox's admin, unregistered below
from knox.models import AuthToken as KnoxAuthToken
from rest_framework.authtoken.models import TokenProxy

from approvals.selectors import approvals_pending_about
from approvals.services import ApprovalError
from audit.services import audit_context

from .models import ApiToken
from .roles import ROLE_PERMISSIONS
from .services import (
    ROLES_GRANT_ACTION,
    TOKEN_WRITE_ACTION,
    TokenExists,
    api_token_collect,
    api_token_request,
    api_token_revoke,
    group_delete,
    group_save,
    groups_above_viewer,
    login_lockouts_clear,
    user_create,
    user_delete,
    user_password_set,
    user_permissions_set,
    user_roles_request,
    user_update,
)

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)
# Neither DRF's clear-text tokens (no longer accepted) nor knox's raw digests are managed directly: API tokens
# are ``ApiToken`` (below), made and revoked through the audited services.
admin.site.unregister(TokenProxy)
admin.site.unregister(KnoxAuthToken)


# django-axes' lockouts: Platform Admins see them and clear one by deleting it (audited); expired attempts are
# cleaned by axes itself at each login, so its bulk "clean up" action (which checks no permission) is not offered.
# The access logs are read-only.
class LockoutAdmin(AccessAttemptAdmin):
    actions = ["delete_selected"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj) -> None:
        login_lockouts_clear(attempts=[obj], actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        login_lockouts_clear(attempts=list(queryset.order_by("pk")), actor=request.user)


class ReadOnlyAccessLogAdmin(AccessLogAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAccessFailureLogAdmin(AccessFailureLogAdmin):
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


for _model, _admin in ((AccessAttempt, LockoutAdmin), (AccessLog, ReadOnlyAccessLogAdmin),
                       (AccessFailureLog, ReadOnlyAccessFailureLogAdmin)):  # fmt: skip
    admin.site.unregister(_model)
    admin.site.register(_model, _admin)


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change password" form, saving through ``user_password_set`` (the actor comes from the
    view's audit context)."""

    def save(self, commit: bool = True):
        usable = self.cleaned_data.get("set_usable_password", True)
        password = self.cleaned_data.get("password1") if usable else None
        return user_password_set(user=self.user, password=password, actor=None)


class RoleUserChangeForm(UserChangeForm):
    """The user form, with the reason a grant of a role above Viewer needs (the approver reads it)."""

    role_grant_reason = forms.CharField(
        required=False,
        label="Reason for the role grant",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Required when granting a role above Viewer: the grant waits for a second Platform Admin's "
        "approval (neither you nor this user may approve it). Revoking a role, or Viewer, applies at once.",
    )

    def clean(self):
        cleaned = super().clean()
        groups = cleaned.get("groups")
        if groups is not None and self.instance.pk:
            held = set(self.instance.groups.values_list("name", flat=True))
            asked = groups_above_viewer(g for g in groups if g.name not in held)
            if asked and not (cleaned.get("role_grant_reason") or "").strip():
                self.add_error(
                    "role_grant_reason",
                    f"Granting {', '.join(asked)} needs a reason: a second Platform Admin approves it before it "
                    "applies.",
                )
        return cleaned


@admin.register(User)
class RoleUserAdmin(UserAdmin):
    """Non-superusers manage accounts and roles (groups) only: no superuser flag, no per-user permissions,
    and superuser accounts are out of their reach. Grants above Viewer go through an approval."""

    change_password_form = AuditedPasswordChangeForm
    form = RoleUserChangeForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        out = []
        for name, options in fieldsets:
            fields = list(options.get("fields", ()))
            if "groups" in fields:
                at = fields.index("groups") + 1
                fields[at:at] = ["role_grant_reason", "pending_role_grants"]
            out.append((name, {**options, "fields": tuple(fields)}))
        return out

    @admin.display(description="waiting for approval")
    def pending_role_grants(self, obj) -> str:
        pending = approvals_pending_about(user=obj, actions=[ROLES_GRANT_ACTION, TOKEN_WRITE_ACTION])
        if not pending:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">#{} {}</a>',
            ((reverse("admin:approvals_approvalrequest_change", args=[r.pk]), r.pk, r.title) for r in pending),
        )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(is_superuser=False)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("pending_role_grants")
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
        # Instead of form.save_m2m(): roles and per-user permissions each through their audited service. Roles
        # are asked for: what needs no approval applies now, a grant above Viewer opens an approval request.
        if "groups" in form.cleaned_data:
            outcome = user_roles_request(
                user=form.instance,
                roles=form.cleaned_data["groups"],
                actor=request.user,
                reason=form.cleaned_data.get("role_grant_reason") or "",
            )
            if outcome.pending:
                request._role_grant_outcome = outcome  # read by response_change: the page tells the truth
        if "user_permissions" in form.cleaned_data:
            user_permissions_set(
                user=form.instance, permissions=form.cleaned_data["user_permissions"], actor=request.user
            )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def response_change(self, request, obj):
        outcome = getattr(request, "_role_grant_outcome", None)
        if outcome is None:
            return super().response_change(request, obj)
        url = reverse("admin:approvals_approvalrequest_change", args=[outcome.approval.pk])
        self.message_user(
            request,
            format_html(
                '{}: other changes saved. {}: <a href="{}">approval #{}</a> is requested and waits for a second '
                "Platform Admin; nothing is granted until then.",
                obj.get_username(), ", ".join(outcome.pending), url, outcome.approval.pk,
            ),
            messages.WARNING,
        )  # fmt: skip
        return HttpResponseRedirect(reverse("admin:auth_user_change", args=[obj.pk]))

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


class ApiTokenCreateForm(forms.Form):
    """A new token of one's own: its name, scope, lifetime, and (for write scope) why: the approver reads it."""

    name = forms.CharField(max_length=100, help_text="What it is for, e.g. 'nightly export'.")
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    days = forms.IntegerField(min_value=1, help_text="Days until it expires.")
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Required for write scope: a second Platform Admin approves it before its key is made.",
    )

    def __init__(self, *args, **kwargs):
        from django.conf import settings

        super().__init__(*args, **kwargs)
        from django.core.validators import MaxValueValidator

        self.fields["days"].initial = settings.API_TOKEN_DEFAULT_DAYS
        self.fields["days"].validators.append(MaxValueValidator(settings.API_TOKEN_MAX_DAYS))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == ApiToken.Scope.WRITE and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "A write-scope token needs a reason.")
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens, read-only: Platform Admins (``accounts.view_apitoken``) see everyone's and revoke them (delete
    revokes: the record stays). Each staff user creates, collects and revokes their own on *mine*
    (``mine_view``); the key is shown once, there, to its owner, and stored only as knox's digest."""

    list_display = ("name", "user", "scope", "status", "token_key", "expires_at", "last_used_at", "created_at")
    list_select_related = ("user",)
    list_filter = ("scope", "created_at")
    search_fields = ("user__username", "name")
    ordering = ("-created_at",)
    readonly_fields = (
        "user", "name", "scope", "status", "token_key", "lifetime_days", "approval_id", "issued_by", "created_at",
        "issued_at", "expires_at", "last_used_at", "revoked_at", "revoked_by",
    )  # fmt: skip
    fields = readonly_fields
    actions = ["delete_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # one's own tokens are created on "mine": only the owner sees a key

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        api_token_revoke(token=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.order_by("pk"):
            api_token_revoke(token=token, actor=request.user)

    def get_urls(self):
        mine = path("mine/", self.admin_site.admin_view(self.mine_view), name="accounts_apitoken_mine")
        return [mine, *super().get_urls()]

    def _key_page(self, request, token: ApiToken, key: str):
        context = {**self.admin_site.each_context(request), "title": "Your new API token", "opts": self.model._meta,
                   "token": token, "key": key}  # fmt: skip
        # admin_view's never_cache marks it no-store: the key does not sit in a cache.
        return TemplateResponse(request, "admin/accounts/apitoken/key_once.html", context)

    def mine_view(self, request):
        """The signed-in person's own API tokens: create one (read at once, write once approved), collect an
        approved write token's key, revoke one. A key is shown once, on the page answering the POST that made it."""
        user = request.user
        here = reverse("admin:accounts_apitoken_mine")
        form = ApiTokenCreateForm()
        if request.method == "POST":
            op = request.POST.get("op", "")
            own = ApiToken.objects.filter(user=user)
            try:
                if op == "create":
                    from api.throttles import token_create_wait

                    form = ApiTokenCreateForm(request.POST)
                    wait = token_create_wait(request) if form.is_valid() else None
                    if wait is not None:
                        response = HttpResponse(
                            f"Too many API tokens created: try again in {int(wait) + 1} seconds.", status=429
                        )
                        response["Retry-After"] = str(int(wait) + 1)
                        return response
                    if form.is_valid():
                        d = form.cleaned_data
                        token, key, approval = api_token_request(
                            user=user, actor=user, name=d["name"], scope=d["scope"], days=d["days"],
                            reason=d.get("reason") or "",
                        )  # fmt: skip
                        if approval is not None:
                            url = reverse("admin:approvals_approvalrequest_change", args=[approval.pk])
                            self.message_user(
                                request,
                                format_html('Write-scope token "{}": <a href="{}">approval #{}</a> waits for a second '
                                            "Platform Admin; collect its key here once approved.",
                                            d["name"], url, approval.pk),
                                messages.WARNING,
                            )  # fmt: skip
                            return HttpResponseRedirect(here)
                        return self._key_page(request, token, key)
                elif op == "collect":
                    token = own.filter(pk=request.POST.get("token")).first()
                    if token is None:
                        raise ValueError("no such token of yours")
                    return self._key_page(request, token, api_token_collect(token=token, actor=user))
                elif op == "revoke":
                    token = own.filter(pk=request.POST.get("token")).first()
                    if token is None:
                        raise ValueError("no such token of yours")
                    api_token_revoke(token=token, actor=user)
                    self.message_user(request, f'Token "{token.name}" revoked.', messages.SUCCESS)
                    return HttpResponseRedirect(here)
                else:
                    raise ValueError("choose create, collect or revoke")
            except (TokenExists, ApprovalError, ValueError, PermissionError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                if op != "create":
                    return HttpResponseRedirect(here)
        context = {
            **self.admin_site.each_context(request),
            "title": "Your API tokens",
            "opts": self.model._meta,
            "tokens": ApiToken.objects.filter(user=user).order_by("-created_at"),
            "pending": approvals_pending_about(user=user, actions=[TOKEN_WRITE_ACTION]),
            "form": form,
        }
        return TemplateResponse(request, "admin/accounts/apitoken/mine.html", context)

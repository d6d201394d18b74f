"""Admin for users, groups and API tokens: every save, delete and password change goes through an audited
service in ``accounts/services.py``.

A Platform Admin manages accounts and roles but can make nobody (themselves included) a superuser, sets no
per-user permissions and cannot reach superuser accounts. Granting a role above Viewer opens an approval request
that a second Platform Admin decides (the page says so; nothing is granted until then); revocations and Viewer
apply at once. Role groups are defined by ``accounts/roles.py``: the admin shows them read-only. API tokens are
issued and revoked by superusers only: read scope at once, write scope once a second Platform Admin approves.
The key is shown once, to the token's owner, on their *API token* page.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from approvals.selectors import approvals_pending_about
from approvals.services import ApprovalError
from audit.services import audit_context

from .models import ApiTokenScope
from .roles import ROLE_PERMISSIONS
from .selectors import api_token_record
from .services import (
    ROLES_GRANT_ACTION,
    TOKEN_WRITE_ACTION,
    TokenExists,
    api_token_key_reveal,
    api_token_request,
    api_token_revoke,
    group_delete,
    group_save,
    groups_above_viewer,
    token_fingerprint,
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


class ApiTokenAddForm(forms.ModelForm):
    """Issue a token: its user, its scope, and (for write scope) why: the approver reads it."""

    scope = forms.ChoiceField(choices=ApiTokenScope.Scope.choices, initial=ApiTokenScope.Scope.READ)
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Required for write scope: a second Platform Admin approves it before the token exists.",
    )

    class Meta:
        model = TokenProxy
        fields = ("user",)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == ApiTokenScope.Scope.WRITE and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "A write-scope token needs a reason.")
        return cleaned


@admin.register(TokenProxy)
class ApiTokenAdmin(TokenAdmin):
    """API tokens: issued and revoked through audited services; pages show a fingerprint, never the key (DRF's
    TokenAdmin, which this extends, already keeps the key out of URLs by addressing tokens by their user). The key
    is shown once, to the token's owner, on *API token → mine* (``mine_view``), which every staff user can open."""

    list_display = ("fingerprint", "user", "scope", "created")
    list_select_related = ("user",)
    list_filter = ("created",)
    fields = ("user",)
    autocomplete_fields = ("user",)
    search_fields = ("user__username",)
    ordering = ("user__username",)

    @admin.display(description="token")
    def fingerprint(self, obj: TokenProxy) -> str:
        return f"sha256:{token_fingerprint(obj.key)}"

    @admin.display(description="scope")
    def scope(self, obj: TokenProxy) -> str:
        record = api_token_record(user=obj.user)
        return record.get_scope_display() if record else "read only (issued before scopes)"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a token is issued or revoked, never edited

    def get_readonly_fields(self, request, obj=None):
        return ("user", "scope", "created") if obj is not None else ()

    def get_fields(self, request, obj=None):
        return ("user", "scope", "created") if obj is not None else ("user", "scope", "reason")

    def get_urls(self):
        mine = path("mine/", self.admin_site.admin_view(self.mine_view), name="authtoken_tokenproxy_mine")
        return [mine, *super().get_urls()]

    def save_model(self, request: HttpRequest, obj: TokenProxy, form, change: bool) -> None:
        try:
            token, approval = api_token_request(
                user=obj.user,
                scope=form.cleaned_data["scope"],
                actor=request.user,
                reason=form.cleaned_data.get("reason") or "",
            )
        except (TokenExists, ApprovalError) as exc:
            raise PermissionDenied(str(exc)) from exc
        owner = obj.user.get_username()
        if approval is not None:
            request._token_approval = approval  # nothing was created: no "added" log entry (log_addition)
            url = reverse("admin:approvals_approvalrequest_change", args=[approval.pk])
            self.message_user(
                request,
                format_html('Write-scope API token for {}: <a href="{}">approval #{}</a> is requested and waits for '
                            "a second Platform Admin; no token exists until then. {} sees its key once on their API "
                            "token page after the approval.", owner, url, approval.pk, owner),
                messages.WARNING,
            )  # fmt: skip
            return
        obj.key, obj.created = token.key, token.created
        mine = reverse("admin:authtoken_tokenproxy_mine")
        if obj.user.pk == request.user.pk:
            text = format_html('Your read-scope API token is issued: <a href="{}">see its key once</a>.', mine)
        else:
            text = format_html(
                "Read-scope API token issued to {} (sha256:{}); they see its key once on their API token page ({}).",
                owner, token_fingerprint(token.key), mine,
            )  # fmt: skip
        self.message_user(request, text, messages.SUCCESS)

    def log_addition(self, request, obj, message):
        if getattr(request, "_token_approval", None) is not None:
            return None  # only requested: the approval request is the record
        return super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:authtoken_tokenproxy_changelist"))  # never a URL with the key

    def delete_model(self, request: HttpRequest, obj: TokenProxy) -> None:
        api_token_revoke(token=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TokenProxy]) -> None:
        for token in queryset.select_related("user").order_by("created"):
            api_token_revoke(token=token, actor=request.user)

    def mine_view(self, request):
        """The signed-in person's own API token: its fingerprint and scope, a write token waiting for approval,
        and its key, shown once (POST "show"), the first time they ask after it was issued."""
        user = request.user
        key = ""
        if request.method == "POST":
            try:
                key = api_token_key_reveal(user=user)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:authtoken_tokenproxy_mine"))
        token = TokenProxy.objects.filter(user=user).first()
        context = {
            **self.admin_site.each_context(request),
            "title": "Your API token",
            "opts": self.model._meta,
            "token": token,
            "fingerprint": token_fingerprint(token.key) if token else "",
            "record": api_token_record(user=user),
            "pending": approvals_pending_about(user=user, actions=[TOKEN_WRITE_ACTION]),
            "key": key,
        }
        # admin_view's never_cache marks it no-store: the key does not sit in a cache.
        return TemplateResponse(request, "admin/authtoken/tokenproxy/mine.html", context)

"""``/api/v1/`` for Platform Admins: users (create, edit, delete, as the admin's forms) with their roles, and
asking for a user's roles (through ``accounts.services.user_roles_request``: revocations and Viewer apply at once,
a grant above Viewer waits for a second Platform Admin's approval); and retrying a job run whose trigger failed
(the admin's action)."""

from __future__ import annotations

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import path
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from accounts.roles import ROLE_PERMISSIONS
from approvals.services import ApprovalError
from orchestration.api import JobRunOutput
from orchestration.models import JobRun

from .common import IPAddressFilter, StrictFilterSet, conflict
from .resources import PERMS, Conflict

User = get_user_model()


class UserOutput(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_active", "is_staff", "last_login",
                  "date_joined", "roles"]  # fmt: skip

    def get_roles(self, user) -> list[str]:
        return sorted(g.name for g in user.groups.all())


class UserList(generics.ListAPIView):
    """Users (superusers are out of reach, as in the admin) and the roles they hold."""

    serializer_class = UserOutput
    permission_classes = PERMS
    filterset_fields = ["is_active", "is_staff", "username"]
    search_fields = ["username", "email"]

    def get_queryset(self):
        users = User.objects.prefetch_related("groups").order_by("username")
        return users if self.request.user.is_superuser else users.filter(is_superuser=False)

    queryset = User.objects.all()  # for the permission check (auth.view_user)


class UserInput(serializers.ModelSerializer):
    """What the admin's user forms edit (roles have their own endpoint, ``users/{id}/roles/``, with its approvals;
    the superuser flag and per-user permissions stay in the admin, for superusers). ``password``: checked by the
    site's password validators; left out on create, the account has no password login until one is set."""

    password = serializers.CharField(required=False, write_only=True, trim_whitespace=False, max_length=128,
                                     style={"input_type": "password"})  # fmt: skip

    class Meta:
        model = User
        fields = ["username", "email", "first_name", "last_name", "is_active", "is_staff", "password"]

    def validate(self, attrs):
        from django.contrib.auth.password_validation import validate_password
        from django.core.exceptions import ValidationError as DjangoValidationError

        if "password" in attrs:
            candidate = User(**{k: v for k, v in attrs.items() if k != "password"})
            if self.instance is not None:
                candidate.pk = self.instance.pk
                for name in ("username", "email", "first_name", "last_name"):
                    if name not in attrs:
                        setattr(candidate, name, getattr(self.instance, name))
            try:
                validate_password(attrs["password"], user=candidate)
            except DjangoValidationError as exc:
                raise ValidationError({"password": list(exc.messages)}) from exc
        return attrs


def _users(request):
    users = User.objects.prefetch_related("groups")
    return users if request.user.is_superuser else users.filter(is_superuser=False)


class UserListCreate(UserList, generics.CreateAPIView):
    """Users (superusers are out of reach, as in the admin) and the roles they hold. POST creates one, as the
    admin's add form (``auth.add_user``; ``accounts.user_created``, then ``user_password_changed`` if a password is
    given): 400 naming the field (a taken or invalid username, a password the validators refuse). 201, no roles:
    ask for them with ``POST users/{id}/roles/``."""

    required_perms = {"POST": ("auth.add_user",)}

    def get_serializer_class(self):
        return UserInput if self.request and self.request.method == "POST" else UserOutput

    @extend_schema(request=UserInput, responses={201: UserOutput})
    def post(self, request, *args, **kwargs):
        from django.db import transaction

        from accounts.services import user_create, user_password_set

        data = UserInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        password = fields.pop("password", None)
        with transaction.atomic():  # the user and their password, or neither
            user = User(**fields)
            user.set_unusable_password()
            user_create(user=user, actor=request.user)
            if password is not None:
                user_password_set(user=user, password=password, actor=request.user)
        return Response(UserOutput(_users(request).get(pk=user.pk)).data, status=status.HTTP_201_CREATED)


class UserDetail(generics.RetrieveUpdateDestroyAPIView):
    """One user and their roles (a superuser is out of reach, as in the admin: 404). PATCH edits what the admin's
    change form edits (``auth.change_user``; one audit event per kind of change: profile, activation, flags,
    password); DELETE deletes the account (``auth.delete_user``; ``accounts.user_deleted`` with the roles it held;
    its audit events stay)."""

    permission_classes = PERMS
    queryset = User.objects.all()
    required_perms = {"PATCH": ("auth.change_user",), "DELETE": ("auth.delete_user",)}
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return _users(self.request)

    def get_serializer_class(self):
        return UserInput if self.request and self.request.method == "PATCH" else UserOutput

    @extend_schema(request=UserInput, responses={200: UserOutput})
    def patch(self, request, *args, **kwargs):
        from django.db import transaction

        from accounts.services import user_password_set, user_update

        user = self.get_object()
        data = UserInput(user, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        password = fields.pop("password", None)
        with transaction.atomic():
            for name, value in fields.items():
                setattr(user, name, value)
            user_update(user=user, actor=request.user, fields=list(fields))
            if password is not None:
                user_password_set(user=user, password=password, actor=request.user)
        return Response(UserOutput(self.get_queryset().get(pk=user.pk)).data)

    def perform_destroy(self, instance):
        from accounts.services import user_delete

        user_delete(user=instance, actor=self.request.user)


class RolesInput(serializers.Serializer):
    roles = serializers.ListField(child=serializers.CharField(), help_text="exactly the roles the user should hold")
    reason = serializers.CharField(required=False, default="", help_text="needed when a role above Viewer is granted")


class RolesOutput(serializers.Serializer):
    roles = serializers.ListField(child=serializers.CharField(), help_text="what the user holds now")
    granted = serializers.ListField(child=serializers.CharField())
    revoked = serializers.ListField(child=serializers.CharField())
    pending = serializers.ListField(child=serializers.CharField(), help_text="waiting for the approval")
    approval = serializers.IntegerField(allow_null=True, help_text="the approval request for the pending roles")


class UserRoles(generics.GenericAPIView):
    """Ask for a user's roles: 200 when everything applied, 202 when a grant above Viewer waits for approval."""

    queryset = User.objects.all()
    permission_classes = PERMS
    required_perms = {"POST": ("auth.change_user",)}
    serializer_class = RolesInput

    @extend_schema(
        request=RolesInput,
        responses={200: RolesOutput, 202: OpenApiResponse(RolesOutput, description="a grant waits for approval")},
    )
    def post(self, request, pk: int):
        from accounts.services import user_roles_request

        user = self.get_object()
        if user.is_superuser and not request.user.is_superuser:
            raise PermissionDenied("superusers are out of a Platform Admin's reach")
        data = RolesInput(data=request.data)
        data.is_valid(raise_exception=True)
        names = sorted(set(data.validated_data["roles"]))
        known = set(Group.objects.filter(name__in=names).values_list("name", flat=True))
        if set(names) - known:
            raise ValidationError({"roles": f"unknown: {', '.join(sorted(set(names) - known))}; roles: "
                                            f"{', '.join(ROLE_PERMISSIONS)}"})  # fmt: skip
        try:
            outcome = user_roles_request(user=user, roles=names, actor=request.user,
                                         reason=data.validated_data["reason"])  # fmt: skip
        except ApprovalError as exc:
            raise ValidationError({"reason": str(exc)}) from exc
        body = RolesOutput(
            {
                "roles": list(outcome.applied.roles),
                "granted": list(outcome.applied.granted),
                "revoked": list(outcome.applied.revoked),
                "pending": list(outcome.pending),
                "approval": outcome.approval.pk if outcome.approval else None,
            }  # fmt: skip
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED if outcome.approval else status.HTTP_200_OK)


class JobRunRetry(generics.GenericAPIView):
    """Trigger again a run whose trigger failed (Airflow unreachable at the time): 202 with the run, 409 when it is
    not a failed trigger."""

    queryset = JobRun.objects.select_related("actor")
    permission_classes = PERMS
    required_perms = {"POST": ("orchestration.trigger_jobrun",)}
    serializer_class = JobRunOutput

    @extend_schema(
        request=None,
        responses={202: JobRunOutput, 409: OpenApiResponse(Conflict, description="not a failed trigger")},
    )
    def post(self, request, pk: int):
        from orchestration.registry import job_get
        from orchestration.services import job_run_airflow_trigger

        run = self.get_object()
        if run.status != JobRun.Status.FAILED_TO_TRIGGER:
            return conflict(f"run #{run.pk} is {run.status}: only a failed trigger is retried")
        spec = job_get(run.job)
        if not request.user.has_perm(spec.permission):
            raise PermissionDenied(f"you may not run {spec.name}")
        result = job_run_airflow_trigger(job_run_id=run.pk)
        return Response(JobRunOutput(result).data, status=status.HTTP_202_ACCEPTED)


# --- failed-login lockouts (django-axes): Platform Admins see them and clear one (audited, as in the admin) ------


class LockoutOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(allow_null=True)
    ip_address = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    path_info = serializers.CharField()
    attempt_time = serializers.DateTimeField()
    failures_since_start = serializers.IntegerField()
    locked_out = serializers.SerializerMethodField(help_text="at or above the failure limit (AXES_FAILURE_LIMIT)")

    def get_locked_out(self, attempt) -> bool | None:
        from django.conf import settings

        limit = settings.AXES_FAILURE_LIMIT
        return attempt.failures_since_start >= limit if isinstance(limit, int) else None


class LockoutList(generics.ListAPIView):
    """Failed-login records (the admin's lockouts page; the submitted form data is not shown)."""

    serializer_class = LockoutOutput
    permission_classes = PERMS
    filterset_fields = ["username", "ip_address"]
    search_fields = ["ip_address", "username", "user_agent", "path_info"]
    queryset = AccessAttempt.objects.order_by("-attempt_time", "-pk")  # axes.view_accessattempt to read


class LockoutDetail(generics.RetrieveDestroyAPIView):
    """One failed-login record. DELETE clears it, ending the lockout (``accounts.login_lockout_cleared``)."""

    serializer_class = LockoutOutput
    permission_classes = PERMS
    required_perms = {"DELETE": ("axes.delete_accessattempt",)}
    queryset = AccessAttempt.objects.order_by("-attempt_time", "-pk")

    def perform_destroy(self, instance):
        from accounts.services import login_lockouts_clear

        login_lockouts_clear(attempts=[instance], actor=self.request.user)


urlpatterns = [
    path("users/", UserListCreate.as_view(), name="api-user-list"),
    path("users/<int:pk>/", UserDetail.as_view(), name="api-user-detail"),
    path("users/<int:pk>/roles/", UserRoles.as_view(), name="api-user-roles"),
    path("job-runs/<int:pk>/retry/", JobRunRetry.as_view(), name="api-jobrun-retry"),
    path("login-lockouts/", LockoutList.as_view(), name="api-lockout-list"),
    path("login-lockouts/<int:pk>/", LockoutDetail.as_view(), name="api-lockout-detail"),
]


# --- login security (django-axes' access logs, read-only) and the roles (groups, read-only) -----------------------
# As in the admin (accounts/admin.py): the access logs are read-only for whoever may view them (Platform Admins:
# axes.view_accesslog, axes.view_accessfailurelog); groups are read-only here, roles always (accounts/roles.py is
# their one source; only a superuser edits other groups, in the admin).


class AccessLogFilter(StrictFilterSet):
    ip_address = IPAddressFilter()
    attempt_after = filters.IsoDateTimeFilter(
        field_name="attempt_time", lookup_expr="gte", help_text="at or after (ISO 8601)"
    )
    attempt_before = filters.IsoDateTimeFilter(field_name="attempt_time", lookup_expr="lt",
                                               help_text="before (ISO 8601)")  # fmt: skip

    class Meta:
        model = AccessLog
        fields = ["username", "ip_address"]


class AccessFailureLogFilter(AccessLogFilter):
    class Meta:
        model = AccessFailureLog
        fields = ["username", "ip_address", "locked_out"]


class AccessLogOutput(serializers.ModelSerializer):
    class Meta:
        model = AccessLog
        fields = ["id", "username", "ip_address", "user_agent", "http_accept", "path_info", "attempt_time",
                  "logout_time"]  # fmt: skip


class AccessFailureLogOutput(serializers.ModelSerializer):
    class Meta:
        model = AccessFailureLog
        fields = ["id", "username", "ip_address", "user_agent", "http_accept", "path_info", "attempt_time",
                  "locked_out"]  # fmt: skip


class AccessLogList(generics.ListAPIView):
    """Successful logins and their logouts (the admin's access logs), newest first; read-only."""

    serializer_class = AccessLogOutput
    permission_classes = PERMS  # axes.view_accesslog
    filterset_class = AccessLogFilter
    search_fields = ["ip_address", "username", "user_agent", "path_info"]
    queryset = AccessLog.objects.order_by("-attempt_time", "-pk")


class AccessLogDetail(generics.RetrieveAPIView):
    serializer_class = AccessLogOutput
    permission_classes = PERMS
    queryset = AccessLog.objects.all()


class AccessFailureLogList(generics.ListAPIView):
    """Every failed login (the admin's access failure logs), newest first; read-only."""

    serializer_class = AccessFailureLogOutput
    permission_classes = PERMS  # axes.view_accessfailurelog
    filterset_class = AccessFailureLogFilter
    search_fields = ["ip_address", "username", "user_agent", "path_info"]
    queryset = AccessFailureLog.objects.order_by("-attempt_time", "-pk")


class AccessFailureLogDetail(generics.RetrieveAPIView):
    serializer_class = AccessFailureLogOutput
    permission_classes = PERMS
    queryset = AccessFailureLog.objects.all()


class GroupOutput(serializers.ModelSerializer):
    is_role = serializers.SerializerMethodField(help_text="a role of accounts/roles.py (never changed here)")
    permissions = serializers.SerializerMethodField(help_text="app_label.codename, sorted")
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Group
        fields = ["id", "name", "is_role", "permissions", "member_count"]

    def get_is_role(self, group) -> bool:
        return group.name in ROLE_PERMISSIONS

    def get_permissions(self, group) -> list[str]:
        return sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all())


def _groups():
    from django.db.models import Count

    return (
        Group.objects.annotate(member_count=Count("user", distinct=True))
        .prefetch_related("permissions__content_type")
        .order_by("name", "pk")
    )


class GroupInput(serializers.Serializer):
    name = serializers.CharField(max_length=150)
    permissions = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="app_label.codename, e.g. cleanup.view_lookerdashboard"
    )

    def validate_name(self, name: str) -> str:
        if name in ROLE_PERMISSIONS:
            raise ValidationError(f"{name} is a role: roles come from accounts/roles.py")
        taken = Group.objects.filter(name=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("a group with this name exists")
        return name

    def validate_permissions(self, names: list[str]) -> list:
        from django.contrib.auth.models import Permission

        wanted, unknown = [], []
        for name in sorted(set(names)):
            app_label, _, codename = name.partition(".")
            found = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            (wanted if found else unknown).append(found or name)
        if unknown:
            raise ValidationError(f"unknown permission(s): {', '.join(unknown)} (app_label.codename)")
        return wanted


def _role_refused(group: Group) -> None:
    if group.name in ROLE_PERMISSIONS:
        raise PermissionDenied(f"{group.name} is a role: its name and permissions come from accounts/roles.py")


class GroupList(generics.ListCreateAPIView):
    """The roles (and any other group) with their permissions and how many users hold each. Roles are read-only
    (accounts/roles.py is their one source); POST creates another group as the admin does (``auth.add_group``:
    superusers only, no role holds it; ``accounts.group_created`` and ``group_permissions_changed``)."""

    permission_classes = PERMS  # auth.view_group
    required_perms = {"POST": ("auth.add_group",)}
    filterset_fields = ["name"]
    search_fields = ["name"]
    queryset = _groups()

    def get_serializer_class(self):
        return GroupInput if self.request and self.request.method == "POST" else GroupOutput

    @extend_schema(request=GroupInput, responses={201: GroupOutput})
    def post(self, request, *args, **kwargs):
        from accounts.services import group_save

        data = GroupInput(data=request.data)
        data.is_valid(raise_exception=True)
        group = group_save(group=Group(name=data.validated_data["name"]), actor=request.user,
                           permissions=data.validated_data.get("permissions", []))  # fmt: skip
        return Response(GroupOutput(_groups().get(pk=group.pk)).data, status=status.HTTP_201_CREATED)


class GroupDetail(generics.RetrieveUpdateDestroyAPIView):
    """One group. A group that is not a role is renamed or given other permissions (PATCH, ``auth.change_group``)
    or deleted (DELETE, ``auth.delete_group``), superusers only, audited; a role answers 403, as in the admin."""

    permission_classes = PERMS
    required_perms = {"PATCH": ("auth.change_group",), "DELETE": ("auth.delete_group",)}
    http_method_names = ["get", "patch", "delete", "head", "options"]
    queryset = _groups()

    def get_serializer_class(self):
        return GroupInput if self.request and self.request.method == "PATCH" else GroupOutput

    @extend_schema(request=GroupInput, responses={200: GroupOutput})
    def patch(self, request, *args, **kwargs):
        from accounts.services import group_save

        group = self.get_object()
        _role_refused(group)
        data = GroupInput(group, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        group.name = data.validated_data.get("name", group.name)
        group_save(group=group, actor=request.user, permissions=data.validated_data.get("permissions"))
        return Response(GroupOutput(_groups().get(pk=group.pk)).data)

    def perform_destroy(self, instance):
        from accounts.services import group_delete

        _role_refused(instance)
        group_delete(group=instance, actor=self.request.user)


urlpatterns += [
    path("login-access-logs/", AccessLogList.as_view(), name="api-accesslog-list"),
    path("login-access-logs/<int:pk>/", AccessLogDetail.as_view(), name="api-accesslog-detail"),
    path("login-failures/", AccessFailureLogList.as_view(), name="api-accessfailurelog-list"),
    path("login-failures/<int:pk>/", AccessFailureLogDetail.as_view(), name="api-accessfailurelog-detail"),
    path("roles/", GroupList.as_view(), name="api-group-list"),
    path("roles/<int:pk>/", GroupDetail.as_view(), name="api-group-detail"),
]

"""What every endpoint of the REST API shares: strict filters (a bad value is a 400 naming the field, never a
silently ignored filter), strict ordering, the permission that mirrors the admin's, and cursor pagination."""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.core.exceptions import ValidationError as ModelValidationError
from django.db import models
from django_filters import rest_framework as filters
from rest_framework import pagination, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

# Query parameters every list understands besides its filters.
COMMON_PARAMS = frozenset({"format", "page", "cursor", "page_size"})


def conflict(message: str) -> Response:
    """409 with ``{"detail": message}``: what every endpoint answers when a service refuses as things stand."""
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


def model_validate(instance: models.Model, **options) -> None:
    """The model's own validation (``full_clean(**options)``: fields, ``clean()``, uniqueness), as the admin's form
    runs it, answering 400 naming each field at fault."""
    try:
        instance.full_clean(**options)
    except ModelValidationError as exc:
        raise ValidationError(exc.message_dict) from exc


class DjangoModelPermission(permissions.BasePermission):
    """What the admin asks: reading needs the model's ``view`` permission; a view may add ``required_perms``
    (every one needed) for its writes, named exactly as the admin's actions name them."""

    def has_permission(self, request, view) -> bool:
        queryset = getattr(view, "queryset", None)
        if queryset is not None:
            meta = queryset.model._meta
            if not request.user.has_perm(f"{meta.app_label}.view_{meta.model_name}"):
                return False
        needed = getattr(view, "required_perms", {}).get(request.method, ())
        return all(request.user.has_perm(p) for p in needed)


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or ``1``/``0``); anything else is an error, not "no filter"."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("must be true or false", code="invalid")


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.TextInput)  # django-filter's BooleanWidget turns "-1" into "no filter"
        super().__init__(*args, **kwargs)


class IPAddressFilter(filters.CharFilter):
    """An IP address filter that validates its value: django-filter's default (a CharFilter) sends any text to
    PostgreSQL's ``inet`` column, which answers a DataError (a 500) for ``?ip_address=x``."""

    field_class = forms.GenericIPAddressField


class _UtcDateTimes:
    """A filter form whose date-times reach the database in UTC: Python accepts offsets up to +-23:59 where
    PostgreSQL refuses more than +-15:59 (a DataError, a 500, for ``?event_time_before=2026-01-01T00:00+19:23``);
    a moment UTC cannot hold (year 1 at +05:00) is a 400 naming the parameter."""

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if isinstance(value, datetime) and value.tzinfo is not None:
                try:
                    cleaned[name] = value.astimezone(UTC)
                except OverflowError:
                    self.add_error(name, "out of range once in UTC")
        return cleaned


class StrictFilterSet(filters.FilterSet):
    """django-filter's FilterSet with booleans and IP addresses that refuse values they do not understand, and
    date-times given to the database in UTC."""

    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
        models.GenericIPAddressField: {"filter_class": IPAddressFilter},
    }

    def get_form_class(self):
        form = super().get_form_class()
        return type(form.__name__, (_UtcDateTimes, form), {})


class StrictFilterBackend(filters.DjangoFilterBackend):
    """django-filter, strict: a bad filter value answers 400 naming the field (django-filter's own behaviour
    once the value does not silently become "no filter"), and so does a query parameter the endpoint does not
    have (a typo in a filter name would otherwise return everything)."""

    filterset_base = StrictFilterSet

    def filter_queryset(self, request, queryset, view):
        allowed = set(COMMON_PARAMS)
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        if getattr(view, "search_fields", None):
            allowed.add("search")
        if getattr(view, "ordering_fields", None):
            allowed.add("ordering")
        allowed |= set(getattr(view, "extra_query_params", ()))
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise ValidationError({name: "unknown query parameter" for name in unknown})
        if "\x00" in request.query_params.get("search", ""):
            # DRF's SearchFilter would answer a bare list (["Null characters are not allowed."]): name the field.
            raise ValidationError({"search": "null characters are not allowed"})
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """DRF's ordering, answering 400 for a field it cannot order by instead of ignoring it."""

    def get_ordering(self, request, queryset, view):
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = [p.strip() for p in params.split(",") if p.strip()]
            valid = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
            bad = [f for f in fields if f.lstrip("-") not in valid]
            if bad:
                raise ValidationError(
                    {self.ordering_param: f"cannot order by {', '.join(bad)}; choose from {', '.join(sorted(valid))}"}
                )
        return super().get_ordering(request, queryset, view)


class NewestFirstCursor(pagination.CursorPagination):
    """Cursor pagination for the big, growing lists (audit events, sync events, quarantined rows): stable under
    inserts and cheap at any depth (no OFFSET, no COUNT)."""

    ordering = "-pk"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

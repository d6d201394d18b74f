"""The sync target form and its "test" page (issue 11).

- A pasted Sheets URL is stored as the spreadsheet id it carries (a URL stored as the id broke the target as
  "deleted or no longer shared").
- Help texts are escaped (the admin renders them as HTML: ``<ALIAS>`` vanished).
- The form names the service account to share the sheet with.
- "Test" reads the source and the sheet and shows the first rows and the diff a sync would write; it writes
  nothing. It works before saving too: the form's button posts what is typed to ``test/`` (a new tab, so the
  form keeps its input), which tests an unsaved target built from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import escape, format_html

from .models import SyncTarget

_URL_ID = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_BARE_ID = re.compile(r"[A-Za-z0-9_-]+")
PREVIEW_ROWS = 10


def spreadsheet_id_parse(text: str) -> str:
    """The spreadsheet id in a pasted Sheets URL (``.../spreadsheets/d/<id>/edit#gid=0``) or a bare id.

    ``ValueError`` for anything else, with what was expected.
    """
    value = (text or "").strip()
    found = _URL_ID.search(value)
    if found:
        return found.group(1)
    if value.startswith(("http://", "https://")):
        raise ValueError("this URL has no /spreadsheets/d/<id>/: paste the sheet's address from the browser")
    if not _BARE_ID.fullmatch(value):
        raise ValueError("a spreadsheet id has only letters, digits, '-' and '_' (or paste the sheet's URL)")
    return value


def principal_email(principal: str) -> str:
    """The e-mail address of the service account a principal acts as: the ``client_email`` of its key file, else
    SHEETS_SERVICE_ACCOUNT_EMAIL for the default credentials ('' when unknown)."""
    path = settings.SHEETS_PRINCIPALS.get(principal or "", "")
    if path:
        try:
            return str(json.loads(Path(path).read_text()).get("client_email", ""))
        except (OSError, ValueError):
            return ""
    return getattr(settings, "SHEETS_SERVICE_ACCOUNT_EMAIL", "")


class SyncTargetForm(forms.ModelForm):
    """The admin's form: URL or id, escaped help, the account to share with."""

    class Meta:
        model = SyncTarget
        fields = (
            "name", "description", "owner", "spreadsheet_id", "range", "row_order", "principal", "source_kind",
            "source_query", "source_database", "source_file", "key_columns", "protected_columns", "quality_suite",
        )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, form_field in self.fields.items():
            if form_field.help_text:
                form_field.help_text = escape(form_field.help_text)  # the admin renders help as HTML
            if name in ("source_query", "source_database", "source_file"):
                form_field.widget.attrs["data-source-field"] = name
        if "spreadsheet_id" in self.fields:
            self.fields["spreadsheet_id"].label = "Spreadsheet (URL or id)"
            self.fields["spreadsheet_id"].help_text = escape(
                "paste the sheet's URL (https://docs.google.com/spreadsheets/d/<id>/edit) or its id"
            )
        if "principal" in self.fields:
            accounts = ", ".join(
                f"{name or 'default'}: {principal_email(name) or 'address unknown'}"
                for name in sorted(settings.SHEETS_PRINCIPALS)
            )
            self.fields["principal"].help_text += escape(
                f". Share the spreadsheet (as editor) with the account: {accounts}"
            )

    def clean_spreadsheet_id(self) -> str:
        try:
            return spreadsheet_id_parse(self.cleaned_data.get("spreadsheet_id", ""))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@dataclass
class TargetTest:
    """What a sync of a target would do now, read without writing."""

    source_label: str = ""
    source_columns: tuple[str, ...] = ()
    source_rows: list[tuple[Any, ...]] = field(default_factory=list)
    source_total: int = 0
    sheet_rows: list[list[Any]] = field(default_factory=list)
    sheet_total: int = 0
    cells: int = 0
    rows_added: int = 0
    rows_removed: int = 0
    rows_kept: int = 0
    writes: list[tuple[str, Any, Any]] = field(default_factory=list)  # (cell, now, would be)
    quarantined: int = 0
    error: str = ""
    share_with: str = ""


def sync_target_test(*, target: SyncTarget) -> TargetTest:
    """Read the source and the sheet, plan the diff (no write) and keep the first rows of each: the test page."""
    from connectors.embedded import embedded_bigquery_client, embedded_sheets_client
    from connectors.errors import ConnectorError
    from connectors.sheets import column_letters

    from .diff import TableError, source_table_prepare, table_plan
    from .sources import SourceError, source_load

    outcome = TargetTest(share_with=principal_email(target.principal))
    try:
        loaded = source_load(target=target, bigquery=embedded_bigquery_client)
    except (SourceError, ConnectorError, ValueError) as exc:
        outcome.error = f"the source could not be read: {exc}"
        return outcome
    outcome.source_label = loaded.label
    outcome.source_columns = loaded.columns
    outcome.source_rows = loaded.rows[:PREVIEW_ROWS]
    outcome.source_total = len(loaded.rows)
    try:
        table = source_table_prepare(columns=loaded.columns, rows=loaded.rows, key_columns=target.key_list)
        anchor = target.anchor
        width = max(len(table.columns) + len(target.protected_list), target.written_width or 0, 1)
        last_col = column_letters(anchor.col + width - 1)
        sheet_range = f"'{anchor.sheet}'!{column_letters(anchor.col)}{anchor.row}:{last_col}"
        current = embedded_sheets_client(principal=target.principal).values_get(
            spreadsheet_id=target.spreadsheet_id, range=sheet_range, value_render_option="UNFORMATTED_VALUE"
        )
        values = [list(r) for r in current.values]
        plan = table_plan(
            source=table, protected=target.protected_list, current=values, read_width=width, order=target.row_order
        )
    except (TableError, ConnectorError, ValueError) as exc:
        outcome.error = f"the sheet could not be compared: {exc}"
        return outcome
    outcome.sheet_rows = values[: PREVIEW_ROWS + 1]
    outcome.sheet_total = max(len(values) - 1, 0)
    outcome.quarantined = len(table.quarantined)
    outcome.cells, outcome.rows_added = plan.cells, plan.rows_added
    outcome.rows_removed, outcome.rows_kept = plan.rows_removed, plan.rows_kept
    for row, col, cell in plan.writes[:20]:
        name = f"{column_letters(anchor.col + col)}{anchor.row + row}"
        outcome.writes.append((name, plan.previous.get((row, col), ""), cell))
    return outcome


def sync_target_test_view(model_admin: Any, request, pk: int):
    """GET: the test page of a saved target with its button; POST: read the source and the sheet, show the diff.

    Needs the sync permission (it reads the source and the sheet); it never writes.
    """
    if not request.user.has_perm("sheetsync.sync_synctarget"):
        raise PermissionDenied("you may not sync targets")
    target = get_object_or_404(SyncTarget, pk=pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Test {target.name}: what a sync would write (nothing is written)",
        "opts": model_admin.model._meta,
        "target": target,
        "test": sync_target_test(target=target) if request.method == "POST" else None,
        "share_with": principal_email(target.principal),
    }
    return TemplateResponse(request, "admin/sheetsync/synctarget/test.html", context)


def sync_target_test_button(obj: SyncTarget | None) -> str:
    """The form's "test" button: it posts the form as typed (saved or not) to the test page, in a new tab."""
    url = reverse("admin:sheetsync_synctarget_test_unsaved")
    saved = ""
    if obj is not None and obj.pk is not None:
        url += f"?target={obj.pk}"  # the edits are tested over the saved target (its written width...)
        saved = format_html(
            ' <a class="button" id="test-target" href="{}">Test the saved target</a>',
            reverse("admin:sheetsync_synctarget_test", args=[obj.pk]),
        )
    return format_html(
        '<button type="submit" class="button" id="test-unsaved" name="_test" formaction="{}" formmethod="post" '
        'formtarget="_blank" formnovalidate>Test what is typed: read the source and the sheet, show the diff '
        "(saves and writes nothing)</button>{}",
        url,
        saved,
    )


def sync_target_test_unsaved_view(model_admin: Any, request):
    """POST (the form's "test" button): build the target from the form as typed, without saving it, and test it.

    Needs the sync permission (it reads the source and the sheet); it saves and writes nothing. Form errors are
    shown instead of a test.
    """
    if not request.user.has_perm("sheetsync.sync_synctarget"):
        raise PermissionDenied("you may not sync targets")
    if request.method != "POST":
        from django.http import HttpResponseNotAllowed

        return HttpResponseNotAllowed(["POST"])
    instance = None
    object_id = request.GET.get("target", "")
    if object_id and str(object_id).isdigit():
        instance = SyncTarget.objects.filter(pk=object_id).first()
    form = SyncTargetForm(data=request.POST, instance=instance)
    # Testing a new target under a name that exists already is still a test: the name is not what is tested.
    if form.is_valid() or set(form.errors) <= {"name"}:
        target = form.save(commit=False) if not form.errors else _unsaved_from(form)
        test = sync_target_test(target=target)
        errors = None
    else:
        target, test, errors = form.instance, None, form.errors
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Test {target.name or 'the new target'}: what a sync would write (nothing is saved or written)",
        "opts": model_admin.model._meta,
        "target": target,
        "unsaved": True,
        "test": test,
        "form_errors": errors,
        "share_with": principal_email(target.principal),
    }
    return TemplateResponse(request, "admin/sheetsync/synctarget/test.html", context)


def _unsaved_from(form: SyncTargetForm) -> SyncTarget:
    target = form.instance
    for name, value in form.cleaned_data.items():
        setattr(target, name, value)
    return target

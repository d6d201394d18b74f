"""Exports and failing samples carry pseudonyms of personal identifiers, stable across rows and exports."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from privacy.pseudonym import keys_pseudonymise, pseudonymise
from tests.privacy import factories

pytestmark = pytest.mark.django_db


def test_quarantine_export_pseudonymises_customers_and_keeps_joins(capsys):
    run = factories.quality_run()
    factories.quarantined(run, n=2)
    factories.quarantined(run, email="bob@example.com", customer="C0000099")
    call_command("quarantine_export", "--run", str(run.pk))
    text = capsys.readouterr().out
    assert "example.com" not in text and factories.CUSTOMER not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 and rows[0]["customer_id"] == rows[1]["customer_id"] != rows[2]["customer_id"]
    assert rows[0]["customer_email"] == pseudonymise(factories.EMAIL, domain="email")
    assert rows[0]["revenue"] == "-1.0" and rows[0]["reason_codes"] == "REVENUE_NEGATIVE"
    with pytest.raises(CommandError, match="no quarantined rows match"):
        call_command("quarantine_export", "--dataset", "nothing")


def test_failing_samples_keep_personal_key_columns_as_pseudonyms():
    keys = [["O1", "ann@example.com"], ["O2", None]]
    out = keys_pseudonymise("sales.order_lines", ("order_id", "customer_email"), keys)
    assert out == [["O1", pseudonymise("ann@example.com", domain="email")], ["O2", None]]
    assert keys_pseudonymise("sales.order_lines", ("order_id", "line_no"), [["O1", 1]]) == [["O1", 1]]

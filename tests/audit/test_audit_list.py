"""The audit list at size: search by actor, action, object and time without touching hashes, pages without COUNT(*),
no DISTINCT drill-down, links to objects, and a streamed export (CSV, JSON Lines) of exactly the list's filter."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.admin_list import SearchError, audit_search_q
from audit.models import AuditEvent
from audit.services import audit_log

pytestmark = pytest.mark.django_db


def _events(role_user):
    alice, bob = role_user("Data Steward", username="alice"), role_user("Content Admin", username="bob")
    for i in range(3):
        audit_log(action="sheetsync.target_paused", object_type="sheetsync.synctarget", object_id=str(i + 1),
                  object_repr=f"target {i}", data={}, actor=alice)  # fmt: skip
    audit_log(
        action="sheetsync.target_resumed",
        object_type="cleanup.dashboardpin",
        object_id="9",
        object_repr="pin",
        actor=bob,
    )
    return alice, bob


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_search_terms_are_equalities_or_prefixes_never_a_hash(role_user):
    _events(role_user)
    some_hash = AuditEvent.objects.order_by("seq").first().hash

    def found(text):
        return sorted(AuditEvent.objects.filter(audit_search_q(text)).values_list("action", flat=True))

    assert found("actor:alice") == ["sheetsync.target_paused"] * 3
    assert found("action:sheetsync.target_r") == ["sheetsync.target_resumed"]
    assert found("object:sheetsync.synctarget:2") == ["sheetsync.target_paused"]
    assert found("bob") == ["sheetsync.target_resumed"]
    assert found(some_hash) == [] and found(some_hash[:10]) == []
    assert len(found("since:2000-01-01 until:2999-12-31 actor:alice")) == 3
    assert found("until:2000-01-01") == []
    with pytest.raises(SearchError, match="not a day"):
        audit_search_q("since:yesterday")
    sql = str(AuditEvent.objects.filter(audit_search_q("alice")).query).split(" WHERE ")[1]
    assert "hash" not in sql and "object_repr" not in sql  # equalities, and a prefix on the action only


def test_the_list_pages_without_count_links_objects_and_offers_exports(role_user, client):
    _events(role_user)
    client.force_login(role_user("Auditor", username="audrey"))
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:audit_auditevent_changelist"))
    body = page.content.decode()
    assert page.status_code == 200 and "Audit chain intact" in body
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries if "AUDIT_AUDITEVENT" in q["sql"].upper())
    assert "COUNT(" not in sql and "DISTINCT" not in sql
    assert 'href="/admin/sheetsync/synctarget/2/change/"' in body  # the object, one click away
    assert reverse("admin:audit_auditevent_export", args=["csv"]) in body
    filtered = client.get(reverse("admin:audit_auditevent_changelist") + "?q=actor:bob").content.decode()
    results = filtered.split('id="result_list"')[1].split("</table>")[0]
    assert "sheetsync.target_resumed" in results and "sheetsync.target_paused" not in results
    assert reverse("admin:audit_auditevent_export", args=["csv"]) + "?q=actor%3Abob" in filtered
    by_object = client.get(
        reverse("admin:audit_auditevent_changelist") + "?object_type=sheetsync.synctarget&object_id=3"
    ).content.decode()
    assert by_object.count('href="/admin/sheetsync/synctarget/3/change/"') == 1


def test_the_paginator_pages_the_whole_chain_by_seq(role_user, client, settings):
    from audit.admin import AuditEventAdmin

    _events(role_user)
    for i in range(6):
        audit_log(
            action="sheetsync.target_resumed",
            object_type="cleanup.dashboardpin",
            object_id=str(100 + i),
            object_repr="p",
        )
    client.force_login(role_user("Auditor", username="audrey"))
    AuditEventAdmin.list_per_page, saved = 4, AuditEventAdmin.list_per_page
    try:
        head = AuditEvent.objects.order_by("-seq").first().seq
        pages = [
            client.get(reverse("admin:audit_auditevent_changelist") + f"?p={p}").context["cl"]
            for p in range(1, (head + 3) // 4 + 1)
        ]
    finally:
        AuditEventAdmin.list_per_page = saved
    seqs = [[e.seq for e in cl.result_list] for cl in pages]
    assert pages[0].result_count == head
    assert seqs[0] == [head, head - 1, head - 2, head - 3] and seqs[1][0] == head - 4
    assert sum(len(s) for s in seqs) == head and sorted(sum(seqs, []), reverse=True) == list(range(head, 0, -1))


def test_exports_stream_the_filtered_trail_as_csv_and_json_lines(role_user, client):
    _events(role_user)
    client.force_login(role_user("Auditor", username="audrey"))
    url = reverse("admin:audit_auditevent_export", args=["csv"]) + "?q=actor:alice"
    reply = client.get(url)
    assert reply.status_code == 200 and reply["Content-Type"].startswith("text/csv")
    assert "attachment" in reply["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(reply).decode())))
    assert [r["action"] for r in rows] == ["sheetsync.target_paused"] * 3
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    assert rows[0]["hash"] == AuditEvent.objects.get(seq=int(rows[0]["seq"])).hash
    lines = _body(
        client.get(reverse("admin:audit_auditevent_export", args=["jsonl"]) + "?action=sheetsync.target_resumed")
    )
    events = [json.loads(line) for line in lines.decode().splitlines()]
    assert [e["action"] for e in events] == ["sheetsync.target_resumed"] and events[0]["object_id"] == "9"
    assert client.get(reverse("admin:audit_auditevent_export", args=["xml"])).status_code == 404
    client.force_login(role_user("Viewer", username="vic"))
    refused = client.get(url)
    assert refused.status_code == 403 and "audit.view_auditevent" in refused.content.decode()


def test_a_filtered_count_stops_at_the_cap_unordered_and_the_export_never_counts(
    role_user, client, settings, monkeypatch
):
    from audit import admin_list

    _events(role_user)
    for i in range(5):
        audit_log(action="sheetsync.target_resumed", object_type="cleanup.dashboardpin", object_id=str(20 + i))
    client.force_login(role_user("Auditor", username="audrey"))
    settings.AUDIT_LIST_COUNT_CAP = 3
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:audit_auditevent_changelist") + "?action=sheetsync.target_resumed")
    cl, page = response.context["cl"], response.content.decode()
    counts = [q["sql"].upper() for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "ORDER BY" not in counts[0]  # stops at the cap instead of sorting every match
    if connection.vendor == "postgresql":  # past the cap: the planner's estimate, no second count, said "about"
        assert len(counts) == 1 and cl.result_count >= 3 and 'class="estimated-count"' in page
    else:  # no planner to ask: the exact count, so every page stays reachable
        assert len(counts) == 2 and cl.result_count == 6 and "estimated-count" not in page
    assert len(cl.result_list) == 6
    monkeypatch.setattr(admin_list, "EXPORT_CHUNKS", (2, 3))  # chunk boundaries inside the trail
    with CaptureQueriesContext(connection) as queries:
        rows = list(csv.DictReader(io.StringIO(_body(
            client.get(reverse("admin:audit_auditevent_export", args=["csv"]))
        ).decode())))  # fmt: skip
    assert [int(r["seq"]) for r in rows] == list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert len(rows) >= 9 and not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]

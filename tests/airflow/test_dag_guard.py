"""Pausing or unpausing a destructive DAG (looker_cleanup) from the admin's Airflow page needs a reason and a second
Platform Admin; other DAGs are paused at once as before."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from approvals.services import ApprovalError, approval_approve

pytestmark = pytest.mark.django_db
PAGE = "/admin/orchestration/jobrun/airflow/"


@pytest.fixture
def airflow_calls(settings, monkeypatch):
    from connectors import airflow

    settings.AIRFLOW_API_URL = "http://127.0.0.1:9"
    settings.AIRFLOW_PASSWORD = "pw"
    calls: list[tuple[str, bool]] = []
    monkeypatch.setattr(airflow.AirflowClient, "dags_list", lambda self, **kw: [])
    monkeypatch.setattr(
        airflow.AirflowClient, "dag_pause_set", lambda self, *, dag_id, paused: calls.append((dag_id, paused))
    )
    return calls


def test_pausing_the_cleanup_dag_needs_a_second_platform_admin(
    airflow_calls, client, role_user, django_capture_on_commit_callbacks
):
    pat = role_user("Platform Admin", username="pat")
    client.force_login(pat)
    client.post(PAGE, {"dag_id": "sheets_sync", "action": "pause"})
    assert airflow_calls == [("sheets_sync", True)]  # not destructive: at once
    page = client.post(PAGE, {"dag_id": "looker_cleanup", "action": "unpause", "reason": ""}, follow=True)
    assert "a reason is required" in page.content.decode() and not ApprovalRequest.objects.exists()
    client.post(PAGE, {"dag_id": "looker_cleanup", "action": "unpause", "reason": "monthly cleanup resumes"})
    request = ApprovalRequest.objects.get()
    assert request.inputs == {"dag_id": "looker_cleanup", "operation": "unpause"}
    assert airflow_calls == [("sheets_sync", True)]
    with pytest.raises(ApprovalError, match="other than the requester"):
        approval_approve(request_id=request.pk, actor=pat)
    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(request_id=request.pk, actor=role_user("Platform Admin", username="paula"))
    request.refresh_from_db()
    assert request.execution == "done" and airflow_calls[-1] == ("looker_cleanup", False)

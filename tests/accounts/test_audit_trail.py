"""The audit trail: append-only in the ORM, in the admin and (on PostgreSQL) in the database;
filterable and exportable by auditors; the analysis history panel for clinic admins."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin import site
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse

from accounts.audit import audit_record
from accounts.models import AuditEvent, Role, User
from accounts.selectors.audit import history_for
from tests import factories


@pytest.fixture
def event(staff, patient):
    return audit_record(action="patient.view", user=staff, obj=patient)


def test_saved_event_cannot_be_changed_or_deleted_through_the_orm(event):
    event.action = "nothing.happened"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "patient.view"


def test_event_records_who_role_clinic_patient_and_object(event, staff, patient):
    assert event.user_email == staff.email and event.role == Role.STAFF
    assert event.clinic_id == staff.clinic_id and event.patient_id == patient.pk
    assert (event.object_type, event.object_id) == ("patient", str(patient.pk))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE accounts_auditevent SET action = 'forged' WHERE id = %s",
        "UPDATE accounts_auditevent SET user_email = 'someone@else' WHERE id = %s",
        "DELETE FROM accounts_auditevent WHERE id = %s",
    ],
)
def test_database_rejects_raw_update_and_delete(event, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "patient.view"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_deleting_a_user_unlinks_their_events_but_keeps_the_email(event, staff):
    staff.delete()
    kept = AuditEvent.objects.get(pk=event.pk)
    assert kept.user_id is None and kept.user_email == staff.email


def test_role_change_in_the_admin_is_audited_with_who_before_and_after(staff, rf):
    superuser = factories.UserFactory(is_staff=True, is_superuser=True, clinic=None, role="")
    request = rf.post("/admin/accounts/user/", REMOTE_ADDR="10.2.3.4")
    request.user = superuser
    staff.role = Role.DOCTOR
    site._registry[User].save_model(request, staff, form=None, change=True)
    change = AuditEvent.objects.get(action="user.role_change", object_id=str(staff.pk))
    assert change.detail["changes"]["role"] == ["staff", "doctor"]
    assert change.user_email == superuser.email and change.ip_address == "10.2.3.4"


def test_role_change_outside_the_admin_is_audited_too(staff):
    staff.role = Role.ADMIN
    staff.save()
    change = AuditEvent.objects.get(action="user.role_change")
    assert change.detail["changes"]["role"] == ["staff", "admin"]


@pytest.fixture
def auditor_client(client, db, sign_in_with_mfa):
    auditor = factories.UserFactory(
        email="auditor@hospital.example", is_staff=True, is_superuser=True, clinic=None, role=""
    )
    sign_in_with_mfa(auditor)  # the admin admits no one without an authenticator code
    return client


def test_admin_shows_events_but_offers_no_add_change_or_delete(auditor_client, event):
    changelist = auditor_client.get(reverse("admin:accounts_auditevent_changelist"))
    assert changelist.status_code == 200 and "patient.view" in changelist.content.decode()
    assert auditor_client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    delete_url = reverse("admin:accounts_auditevent_delete", args=[event.pk])
    assert auditor_client.post(delete_url, {"post": "yes"}).status_code == 403
    change_url = reverse("admin:accounts_auditevent_change", args=[event.pk])
    auditor_client.post(change_url, {"action": "forged"})
    assert AuditEvent.objects.get(pk=event.pk).action == "patient.view"


def test_admin_filters_by_patient_action_and_user(auditor_client, staff, patient, clinic):
    other_patient = factories.PatientFactory(clinic=clinic)
    audit_record(action="patient.view", user=staff, obj=patient)
    audit_record(action="patient.view", user=staff, obj=other_patient)
    audit_record(action="report.download", user=staff, obj=patient)
    url = reverse("admin:accounts_auditevent_changelist")
    by_patient = auditor_client.get(url, {"patient": other_patient.pk})
    assert by_patient.context["cl"].result_count == 1
    by_action = auditor_client.get(url, {"action": "report.download"})
    assert by_action.context["cl"].result_count == 1
    by_user = auditor_client.get(url, {"user__id__exact": staff.pk})
    assert by_user.context["cl"].result_count == 3


def test_csv_export_has_every_filtered_event_and_is_itself_audited(auditor_client, staff, patient):
    for _ in range(3):
        audit_record(action="patient.view", user=staff, obj=patient)
    audit_record(action="login", user=staff, user_agent_note="=cmd|' /C calc'!A0")
    url = reverse("admin:accounts_auditevent_changelist")
    response = auditor_client.get(url, {"export": "csv", "action": "patient.view"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["at", "user_email", "role", "clinic_id", "action"]
    assert len(rows) == 4 and {row[4] for row in rows[1:]} == {"patient.view"}
    assert AuditEvent.objects.filter(action="audit.export", detail__rows=3).exists()


def test_csv_export_neutralises_spreadsheet_formulas(auditor_client, db):
    audit_record(action="login.failed", email='=HYPERLINK("http://evil")')
    response = auditor_client.get(
        reverse("admin:accounts_auditevent_changelist"), {"export": "csv"}
    )
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body


def test_history_panel_lists_an_analysis_events_for_admins_only(
    clinic_admin, doctor, staff, other_clinic
):
    analysis = factories.DoneAnalysisFactory(image__lesion__patient__clinic=clinic_admin.clinic)
    audit_record(action="image.upload", user=staff, obj=analysis.image)
    audit_record(action="analysis.view", user=doctor, obj=analysis)
    review = factories.ReviewFactory(analysis=analysis, author=doctor)
    audit_record(action="review.sign", user=doctor, obj=review)
    audit_record(
        action="analysis.view", user=factories.UserFactory(clinic=other_clinic), obj=analysis
    )
    unrelated = factories.DoneAnalysisFactory(image__lesion__patient__clinic=clinic_admin.clinic)
    audit_record(action="analysis.view", user=doctor, obj=unrelated)

    events = list(history_for(analysis, user=clinic_admin))
    assert [e.action for e in events] == ["image.upload", "analysis.view", "review.sign"]
    assert list(history_for(analysis, user=doctor)) == []


def test_analysis_page_shows_the_history_to_admins_and_not_to_staff(client, clinic_admin, staff):
    analysis = factories.DoneAnalysisFactory(image__lesion__patient__clinic=staff.clinic)
    audit_record(action="image.upload", user=staff, obj=analysis.image)
    url = reverse("diagnosis:analysis", args=[analysis.pk])
    client.force_login(clinic_admin)
    page = client.get(url).content.decode()
    assert "audit-history" in page and "image.upload" in page and staff.email in page
    client.force_login(staff)
    assert "audit-history" not in client.get(url).content.decode()

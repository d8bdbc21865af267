"""The model registry in the Django admin: superusers only, read-only pages that show the gate's
verdict and the figures, and a status form that goes through the audited services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from diagnosis.models import ModelEvaluation, ModelStatus
from tests import factories
from tests.diagnosis import model_dirs


@pytest.fixture
def superuser(db):
    return factories.SuperuserFactory(full_name="Rita Root", email="root@portal.example")


@pytest.fixture
def registry(db):
    active = factories.ModelVersionFactory(
        version="served-v1",
        status=ModelStatus.ACTIVE,
        validation={
            "measured_on": "report half",
            "n": 700,
            "n_melanoma": 80,
            "boundary": "triage above routine",
            "balanced_accuracy": {"value": 0.70, "ci95": None},
            "melanoma_sensitivity": {"value": 0.95, "ci95": [0.88, 0.98], "count": [76, 80]},
        },
    )
    worse = factories.ModelVersionFactory(
        version="worse-v2",
        validation={
            "balanced_accuracy": {"value": 0.75, "ci95": None},
            "melanoma_sensitivity": {"value": 0.80, "ci95": [0.7, 0.87], "count": [64, 80]},
        },
    )
    return active, worse


def test_version_page_shows_the_gate_verdict_and_the_local_evaluation(
    client, superuser, registry, sign_in_with_mfa
):
    active, worse = registry
    ModelEvaluation.objects.create(
        model_version=worse,
        compared_with="served-v1",
        n_cases=40,
        n_melanomas=6,
        created_by_name="Rita Root",
        report={
            "cases": {
                "n_images": 40,
                "n_lesions": 38,
                "n_melanoma": 6,
                "by_source": {"histopathology": 30, "signed review": 10},
                "skipped": {},
            },
            "bootstrap": {"resamples": 1000},
            "note": "Both versions on the same images.",
            "candidate": {
                "version": "worse-v2",
                "balanced_accuracy": {"value": 0.6125, "ci95": [0.5, 0.7]},
                "melanoma_sensitivity": {"value": 0.5, "ci95": [0.2, 0.8], "count": [3, 6]},
            },
            "active": {"version": "served-v1", "balanced_accuracy": {"value": 0.65}},
        },
    )
    sign_in_with_mfa(superuser)

    page = client.get(reverse("admin:diagnosis_modelversion_change", args=[worse.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Would be refused" in text and "shipped validation figures" in text
    assert "melanoma sensitivity at the triage boundary 80.0% is below 88.0%" in text
    assert "50.0% (20.0-80.0) [3 of 6]" in text  # the local evaluation, with interval and count
    assert "served-v1 (active then)" in text


def test_status_form_promotes_through_the_gate_and_shows_a_refusal(
    client, superuser, registry, sign_in_with_mfa
):
    active, worse = registry
    sign_in_with_mfa(superuser)
    url = reverse("admin:diagnosis_modelversion_status", args=[worse.pk])

    refused = client.post(url, {"change": "promote", "reason": "Looks better"})

    assert refused.status_code == 400
    assert "does not pass the gate" in refused.content.decode()
    worse.refresh_from_db()
    assert worse.status == ModelStatus.CANDIDATE

    shadowed = client.post(url, {"change": "shadow", "reason": "Watch it on real uploads"})

    assert shadowed.status_code == 302
    worse.refresh_from_db()
    assert worse.status == ModelStatus.SHADOW and worse.status_changed_by == superuser


def test_evaluate_action_queues_the_evaluation_once_committed(
    client, superuser, registry, sign_in_with_mfa, django_capture_on_commit_callbacks
):
    active, worse = registry
    sign_in_with_mfa(superuser)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("admin:diagnosis_modelversion_changelist"),
            {"action": "evaluate", "_selected_action": [worse.pk]},
        )

    assert response.status_code == 302 and len(callbacks) == 1


def test_clinic_admins_do_not_see_the_registry_in_the_admin(
    client, clinic_admin, registry, sign_in_with_mfa
):
    clinic_admin.is_staff = True
    clinic_admin.save()
    sign_in_with_mfa(clinic_admin)

    response = client.get(reverse("admin:diagnosis_modelversion_changelist"))

    assert response.status_code == 403
    status = client.get(reverse("admin:diagnosis_modelversion_status", args=[registry[1].pk]))
    assert status.status_code in (302, 403)


def test_model_dirs_helper_writes_a_loadable_card(tmp_path):
    # The helper the registry's tests share writes what ml.export writes.
    from ml.verify import verify_model_dir

    assert verify_model_dir(model_dirs.random_model(tmp_path, "helper-v1")).version == "helper-v1"

"""Local validation on the clinic's confirmed cases, and the promotion gate measured on them,
with real exported models: the shipped v2 against a deliberately degraded copy of it.

The cases are the shipped HAM10000 samples (two of each class, their histology or consensus
diagnosis from samples/manifest.csv), each a lesion of its own patient with its recorded site.
"""

from __future__ import annotations

import csv

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditEvent
from diagnosis import services
from diagnosis.models import ModelEvaluation, ModelStatus, ModelVersion
from diagnosis.selectors.model_version import local_validation_cases, promotion_gate
from tests import factories
from tests.diagnosis import model_dirs

DEGRADED = f"{model_dirs.V2}-degraded"


@pytest.fixture
def superuser(db):
    return factories.SuperuserFactory(full_name="Rita Root", email="root@portal.example")


@pytest.fixture
def confirmed_cases(clinic):
    """One lesion per sample image, its diagnosis confirmed by a histology result."""
    with open(factories.SAMPLES / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        patient = factories.PatientFactory(clinic=clinic)
        lesion = factories.LesionFactory(patient=patient, anatomic_site=row["localization"])
        content = (factories.SAMPLES / row["file"]).read_bytes()
        factories.DermoscopicImageFactory(
            lesion=lesion, file=ContentFile(content, name=row["file"])
        )
        factories.HistopathologyFactory(lesion=lesion, diagnosis=row["dx"])
    return rows


@pytest.fixture
def registry(db, settings, tmp_path, superuser):
    """v2 and its degraded copy under a test models folder, both registered."""
    from diagnosis.classifier import get_classifier

    root = tmp_path / "models"
    model_dirs.link_shipped(root, model_dirs.V2)
    model_dirs.degraded_copy(root, DEGRADED)
    settings.ML_MODELS_ROOT = root
    settings.MODEL_GATE_MIN_MELANOMAS = 2
    (root / "CURRENT").write_text(model_dirs.V2)
    services.model_registry_sync()
    get_classifier.cache_clear()
    yield {v.version: v for v in ModelVersion.objects.all()}
    get_classifier.cache_clear()


def test_histology_labels_a_case_and_a_signed_review_stands_in_where_there_is_none(clinic):
    with_histology = factories.DermoscopicImageFactory(lesion__patient__clinic=clinic)
    factories.HistopathologyFactory(lesion=with_histology.lesion, diagnosis="bcc")
    reviewed = factories.DoneAnalysisFactory(image__lesion__patient__clinic=clinic)
    factories.ReviewFactory(
        analysis=reviewed, diagnosis="nv", signed_at=timezone.now(), signed_by_name="Dr. Derm"
    )
    draft_only = factories.DoneAnalysisFactory(image__lesion__patient__clinic=clinic)
    factories.ReviewFactory(analysis=draft_only, diagnosis="mel")  # unsigned: no label
    other = factories.DermoscopicImageFactory(lesion__patient__clinic=clinic)
    factories.HistopathologyFactory(lesion=other.lesion, diagnosis="other", diagnosis_other="SK")
    purged = factories.DermoscopicImageFactory(
        lesion__patient__clinic=clinic, file="", original_deleted_at=timezone.now()
    )
    factories.HistopathologyFactory(lesion=purged.lesion, diagnosis="mel")
    factories.HistopathologyFactory(lesion__patient__clinic=factories.ClinicFactory())

    local = local_validation_cases(clinic_id=clinic.pk)

    labels = {(case.image.pk, case.label, case.source) for case in local.cases}
    assert labels == {
        (with_histology.pk, "bcc", "histopathology"),
        (reviewed.image_id, "nv", "signed review"),
    }
    assert local.skipped == {"diagnosis outside the seven classes": 1, "image no longer kept": 1}


def test_model_evaluate_stores_both_versions_figures_on_the_same_cases(
    registry, confirmed_cases, superuser, capsys
):
    call_command("model_evaluate", DEGRADED, by=superuser.email, resamples=200)

    evaluation = ModelEvaluation.objects.get(model_version=registry[DEGRADED])
    report = evaluation.report
    assert evaluation.compared_with == model_dirs.V2
    assert (evaluation.n_cases, evaluation.n_melanomas) == (14, 2)
    assert report["cases"]["by_source"] == {"histopathology": 14}
    assert report["bootstrap"] == {
        "resamples": 200,
        "unit": "lesion",
        "confidence": 0.95,
        "seed": 0,
    }
    candidate, active = report["candidate"], report["active"]
    assert (candidate["version"], active["version"]) == (DEGRADED, model_dirs.V2)
    for figures in (candidate, active):
        assert figures["n"] == 14 and figures["n_melanoma"] == 2
        assert figures["support"] == {
            c: 2 for c in ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
        }
        low, high = figures["balanced_accuracy"]["ci95"]
        assert low <= figures["balanced_accuracy"]["value"] <= high
        assert figures["melanoma_sensitivity"]["count"][1] == 2
    # The degraded copy calls no melanoma above routine.
    assert candidate["melanoma_sensitivity"]["count"] == [0, 2]
    assert candidate["balanced_accuracy"]["value"] < active["balanced_accuracy"]["value"]
    out = capsys.readouterr().out
    assert "14 images of 14 lesions, 2 melanomas" in out and DEGRADED in out
    event = AuditEvent.objects.get(action="model.evaluate")
    assert event.user == superuser and event.detail["cases"] == 14


def test_gate_on_local_cases_waits_for_an_evaluation_beside_the_active_version(
    registry, confirmed_cases
):
    decision = promotion_gate(registry[DEGRADED])

    assert not decision.passed and decision.basis == "local"
    assert f"model_evaluate {DEGRADED}" in decision.refusal


def test_gate_refuses_the_degraded_copy_measured_on_local_cases(
    registry, confirmed_cases, superuser
):
    services.model_version_evaluate(
        actor=superuser, model_version=registry[DEGRADED], resamples=200
    )

    with pytest.raises(services.PromotionRefused) as refused:
        services.model_version_promote(
            actor=superuser, model_version=registry[DEGRADED], reason="Try it"
        )

    decision = refused.value.decision
    assert decision.basis == "local" and "clinic's confirmed cases" in decision.basis_words
    balanced = decision.checks[1]
    assert balanced.name == "Balanced accuracy" and not balanced.passed
    assert "balanced accuracy" in decision.refusal
    assert ModelVersion.objects.get(version=model_dirs.V2).status == ModelStatus.ACTIVE


def test_gate_accepts_v2_against_the_degraded_copy_serving(registry, confirmed_cases, superuser):
    # The degraded copy serving, v2 the candidate: v2 must pass where the copy failed.
    v2, degraded = registry[model_dirs.V2], registry[DEGRADED]
    v2.status, degraded.status = ModelStatus.CANDIDATE, ModelStatus.ACTIVE
    v2.save()
    degraded.save()
    services.model_version_evaluate(actor=superuser, model_version=v2, resamples=200)

    services.model_version_promote(actor=superuser, model_version=v2, reason="Back to v2")

    v2.refresh_from_db()
    degraded.refresh_from_db()
    assert (v2.status, degraded.status) == (ModelStatus.ACTIVE, ModelStatus.RETIRED)
    gate = v2.status_changes.first().gate
    assert gate["passed"] and gate["basis"] == "local"
    sensitivity = gate["checks"][0]
    assert sensitivity["candidate"] >= sensitivity["must_reach"]

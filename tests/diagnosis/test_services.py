"""The life of an analysis in the services: lesions, the worker's run, failure, retry, sweep."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus
from tests import factories


@pytest.fixture
def no_models(settings, tmp_path):
    settings.ML_MODELS_ROOT = tmp_path / "empty"
    settings.ML_MODELS_ROOT.mkdir()
    from diagnosis.classifier import get_classifier

    get_classifier.cache_clear()
    yield
    get_classifier.cache_clear()


def test_lesion_needs_a_known_anatomic_site(staff, patient):
    with pytest.raises(ValidationError):
        services.lesion_create(actor=staff, patient=patient, anatomic_site="elbow")


def test_lesion_cannot_be_added_to_another_clinics_patient(other_staff, patient):
    with pytest.raises(PermissionDenied):
        services.lesion_create(actor=other_staff, patient=patient, anatomic_site="back")


def test_run_without_a_model_fails_with_no_classifier_installed(no_models, lesion):
    analysis = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))

    result = services.analysis_run(analysis_id=analysis.pk)

    assert result.status == AnalysisStatus.FAILED
    assert result.failure_reason == services.NO_CLASSIFIER
    assert result.probabilities is None and result.attempts == 1


def test_run_of_a_finished_analysis_changes_nothing(no_models, lesion):
    done = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    assert services.analysis_run(analysis_id=done.pk) is None
    done.refresh_from_db()
    assert done.status == AnalysisStatus.DONE and done.attempts == 0


def test_unreadable_stored_image_fails_with_a_reason(lesion, settings):
    from pathlib import Path

    if not (Path(settings.ML_MODELS_ROOT) / "CURRENT").exists():
        pytest.skip("needs the trained model: the image is read after the classifier loads")
    image = factories.DermoscopicImageFactory(
        lesion=lesion, file=factories.ContentFile(b"not an image", name="x.jpg")
    )
    analysis = factories.AnalysisFactory(image=image)
    result = services.analysis_run(analysis_id=analysis.pk)
    assert result.status == AnalysisStatus.FAILED
    assert "could not be read" in result.failure_reason


def test_retry_requeues_only_failed_analyses(staff, lesion):
    image = factories.DermoscopicImageFactory(lesion=lesion)
    failed = factories.AnalysisFactory(
        image=image, status=AnalysisStatus.FAILED, failure_reason="x"
    )
    done = factories.DoneAnalysisFactory(image=image)

    assert services.analysis_retry(actor=staff, analysis=failed).status == AnalysisStatus.QUEUED
    assert services.analysis_retry(actor=staff, analysis=done).status == AnalysisStatus.DONE


def test_stale_sweep_resends_only_old_waiting_analyses(lesion, django_capture_on_commit_callbacks):
    image = factories.DermoscopicImageFactory(lesion=lesion)
    old = factories.AnalysisFactory(image=image)
    factories.AnalysisFactory(image=image)  # fresh: still within any task's time
    Analysis.objects.filter(pk=old.pk).update(
        queued_at=timezone.now() - datetime.timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.analysis_requeue_stale(older_than_s=900) == 1
    assert len(callbacks) == 1

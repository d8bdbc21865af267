"""Database-level rules of lesions, images and analyses (they hold whatever code writes)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from diagnosis.models import Analysis, AnalysisStatus
from tests import factories


def test_done_analysis_without_probabilities_is_refused_by_the_database(lesion):
    image = factories.DermoscopicImageFactory(lesion=lesion)
    with pytest.raises(IntegrityError), transaction.atomic():
        Analysis.objects.create(image=image, status=AnalysisStatus.DONE)


def test_one_submission_token_is_one_image(lesion):
    first = factories.DermoscopicImageFactory(lesion=lesion)
    first.submission_token = "6f1c1f9e-2f0b-4bd4-9c55-3f1f3c1a1e11"
    first.save()
    second = factories.DermoscopicImageFactory(lesion=lesion)
    second.submission_token = first.submission_token
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_new_analysis_is_queued_and_pending(lesion):
    analysis = factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    assert analysis.status == AnalysisStatus.QUEUED and analysis.is_pending


def test_stored_image_names_reveal_nothing_about_the_patient(lesion):
    image = factories.DermoscopicImageFactory(lesion=lesion)
    assert image.file.name.startswith("images/")
    assert lesion.patient.last_name not in image.file.name
    assert "lesion" not in image.file.name.rsplit("/", 1)[-1]

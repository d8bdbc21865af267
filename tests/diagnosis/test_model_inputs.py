"""The worker passes the clinic's record of a lesion (age, sex, site) to a model that reads
it, and every result says what the model read."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from diagnosis import services
from diagnosis.models import AnalysisStatus
from tests import factories
from tests.ml.conftest import install_v2_model


@pytest.fixture
def v2_model(db, settings, tmp_path):
    """A random-weight v2 model with a metadata branch installed as the served one."""
    settings.ML_MODELS_ROOT = tmp_path / "models"
    settings.ML_MODELS_ROOT.mkdir()
    install_v2_model(settings.ML_MODELS_ROOT)
    from diagnosis.classifier import get_classifier

    get_classifier.cache_clear()
    yield
    get_classifier.cache_clear()


def _analysis_for(*, sex: str, site: str, born: datetime.date):
    patient = factories.PatientFactory(sex=sex, date_of_birth=born)
    lesion = factories.LesionFactory(patient=patient, anatomic_site=site)
    return factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))


def test_age_is_the_patients_age_on_the_day_the_image_was_taken(db):
    analysis = _analysis_for(sex="male", site="face", born=datetime.date(1950, 1, 1))
    image = analysis.image
    image.uploaded_at = timezone.make_aware(datetime.datetime(2020, 6, 1))
    image.save(update_fields=["uploaded_at"])

    record = services.lesion_metadata(image)

    assert (record.age, record.sex, record.site) == (70, "male", "head/neck")


@pytest.mark.parametrize(
    "sex, site, used",
    [
        ("female", "back", ["age", "sex", "site"]),
        ("unknown", "back", ["age", "site"]),
        ("other", "unknown", ["age"]),
    ],
)
def test_the_result_records_which_fields_the_model_read(v2_model, sex, site, used):
    analysis = _analysis_for(sex=sex, site=site, born=datetime.date(1980, 3, 2))

    result = services.analysis_run(analysis_id=analysis.pk)

    assert result.status == AnalysisStatus.DONE
    assert result.metadata_used == used
    assert result.model_inputs_display == "image, " + ", ".join(used)
    assert sum(result.probabilities.values()) == pytest.approx(1.0)


def test_a_model_without_metadata_reads_the_image_only(db):
    analysis = factories.DoneAnalysisFactory()

    assert analysis.metadata_used == []
    assert analysis.model_inputs_display == "image only"

"""Shadow mode: the version in shadow runs in the same worker task once the served result is
stored; its result is kept for the comparison page alone, never shown on a page, the PDF, the
API or FHIR; the comparison page counts agreement, triage moves and time per image."""

from __future__ import annotations

import io
import shutil

import pypdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent
from diagnosis import services
from diagnosis.models import Analysis, AnalysisStatus, ModelStatus, ModelVersion, ShadowResult
from diagnosis.tasks import analyse_image
from reports.services import render_analysis_pdf
from tests import factories
from tests.diagnosis import model_dirs

SHADOW_NAME = "shadow-secret-v9"


@pytest.fixture
def two_models(db, settings, tmp_path):
    """'served-v1' active and 'trial-v2' in shadow: random 128 px networks."""
    from diagnosis.classifier import _load_shadow, get_classifier

    root = tmp_path / "models"
    model_dirs.random_model(root, "served-v1", current=True)
    model_dirs.random_model(root, "trial-v2", seed=1)
    settings.ML_MODELS_ROOT = root
    services.model_registry_sync()
    ModelVersion.objects.filter(version="trial-v2").update(status=ModelStatus.SHADOW)
    get_classifier.cache_clear()
    _load_shadow.cache_clear()
    yield root
    get_classifier.cache_clear()
    _load_shadow.cache_clear()


def _upload(staff, lesion) -> Analysis:
    sample = factories.SAMPLES / "mel_ISIC_0024481.jpg"
    upload = SimpleUploadedFile(sample.name, sample.read_bytes(), content_type="image/jpeg")
    return services.image_upload(actor=staff, lesion=lesion, upload=upload)


def test_the_task_stores_the_served_result_then_the_shadow_result(two_models, staff, lesion):
    analysis = _upload(staff, lesion)

    assert analyse_image(analysis.pk) == AnalysisStatus.DONE

    analysis.refresh_from_db()
    assert analysis.model_version == "served-v1"
    shadow = ShadowResult.objects.get(analysis=analysis)
    assert shadow.model_version.version == "trial-v2"
    assert shadow.status == "done" and set(shadow.probabilities) == set(analysis.probabilities)
    assert shadow.probabilities != analysis.probabilities  # another network, not a copy
    assert shadow.created_at >= analysis.finished_at  # after the served result was stored
    assert {"preprocess", "inference"} <= set(shadow.timings_ms)
    # A second delivery of the task finds the analysis finished and runs nothing again.
    assert analyse_image(analysis.pk) == "skipped"
    assert ShadowResult.objects.filter(analysis=analysis).count() == 1


def test_a_shadow_version_that_fails_leaves_the_served_result_alone(two_models, staff, lesion):
    shutil.rmtree(two_models / "trial-v2")
    analysis = _upload(staff, lesion)

    assert analyse_image(analysis.pk) == AnalysisStatus.DONE

    analysis.refresh_from_db()
    assert analysis.status == AnalysisStatus.DONE and analysis.model_version == "served-v1"
    shadow = ShadowResult.objects.get(analysis=analysis)
    assert shadow.status == "failed" and "trial-v2" in shadow.failure_reason


def test_without_a_shadow_version_nothing_else_runs(two_models, staff, lesion):
    ModelVersion.objects.filter(version="trial-v2").update(status=ModelStatus.CANDIDATE)
    analysis = _upload(staff, lesion)

    analyse_image(analysis.pk)

    assert not ShadowResult.objects.exists()


# --- never shown -------------------------------------------------------------------------------


@pytest.fixture
def shadowed(lesion):
    """A served result (melanoma 71%) and a shadow result on it (vascular lesion 97.2%)."""
    analysis = factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    factories.ShadowResultFactory(analysis=analysis, model_version__version=SHADOW_NAME)
    return analysis


def _assert_served_not_shadow(text: str, analysis: Analysis) -> None:
    assert analysis.model_version in text  # the served result is there...
    assert SHADOW_NAME not in text  # ...and nothing of the shadow one
    assert "97.2" not in text and "97%" not in text


@pytest.mark.parametrize(
    "page",
    ["diagnosis:analysis", "reports:analysis_print", "patients:detail", "diagnosis:worklist"],
)
def test_pages_never_show_a_shadow_result(client, doctor, shadowed, page):
    client.force_login(doctor)
    args = {
        "diagnosis:analysis": [shadowed.pk],
        "reports:analysis_print": [shadowed.pk],
        "patients:detail": [shadowed.image.lesion.patient_id],
        "diagnosis:worklist": [],
    }[page]

    response = client.get(reverse(page, args=args))

    assert response.status_code == 200
    text = response.content.decode()
    assert SHADOW_NAME not in text and "97.2" not in text
    if page != "diagnosis:worklist":
        assert "71" in text  # the served melanoma probability


def test_the_pdf_never_shows_a_shadow_result(doctor, shadowed):
    reader = pypdf.PdfReader(io.BytesIO(render_analysis_pdf(user=doctor, analysis=shadowed)))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())

    _assert_served_not_shadow(text, shadowed)


@pytest.mark.parametrize(
    "path", ["/api/v1/analyses/{pk}/", "/api/v1/analyses/", "/api/v1/analyses/{pk}/fhir/"]
)
def test_the_api_and_fhir_never_show_a_shadow_result(client, staff, shadowed, path):
    client.force_login(staff)

    response = client.get(path.format(pk=shadowed.pk))

    assert response.status_code == 200
    _assert_served_not_shadow(response.content.decode(), shadowed)


# --- the comparison page -----------------------------------------------------------------------


def _served(lesion, **fields) -> Analysis:
    image = factories.DermoscopicImageFactory(lesion=lesion)
    return factories.DoneAnalysisFactory(image=image, **fields)


def test_comparison_counts_agreement_triage_moves_and_time_per_image(
    client, clinic_admin, lesion, other_clinic
):
    version = factories.ModelVersionFactory(version="trial-v2", status=ModelStatus.SHADOW)
    timing = {"preprocess": 10.0, "inference": 30.0, "heatmaps": 500.0}
    same = _served(lesion, top_class="nv", triage_level="routine", timings_ms=timing)
    up = _served(lesion, top_class="nv", triage_level="routine", timings_ms=timing)
    down = _served(lesion, top_class="mel", triage_level="urgent", timings_ms=timing)
    refused = factories.NotAnalysedFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
    for analysis, top, level in (
        (same, "nv", "routine"),
        (up, "nv", "soon"),
        (down, "bkl", "soon"),
    ):
        factories.ShadowResultFactory(
            analysis=analysis,
            model_version=version,
            top_class=top,
            triage_level=level,
            timings_ms={"preprocess": 10.0, "inference": 10.0},
        )
    factories.ShadowResultFactory(analysis=refused, model_version=version)
    elsewhere = _served(factories.LesionFactory(patient__clinic=other_clinic))
    factories.ShadowResultFactory(analysis=elsewhere, model_version=version)
    client.force_login(clinic_admin)

    response = client.get(reverse("diagnosis:model_comparison"))

    assert response.status_code == 200
    row = response.context["rows"][0]
    assert (row.version, row.results, row.compared, row.agree) == ("trial-v2", 4, 3, 2)
    assert (row.moved_up, row.moved_down, row.same_level) == (1, 1, 1)
    assert row.moves == {"routine -> soon": 1, "urgent -> soon": 1}
    assert row.shadow_analysed_refused == 1
    assert (row.served_ms, row.shadow_ms) == (40.0, 20.0)  # heatmaps not counted
    text = response.content.decode()
    assert "2 of 3 (66.7%)" in text and "40.0 ms / 20.0 ms" in text
    event = AuditEvent.objects.get(action="model.comparison_view")
    assert event.user == clinic_admin and event.detail["results"] == 4


def test_comparison_page_is_for_clinic_admins(client, doctor):
    client.force_login(doctor)

    assert client.get(reverse("diagnosis:model_comparison")).status_code == 403

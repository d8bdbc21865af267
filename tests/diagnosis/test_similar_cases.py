"""Similar confirmed cases: the nearest images by the classifier's embedding among the same
clinic's images of other lesions with a signed review or a histology result; never another
clinic's; stored by the worker with the prediction."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import AuditEvent
from diagnosis import services
from diagnosis.models import ImageEmbedding
from diagnosis.selectors import similar as similar_selectors
from diagnosis.selectors.similar import similar_cases
from diagnosis.services.embedding import embedding_of
from tests import factories
from tests.diagnosis.lesion_world import at, result, sign

SPACE = "ham10000-test-v2/pca4-000000000000"
SHIPPED_ROOT = Path(__file__).resolve().parents[2] / "ml" / "models"


@pytest.fixture(autouse=True)
def _fresh_indexes():
    similar_selectors.forget_indexes()
    yield
    similar_selectors.forget_indexes()


def embed(analysis, *direction: float, space: str = SPACE):
    vector = np.asarray(direction, dtype=np.float32)
    vector /= np.linalg.norm(vector)
    ImageEmbedding.objects.create(
        analysis=analysis,
        clinic_id=analysis.image.lesion.patient.clinic_id,
        space=space,
        vector=vector.tobytes(),
    )
    return analysis


def query_in(clinic, *direction):
    """A result of a new patient's lesion of `clinic`, embedded at `direction`: the one asked
    about."""
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    return embed(result(lesion), *direction)


def case(clinic, *direction, level="routine", confirm="review", doctor=None, **review):
    """A result of a new lesion of a new patient of `clinic`, embedded at `direction`, and
    confirmed by a signed review, histology, both, or nothing."""
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    analysis = embed(result(lesion, level), *direction)
    if confirm in ("review", "both"):
        sign(analysis, doctor or factories.DoctorFactory(clinic=clinic), **review)
    if confirm in ("histology", "both"):
        factories.HistopathologyFactory(lesion=lesion, diagnosis="mel")
    return analysis


def test_the_nearest_confirmed_cases_come_first_with_their_final_diagnosis(clinic, doctor):
    query = query_in(clinic, 1, 0, 0, 0)
    near = case(clinic, 1, 0.1, 0, 0, diagnosis="nv", agrees_with_ai=False)
    histology = case(clinic, 1, 0.3, 0, 0, confirm="both", diagnosis="nv", agrees_with_ai=False)
    case(clinic, 1, 0.05, 0, 0, confirm="nothing")  # nearest, but nobody confirmed it
    far = case(clinic, 0, 0, 1, 0, diagnosis="bkl", agrees_with_ai=False)

    cases = similar_cases(user=doctor, analysis=query)

    assert [c.analysis.pk for c in cases] == [near.pk, histology.pk, far.pk]
    assert [c.diagnosis for c in cases] == ["nv", "mel", "bkl"]  # histology outranks a review
    assert [c.confirmed_by for c in cases] == ["review", "histology", "review"]
    assert cases[0].distance < cases[1].distance < cases[2].distance
    assert cases[2].distance == pytest.approx(1.0, abs=1e-5)


def test_similar_cases_never_come_from_another_clinic(clinic, other_clinic, doctor):
    query = query_in(clinic, 1, 0, 0, 0)
    mine = case(clinic, 0, 1, 0, 0, diagnosis="nv", agrees_with_ai=False)
    # Another clinic's confirmed case, identical to the query, asked about by its own doctor
    # first so that its clinic's index exists too.
    theirs = case(other_clinic, 1, 0, 0, 0, confirm="both")
    their_doctor = factories.DoctorFactory(clinic=other_clinic)
    assert similar_cases(user=their_doctor, analysis=theirs) == []

    cases = similar_cases(user=doctor, analysis=query)

    assert [c.analysis.pk for c in cases] == [mine.pk]
    # Nor can another clinic's doctor ask about this clinic's result.
    assert similar_cases(user=their_doctor, analysis=query) is None


def test_the_same_lesion_is_left_out_and_each_lesion_counts_once(clinic, doctor):
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    query = embed(result(lesion), 1, 0, 0, 0)
    sign(embed(result(lesion), 1, 0, 0, 0), doctor)  # an earlier image of the same lesion
    other = case(clinic, 1, 0.2, 0, 0, doctor=doctor)
    sign(embed(result(other.image.lesion), 1, 0.1, 0, 0), doctor)  # its nearer second image

    cases = similar_cases(user=doctor, analysis=query)

    assert len(cases) == 1 and cases[0].analysis.image.lesion_id == other.image.lesion_id
    assert cases[0].distance == pytest.approx(1 - 1 / np.sqrt(1.01), abs=1e-5)


def test_five_at_most_and_confirmed_ones_beyond_many_unconfirmed_are_found(clinic, doctor):
    query = query_in(clinic, 1, 0, 0, 0)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    for _ in range(similar_selectors.FIRST_CANDIDATES + 5):  # near, none confirmed
        embed(result(lesion), 1, 0.01, 0, 0)
    far = [case(clinic, 0, 1, i / 10, 0, doctor=doctor) for i in range(7)]

    cases = similar_cases(user=doctor, analysis=query)

    assert [c.analysis.pk for c in cases] == [a.pk for a in far[:5]]


def test_a_result_without_an_embedding_has_no_similar_cases(clinic, doctor, lesion):
    assert similar_cases(user=doctor, analysis=result(lesion)) is None


def test_cases_added_after_the_first_search_are_found(clinic, doctor):
    query = query_in(clinic, 1, 0, 0, 0)
    assert similar_cases(user=doctor, analysis=query) == []

    later = case(clinic, 1, 0, 0, 0.2, doctor=doctor)

    assert [c.analysis.pk for c in similar_cases(user=doctor, analysis=query)] == [later.pk]


def test_a_case_covered_by_its_visits_review_counts_and_an_override_does_not(clinic, doctor):
    query = query_in(clinic, 1, 0, 0, 0)
    lesion = factories.LesionFactory(patient=factories.PatientFactory(clinic=clinic))
    older = embed(result(lesion, when=at(1, 9)), 1, 0.1, 0, 0)
    newest = result(lesion, when=at(1, 10))
    services.review_sign_covering(
        actor=doctor,
        analysis=newest,
        cover=[older],
        agrees_with_ai=False,
        diagnosis="bkl",
        management="reassure",
    )
    overridden = case(clinic, 1, 0, 0.05, 0, doctor=doctor)
    type(overridden).objects.filter(pk=overridden.pk).update(
        overridden_at=overridden.finished_at,
        overridden_by_name="Dr X",
        override_reason="checked",
        gate_reason="blurred",
    )

    cases = similar_cases(user=doctor, analysis=query)

    assert [(c.analysis.pk, c.diagnosis) for c in cases] == [(older.pk, "bkl")]


def test_result_page_shows_doctors_the_similar_cases_audited_in_its_one_event(
    client, clinic, doctor, staff
):
    query = query_in(clinic, 1, 0, 0, 0)
    near = case(clinic, 1, 0.1, 0, 0, confirm="histology")
    url = reverse("diagnosis:analysis", args=[query.pk])

    client.force_login(doctor)
    body = client.get(url).content.decode()
    client.force_login(staff)
    staff_body = client.get(url).content.decode()

    assert 'id="similar-cases"' in body
    assert f'data-analysis="{near.pk}"' in body and "by histology" in body
    assert f"{reverse('diagnosis:image', args=[near.image_id])}?size=thumb" in body
    event = AuditEvent.objects.get(action="analysis.view", user=doctor)
    assert event.detail["similar_cases"] == [near.pk]
    assert 'id="similar-cases"' not in staff_body


def test_api_similar_cases_for_doctors_only(client, clinic, doctor, staff, other_clinic):
    from tests.api.conftest import token_client

    query = query_in(clinic, 1, 0, 0, 0)
    near = case(clinic, 1, 0.1, 0, 0, diagnosis="nv", agrees_with_ai=False)
    url = f"/api/v1/analyses/{query.pk}/similar/"

    answer = token_client(doctor).get(url)

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["available"] is True
    assert [(c["analysis"], c["diagnosis"], c["confirmed_by"]) for c in body["cases"]] == [
        (near.pk, "nv", "review")
    ]
    assert token_client(staff).get(url).status_code == 403
    other_doctor = factories.DoctorFactory(clinic=other_clinic)
    assert token_client(other_doctor).get(url).status_code == 404
    assert AuditEvent.objects.filter(action="analysis.similar_cases", user=doctor).count() == 1


def test_the_worker_stores_the_embedding_with_the_prediction(settings, staff, lesion):
    current = SHIPPED_ROOT / "CURRENT"
    if not current.is_file():
        pytest.skip("no trained model installed")
    version = current.read_text().strip()
    if not (SHIPPED_ROOT / version / "embedding.npz").is_file():
        pytest.skip(f"{version} ships no embedding reduction")
    settings.ML_MODELS_ROOT = SHIPPED_ROOT
    from diagnosis.classifier import get_classifier

    get_classifier.cache_clear()
    try:
        upload = SimpleUploadedFile(
            "mel.jpg", factories.SAMPLE.read_bytes(), content_type="image/jpeg"
        )
        analysis = services.image_upload(actor=staff, lesion=lesion, upload=upload)
        done = services.analysis_run(analysis_id=analysis.pk)
        # The same picture embedded again lands on (nearly) the same vector.
        with Image.open(io.BytesIO(factories.SAMPLE.read_bytes())) as image:
            again = embedding_of(image.convert("RGB"))
    finally:
        get_classifier.cache_clear()

    stored = ImageEmbedding.objects.get(analysis=done)
    vector = np.frombuffer(bytes(stored.vector), dtype="<f4")
    assert stored.space.startswith(f"{version}/pca64-")
    assert stored.clinic_id == lesion.patient.clinic_id
    assert vector.shape == (64,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert "embedding" in done.timings_ms
    assert again[0] == stored.space
    assert float(np.frombuffer(again[1], dtype="<f4") @ vector) > 0.98


def test_a_patients_export_holds_the_embedding_and_erasure_removes_it_from_the_search(
    clinic, doctor, clinic_admin
):
    import base64
    import json

    from patients.services.rights import patient_erase, patient_export

    query = query_in(clinic, 1, 0, 0, 0)
    confirmed = case(clinic, 1, 0.1, 0, 0, doctor=doctor)
    patient = confirmed.image.lesion.patient
    assert [c.analysis.pk for c in similar_cases(user=doctor, analysis=query)] == [confirmed.pk]

    exported = json.loads(patient_export(actor=doctor, patient=patient))
    (row,) = exported["records"]["diagnosis.imageembedding"]
    vector = np.frombuffer(base64.b64decode(row["vector"]["base64"]), dtype="<f4")
    assert vector.shape == (4,)

    patient_erase(actor=clinic_admin, patient=patient, confirm_mrn=patient.mrn)

    assert not ImageEmbedding.objects.filter(analysis_id=confirmed.pk).exists()
    # The process's index still holds the vector until its rebuild; it is never shown.
    assert similar_cases(user=doctor, analysis=query) == []

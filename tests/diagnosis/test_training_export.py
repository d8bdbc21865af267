"""The learning loop's export: consenting patients' confirmed cases in HAM10000's layout, with
nothing that names a patient; and the consent itself, recorded and audited."""

from __future__ import annotations

import csv
import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import AuditEvent
from diagnosis import services
from ml.evaluate import find_images, read_labels
from patients.services import patient_set_research_consent
from tests import factories

SINCE = datetime.date(2020, 1, 1)


@pytest.fixture
def superuser(db):
    return factories.SuperuserFactory()


def _confirmed_case(clinic, *, consent: bool, sample: str, histology: str | None = None):
    patient = factories.PatientFactory(
        clinic=clinic, research_consent=consent, date_of_birth=datetime.date(1961, 4, 12)
    )
    lesion = factories.LesionFactory(patient=patient, anatomic_site="trunk")
    content = (factories.SAMPLES / sample).read_bytes()
    image = factories.DermoscopicImageFactory(lesion=lesion, file=ContentFile(content, sample))
    if histology:
        factories.HistopathologyFactory(lesion=lesion, diagnosis=histology)
    else:
        analysis = factories.DoneAnalysisFactory(image=image)
        factories.ReviewFactory(
            analysis=analysis, diagnosis="nv", signed_at=timezone.now(), signed_by_name="Dr. D"
        )
    return patient, image


def test_export_writes_only_consenting_patients_cases_without_names_or_mrns(
    clinic, superuser, tmp_path
):
    consenting, _ = _confirmed_case(
        clinic, consent=True, sample="mel_ISIC_0024481.jpg", histology="mel"
    )
    reviewed, _ = _confirmed_case(clinic, consent=True, sample="nv_ISIC_0024319.jpg")
    refusing, _ = _confirmed_case(
        clinic, consent=False, sample="bcc_ISIC_0024457.jpg", histology="bcc"
    )
    out = tmp_path / "export"

    call_command("export_training_set", since=SINCE, out=out, by=superuser.email)

    with open(out / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset",
    ]  # fmt: skip
    assert sorted((row["dx"], row["dx_type"]) for row in rows) == [
        ("mel", "histo"),
        ("nv", "review"),
    ]
    row = next(row for row in rows if row["dx"] == "mel")
    assert row["sex"] == "female" and row["localization"] == "trunk"
    assert int(row["age"]) % 5 == 0 and row["image_id"].startswith("PORTAL_")
    everything = (out / "metadata.csv").read_text()
    for patient in (consenting, reviewed, refusing):
        assert patient.mrn not in everything and patient.last_name not in everything
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        f"{row['image_id']}.jpg" for row in rows
    )
    with Image.open(out / "images" / f"{row['image_id']}.jpg") as written:
        assert not written.getexif()  # decoded and written anew: no file metadata travels
    exported = AuditEvent.objects.filter(action="patient.research_export")
    assert sorted(exported.values_list("patient_id", flat=True)) == sorted(
        [consenting.pk, reviewed.pk]
    )


def test_the_export_reads_as_a_ham10000_labelled_set(clinic, superuser, tmp_path):
    _confirmed_case(clinic, consent=True, sample="mel_ISIC_0024481.jpg", histology="mel")
    _confirmed_case(clinic, consent=True, sample="df_ISIC_0024973.jpg", histology="df")
    out = tmp_path / "export"
    services.training_set_export(actor=superuser, since=SINCE, out_dir=out)

    labels = read_labels(out / "metadata.csv")

    assert labels.form == "multiclass" and len(labels.image_ids) == 2
    assert labels.metadata_columns == ("age", "sex", "localization")
    assert len(find_images(out / "images", labels.image_ids)) == 2


def test_the_export_needs_a_superuser_and_an_empty_folder(
    clinic, superuser, clinic_admin, tmp_path
):
    (tmp_path / "old.csv").write_text("x")

    with pytest.raises(PermissionDenied):
        services.training_set_export(actor=clinic_admin, since=SINCE, out_dir=tmp_path / "new")
    with pytest.raises(ValidationError, match="not empty"):
        services.training_set_export(actor=superuser, since=SINCE, out_dir=tmp_path)


def test_cases_uploaded_before_since_are_left_out(clinic, superuser, tmp_path):
    _confirmed_case(clinic, consent=True, sample="mel_ISIC_0024481.jpg", histology="mel")
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)

    summary = services.training_set_export(
        actor=superuser, since=tomorrow, out_dir=tmp_path / "export"
    )

    assert summary["images"] == 0


def test_consent_is_recorded_with_who_and_audited_with_before_and_after(staff, patient):
    patient_set_research_consent(actor=staff, patient=patient, consent=True)

    patient.refresh_from_db()
    assert patient.research_consent and patient.research_consent_changed_by_name == str(staff)
    event = AuditEvent.objects.get(action="patient.research_consent")
    assert (event.detail["before"], event.detail["after"]) == (False, True)
    assert event.patient_id == patient.pk


def test_another_clinic_cannot_record_consent(other_staff, patient):
    with pytest.raises(PermissionDenied):
        patient_set_research_consent(actor=other_staff, patient=patient, consent=True)


def test_the_patient_page_records_and_withdraws_consent(client, staff, patient):
    client.force_login(staff)
    url = reverse("patients:research_consent", args=[patient.pk])

    client.post(url, {"consent": "yes"})
    page = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()
    assert "Consents" in page and "Withdraw consent" in page
    client.post(url, {"consent": "no"})

    patient.refresh_from_db()
    assert not patient.research_consent
    assert AuditEvent.objects.filter(action="patient.research_consent").count() == 2

"""factory_boy factories for the portal's models."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import factory
from django.core.files.base import ContentFile
from PIL import Image

from accounts.models import Clinic, Role, User
from diagnosis.models import AnatomicSite, DermoscopicImage, Lesion
from patients.models import Patient, Sex

PASSWORD = "correct-horse-battery-staple"
# HAM10000 dermoscopic images shipped with the portal (samples/README.md): what the image gate
# must accept, unlike the flat-colour pictures the factories draw by default.
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE = SAMPLES / "mel_ISIC_0024481.jpg"


def sample_file(path: Path = SAMPLE) -> ContentFile:
    return ContentFile(path.read_bytes(), name=path.name)


def jpeg_bytes(size: tuple[int, int] = (200, 150), color: tuple[int, int, int] = (150, 90, 60)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Dermatology Clinic {n}")
    address = factory.Sequence(lambda n: f"{n} High Street\nVienna")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@clinic.example")
    full_name = factory.Sequence(lambda n: f"User {n}")
    clinic = factory.SubFactory(ClinicFactory)
    role = Role.STAFF
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class DoctorFactory(UserFactory):
    role = Role.DOCTOR


class ClinicAdminFactory(UserFactory):
    role = Role.ADMIN


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    first_name = factory.Sequence(lambda n: f"Anna{n}")
    last_name = factory.Sequence(lambda n: f"Huber{n}")
    date_of_birth = datetime.date(1970, 5, 17)
    sex = Sex.FEMALE


class LesionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesion

    patient = factory.SubFactory(PatientFactory)
    anatomic_site = AnatomicSite.BACK
    label = "left scapula"


class DermoscopicImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DermoscopicImage

    lesion = factory.SubFactory(LesionFactory)
    file = factory.LazyFunction(lambda: ContentFile(jpeg_bytes(), name="lesion.jpg"))
    content_type = "image/jpeg"
    width = 200
    height = 150
    size_bytes = 1000
    sha256 = "0" * 64

    class Params:
        # A real dermoscopic image (200x150 like the drawn one), for the worker's image gate.
        sample = factory.Trait(file=factory.LazyFunction(sample_file))


def png_bytes(size: tuple[int, int] = (112, 84), color: tuple[int, int, int] = (220, 60, 40)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


class AnalysisFactory(factory.django.DjangoModelFactory):
    """A queued analysis; use DoneAnalysisFactory for one with a result."""

    class Meta:
        model = "diagnosis.Analysis"

    image = factory.SubFactory(DermoscopicImageFactory)


class DoneAnalysisFactory(AnalysisFactory):
    """A finished analysis with a plausible result (a high-risk melanoma) and both heatmaps."""

    status = "done"
    probabilities = factory.LazyFunction(
        lambda: {
            "akiec": 0.02,
            "bcc": 0.03,
            "bkl": 0.05,
            "df": 0.01,
            "mel": 0.71,
            "nv": 0.17,
            "vasc": 0.01,
        }
    )
    top_class = "mel"
    melanoma_probability = 0.71
    risk_tier = "high"
    model_version = "ham10000-test-v1"
    timings_ms = factory.LazyFunction(lambda: {"inference": 40.0})
    heatmap_top = factory.LazyFunction(lambda: ContentFile(png_bytes(), name="heatmap.png"))
    heatmap_melanoma = factory.LazyFunction(lambda: ContentFile(png_bytes(), name="heatmap.png"))
    finished_at = factory.LazyFunction(lambda: datetime.datetime.now(datetime.UTC))


class TriagedAnalysisFactory(DoneAnalysisFactory):
    """A finished result of a model with triage (v2): a dominant basal cell carcinoma, which
    the melanoma tier alone called low risk."""

    probabilities = factory.LazyFunction(
        lambda: {
            "akiec": 0.01,
            "bcc": 0.964,
            "bkl": 0.01,
            "df": 0.002,
            "mel": 0.004,
            "nv": 0.008,
            "vasc": 0.002,
        }
    )
    top_class = "bcc"
    melanoma_probability = 0.004
    risk_tier = "low"
    triage_level = "soon"
    triage_reason = "BCC 96%"
    model_version = "ham10000-test-v2"


class NotAnalysedFactory(AnalysisFactory):
    """An analysis whose image the gate refused: a reason and measures, no prediction."""

    status = "not_analysed"
    gate_reason = "not_dermoscopic"
    gate_message = (
        "This does not look like a dermoscopic image of a skin lesion. Take the photograph "
        "through the dermatoscope, touching the skin, with the lesion centred."
    )
    gate_measures = factory.LazyFunction(
        lambda: {
            "quality": {"width": 451, "height": 300, "sharpness": 120.0, "brightness": 110.0},
            "ood_score": 76494.6,
            "ood_threshold": 11140.1,
        }
    )
    model_version = "ham10000-test-v2"
    finished_at = factory.LazyFunction(lambda: datetime.datetime.now(datetime.UTC))


class ReviewFactory(factory.django.DjangoModelFactory):
    """An unsigned draft review by a doctor of the analysis's clinic."""

    class Meta:
        model = "diagnosis.Review"

    analysis = factory.SubFactory(DoneAnalysisFactory)
    version = 1
    author = factory.LazyAttribute(
        lambda o: DoctorFactory(clinic=o.analysis.image.lesion.patient.clinic)
    )
    agrees_with_ai = True
    diagnosis = "mel"
    management = "excise"


class HistopathologyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "diagnosis.Histopathology"

    lesion = factory.SubFactory(LesionFactory)
    diagnosis = "mel"
    reported_on = datetime.date(2025, 1, 15)
    lab_reference = factory.Sequence(lambda n: f"H-{n:05d}")


def _signed_referring_review(referral) -> object:
    doctor = DoctorFactory(clinic=referral.analysis.image.lesion.patient.clinic)
    return ReviewFactory(
        analysis=referral.analysis,
        author=doctor,
        management="refer_urgently",
        referral_to=referral.destination,
        signed_at=datetime.datetime.now(datetime.UTC),
        signed_by=doctor,
        signed_by_name=doctor.get_full_name(),
    )


class ReferralFactory(factory.django.DjangoModelFactory):
    """An open urgent referral of a finished analysis, opened by a signed "refer urgently"
    review (made here unless one is given), due in 14 days."""

    class Meta:
        model = "diagnosis.Referral"

    analysis = factory.SubFactory(DoneAnalysisFactory)
    destination = "Plastic surgery, St Mary's"
    review = factory.LazyAttribute(_signed_referring_review)
    lesion = factory.LazyAttribute(lambda o: o.analysis.image.lesion)
    urgency = "urgent"
    due_on = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=14))
    created_by = factory.LazyAttribute(lambda o: o.review.author)


# --- the model registry ------------------------------------------------------------------------


class SuperuserFactory(UserFactory):
    """A superuser: outside any clinic, the one who may change the served model."""

    clinic = None
    role = ""
    is_staff = True
    is_superuser = True


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A registered version without files (for the registry's rows alone; tests that serve a
    model write one with tests/diagnosis/model_dirs.py and register it through the service)."""

    class Meta:
        model = "diagnosis.ModelVersion"

    version = factory.Sequence(lambda n: f"ham10000-test-v{n + 10}")
    architecture = "tf_efficientnet_lite0"
    card = factory.LazyFunction(dict)


class ShadowResultFactory(factory.django.DjangoModelFactory):
    """A shadow version's result on an analysis: a confident vascular lesion, so a page that
    leaked it would show a class and a percentage the served result does not have."""

    class Meta:
        model = "diagnosis.ShadowResult"

    analysis = factory.SubFactory(DoneAnalysisFactory)
    model_version = factory.SubFactory(ModelVersionFactory, status="shadow")
    status = "done"
    probabilities = factory.LazyFunction(
        lambda: {
            "akiec": 0.001,
            "bcc": 0.002,
            "bkl": 0.003,
            "df": 0.004,
            "mel": 0.0123,
            "nv": 0.0057,
            "vasc": 0.972,
        }
    )
    top_class = "vasc"
    melanoma_probability = 0.0123
    risk_tier = "low"
    triage_level = "routine"
    timings_ms = factory.LazyFunction(lambda: {"preprocess": 5.0, "inference": 30.0})


# --- two-factor authentication ---------------------------------------------------------------


def activate_totp(user: User) -> str:
    """Give `user` an authenticator app (TOTP) and recovery codes; returns the TOTP secret."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


def totp_code(secret: str) -> str:
    """The code the authenticator app shows now."""
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    return format_hotp_value(hotp_value(secret, next(iter(yield_hotp_counters_from_time()))))

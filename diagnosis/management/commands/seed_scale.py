"""Seed a clinic network's worth of records, to measure the pages at scale (bench/pages.py).

    createdb -h 127.0.0.1 -U postgres scale_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/scale_bench
    export DJANGO_SETTINGS_MODULE=melanoma_portal.settings.test  # as bench/pages.py runs
    manage.py migrate && manage.py seed_scale --analyses 100000 --clinics 20 --seed 1

(The accounts' one password is hashed with the settings' hasher: sign in under the same
settings. About two minutes on two busy cores.)

Each clinic gets an admin, two doctors and a nurse (clinic staff), patients, lesions, images,
analyses with the status mix of a working portal (mostly finished; a few queued, running,
failed or refused by the image gate), signed reviews for most finished results (fewer for the
last week's, which is what the worklist holds), referrals for the referring decisions, and the
audit events those steps leave. Rows go in with bulk_create in chunks, dates spread over two
years; every image row shares one small placeholder picture, so 100,000 analyses write one
file, not 100,000.

It is for a benchmark database only: PostgreSQL (what a clinic network runs), never the one the
tests or anybody else uses, and it refuses to seed the same database twice.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import AuditEvent, Clinic, Role, User
from diagnosis.models import (
    Analysis,
    AnalysisStatus,
    DermoscopicImage,
    Lesion,
    Referral,
    ReferralStatus,
    Review,
)
from ml.classes import CLASSES
from ml.triage import TriageThresholds, triage
from patients.models import Patient

CLINIC_PREFIX = "Scale Clinic"
DEFAULT_PASSWORD = "scale-bench-password"  # noqa: S105 - a benchmark database's, published
MODEL_VERSION = "ham10000-lite0-v2"
CHUNK = 5000
SPAN_DAYS = 730
# HAM10000's class frequencies: what a dermoscopy clinic's results look like.
CLASS_WEIGHTS = {
    "nv": 0.67,
    "mel": 0.11,
    "bkl": 0.11,
    "bcc": 0.05,
    "akiec": 0.03,
    "vasc": 0.014,
    "df": 0.011,
}
# Status mix: a steady state where nearly everything has finished long ago.
STATUS_WEIGHTS = {
    AnalysisStatus.DONE: 0.955,
    AnalysisStatus.FAILED: 0.015,
    AnalysisStatus.NOT_ANALYSED: 0.02,
    AnalysisStatus.QUEUED: 0.008,
    AnalysisStatus.RUNNING: 0.002,
}
THRESHOLDS = TriageThresholds(moderate=0.1, high=0.35, nmsc=0.4)
FIRST_NAMES = ["Anna", "Karl", "Eva", "Lukas", "Maria", "Jonas", "Lena", "Felix", "Sofia", "Paul"]
LAST_NAMES = ["Huber", "Berger", "Gruber", "Wagner", "Bauer", "Maier", "Hofer", "Steiner", "Moser"]
SITES = ["back", "chest", "face", "upper extremity", "lower extremity", "trunk", "scalp", "neck"]
REFERRAL_DAYS = {"refer_urgently": ("urgent", 14), "refer_soon": ("soon", 42)}


@contextmanager
def dates_as_given(*model_classes: type[models.Model]) -> Iterator[None]:
    """auto_now / auto_now_add fields keep the dates the seed gives them (spread over two
    years) instead of all being "now"; restored on exit."""
    fields = [
        field
        for model in model_classes
        for field in model._meta.concrete_fields
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ]
    saved = [(field, field.auto_now, field.auto_now_add) for field in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


class Command(BaseCommand):
    help = (
        "Seed a separate PostgreSQL database with a clinic network's analyses, reviews, "
        "referrals and audit events, for bench/pages.py."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--analyses", type=int, default=100_000)
        parser.add_argument("--clinics", type=int, default=20)
        parser.add_argument(
            "--seed", type=int, default=1, help="random seed (same seed, same data)"
        )
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="every seeded account's")

    def handle(self, *args, analyses: int, clinics: int, seed: int, password: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "seed_scale writes a clinic network's records to measure PostgreSQL, which the "
                "portal runs on at that scale: point DATABASE_URL at a separate PostgreSQL "
                "database, e.g. postgres://postgres@127.0.0.1:5432/scale_bench."
            )
        if analyses < clinics or clinics < 1:
            raise CommandError("Give at least one clinic and at least one analysis per clinic.")
        if Clinic.objects.filter(name__startswith=CLINIC_PREFIX).exists():
            raise CommandError(
                f"This database ({connection.settings_dict['NAME']}) is already seeded. To seed "
                "again, drop and re-create it (dropdb, createdb, manage.py migrate)."
            )
        self.rng = random.Random(seed)  # noqa: S311 - made-up records, not secrets
        self.now = timezone.now()
        self.started = time.monotonic()
        with (
            transaction.atomic(),
            dates_as_given(
                Patient, Lesion, DermoscopicImage, Analysis, Review, Referral, AuditEvent
            ),
        ):
            staff = self._clinics(clinics, make_password(password))
            patients = self._patients(staff, analyses)
            lesions = self._lesions(patients)
            images = self._images(lesions, staff, analyses)
            done = self._analyses(images)
            reviews = self._reviews(done, staff)
            referrals = self._referrals(reviews, staff)
            self._audit(images, reviews, referrals, staff)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self._say(
            f"Seeded {analyses} analyses in {clinics} clinics. Sign in as "
            f"doctor1@scale-clinic-01.example (or admin@, nurse@) with password {password!r}."
        )

    # --- helpers ---------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.stdout.write(f"[{time.monotonic() - self.started:6.1f} s] {message}")

    def _bulk(self, model: type[models.Model], rows: list) -> list:
        for start in range(0, len(rows), CHUNK):
            model.objects.bulk_create(rows[start : start + CHUNK])
        self._say(f"{len(rows):>7} {model._meta.verbose_name_plural}")
        return rows

    def _moment_between(self, start: datetime.datetime, end: datetime.datetime):
        return start + (end - start) * self.rng.random()

    # --- the records -----------------------------------------------------------------------

    def _clinics(self, count: int, password_hash: str) -> dict[int, dict[str, list[User]]]:
        clinics = Clinic.objects.bulk_create(
            Clinic(name=f"{CLINIC_PREFIX} {n:02d}", address=f"{n} Clinic Street")
            for n in range(1, count + 1)
        )
        users, staff = [], {}
        for n, clinic in enumerate(clinics, start=1):
            domain = f"scale-clinic-{n:02d}.example"
            people = [
                ("admin", Role.ADMIN, "Alex Admin"),
                ("doctor1", Role.DOCTOR, "Dr Dana Derm"),
                ("doctor2", Role.DOCTOR, "Dr Eli Excise"),
                ("nurse", Role.STAFF, "Noa Nurse"),
            ]
            members = [
                User(
                    email=f"{local}@{domain}",
                    full_name=f"{name} ({n:02d})",
                    clinic=clinic,
                    role=role,
                    password=password_hash,
                )
                for local, role, name in people
            ]
            users += members
            staff[clinic.pk] = {
                "admin": [members[0]],
                "doctors": members[1:3],
                "uploaders": [members[3], *members[1:3]],
            }
        User.objects.bulk_create(users)
        self._say(f"{count:>7} clinics, {len(users)} accounts")
        return staff

    def _patients(self, staff: dict, analyses: int) -> list[Patient]:
        per_clinic = max(1, analyses // len(staff) // 5)
        rows = []
        for clinic_id, people in staff.items():
            for n in range(per_clinic):
                created = self.now - datetime.timedelta(days=SPAN_DAYS * self.rng.random())
                rows.append(
                    Patient(
                        clinic_id=clinic_id,
                        mrn=f"S{clinic_id:02d}-{n:06d}",
                        first_name=self.rng.choice(FIRST_NAMES),
                        last_name=f"{self.rng.choice(LAST_NAMES)}{n}",
                        date_of_birth=datetime.date(self.rng.randint(1935, 2005), 1, 1)
                        + datetime.timedelta(days=self.rng.randint(0, 364)),
                        sex=self.rng.choice(["female", "male"]),
                        created_by=self.rng.choice(people["uploaders"]),
                        created_at=created,
                        updated_at=created,
                    )
                )
        return self._bulk(Patient, rows)

    def _lesions(self, patients: list[Patient]) -> list[Lesion]:
        rows = []
        for patient in patients:
            for _ in range(self.rng.choice([1, 1, 2, 2, 3])):
                rows.append(
                    Lesion(
                        patient=patient,
                        anatomic_site=self.rng.choice(SITES),
                        label=f"spot {self.rng.randint(1, 99)}",
                        created_by_id=patient.created_by_id,
                        created_at=self._moment_between(patient.created_at, self.now),
                    )
                )
        return self._bulk(Lesion, rows)

    def _images(self, lesions: list[Lesion], staff: dict, analyses: int) -> list[DermoscopicImage]:
        """One image per analysis, each on a random lesion of a clinic in turn (so every
        clinic has the same share); all share one placeholder picture."""
        placeholder = default_storage.save(
            "images/scale-placeholder.png", ContentFile(_placeholder_png())
        )
        by_clinic: dict[int, list[Lesion]] = {}
        for lesion in lesions:
            by_clinic.setdefault(lesion.patient.clinic_id, []).append(lesion)
        clinic_ids = list(by_clinic)
        rows = []
        for n in range(analyses):
            clinic_id = clinic_ids[n % len(clinic_ids)]
            lesion = self.rng.choice(by_clinic[clinic_id])
            rows.append(
                DermoscopicImage(
                    lesion=lesion,
                    file=placeholder,
                    thumbnail=placeholder,
                    content_type="image/png",
                    width=112,
                    height=84,
                    size_bytes=2000,
                    sha256=hashlib.sha256(f"scale-{n}".encode()).hexdigest(),
                    original_filename=f"IMG_{n:06d}.jpg",
                    uploaded_by=self.rng.choice(staff[clinic_id]["uploaders"]),
                    uploaded_at=self._moment_between(lesion.created_at, self.now),
                )
            )
        return self._bulk(DermoscopicImage, rows)

    def _analyses(self, images: list[DermoscopicImage]) -> list[Analysis]:
        statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)
        rows, done = [], []
        for image in images:
            status = self.rng.choices(statuses, weights)[0]
            queued = image.uploaded_at + datetime.timedelta(milliseconds=50)
            if status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING):
                # Waiting now: uploaded in the last few minutes.
                queued = self.now - datetime.timedelta(seconds=600 * self.rng.random())
                image.uploaded_at = queued
            analysis = Analysis(
                image=image,
                clinic_id=image.lesion.patient.clinic_id,
                status=status,
                queued_at=queued,
                attempts=1,
            )
            image.analysis_seeded = analysis  # for the audit events' object ids
            if status == AnalysisStatus.RUNNING:
                analysis.started_at = queued
            elif status == AnalysisStatus.FAILED:
                analysis.finished_at = queued + datetime.timedelta(seconds=2)
                analysis.failure_reason = "The worker stopped before it finished; retry it."
            elif status == AnalysisStatus.NOT_ANALYSED:
                analysis.finished_at = queued + datetime.timedelta(seconds=1)
                analysis.model_version = MODEL_VERSION
                analysis.gate_reason = "blurred"
                analysis.gate_message = "The image is too blurred to analyse."
            elif status == AnalysisStatus.DONE:
                self._result(analysis)
                done.append(analysis)
            rows.append(analysis)
        # Queued and running ones moved their image's upload time to now.
        DermoscopicImage.objects.bulk_update(
            [a.image for a in rows if a.status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)],
            ["uploaded_at"],
        )
        self._bulk(Analysis, rows)
        return done

    def _result(self, analysis: Analysis) -> None:
        classes, weights = zip(*CLASS_WEIGHTS.items(), strict=True)
        top = self.rng.choices(classes, weights)[0]
        rest = [self.rng.random() for _ in CLASSES]
        p_top = 0.35 + 0.63 * self.rng.random()
        scale = (1 - p_top) / (sum(rest) or 1)
        probabilities = {code: round(r * scale, 4) for code, r in zip(CLASSES, rest, strict=True)}
        probabilities[top] = round(p_top, 4)
        found = triage(probabilities, THRESHOLDS)
        p_mel = probabilities["mel"]
        analysis.started_at = analysis.queued_at
        analysis.finished_at = analysis.queued_at + datetime.timedelta(milliseconds=400)
        analysis.probabilities = probabilities
        analysis.top_class = max(probabilities, key=probabilities.get)
        analysis.melanoma_probability = p_mel
        analysis.risk_tier = "high" if p_mel >= 0.35 else "moderate" if p_mel >= 0.1 else "low"
        analysis.triage_level = found.level
        analysis.triage_reason = found.reason
        analysis.model_version = MODEL_VERSION
        analysis.timings_ms = {"total": 250}

    def _reviews(self, done: list[Analysis], staff: dict) -> list[Review]:
        """Most results are signed within days; the last week's are the worklist's backlog."""
        week_ago = self.now - datetime.timedelta(days=7)
        rows = []
        for analysis in done:
            chance = 0.95 if analysis.queued_at < week_ago else 0.35
            roll = self.rng.random()
            if roll > chance + 0.03:
                continue
            doctor = self.rng.choice(staff[analysis.image.lesion.patient.clinic_id]["doctors"])
            management = _management(analysis.top_class, self.rng)
            created = self._moment_between(analysis.finished_at, self.now)
            review = Review(
                analysis=analysis,
                author=doctor,
                agrees_with_ai=self.rng.random() < 0.85,
                diagnosis=analysis.top_class,
                management=management,
                follow_up_on=(created + datetime.timedelta(days=90)).date()
                if management == "monitor"
                else None,
                referral_to="Dermatologic surgery" if management.startswith("refer") else "",
                created_at=created,
                updated_at=created,
            )
            if roll <= chance:  # signed; the rest stay drafts
                review.signed_at = created
                review.signed_by = doctor
                review.signed_by_name = doctor.full_name
            rows.append(review)
        return self._bulk(Review, rows)

    def _referrals(self, reviews: list[Review], staff: dict) -> list[Referral]:
        today = self.now.date()
        rows = []
        for review in reviews:
            if review.signed_at is None or review.management not in REFERRAL_DAYS:
                continue
            urgency, days = REFERRAL_DAYS[review.management]
            due = review.signed_at.date() + datetime.timedelta(days=days)
            referral = Referral(
                review=review,
                analysis=review.analysis,
                lesion=review.analysis.image.lesion,
                destination=review.referral_to,
                urgency=urgency,
                due_on=due,
                created_by=review.signed_by,
                created_at=review.signed_at,
            )
            if due < today and self.rng.random() < 0.9:
                referral.status = ReferralStatus.CLOSED
                referral.closed_at = min(
                    self.now, review.signed_at + datetime.timedelta(days=days - 2)
                )
                referral.closed_by = review.signed_by
                referral.closed_by_name = review.signed_by_name
                referral.outcome = "Seen; excised, histology to follow."
            rows.append(referral)
        return self._bulk(Referral, rows)

    def _audit(self, images, reviews, referrals, staff) -> None:
        """What those steps leave on the audit trail: the upload, a look at the result or two,
        the signature, the referral."""
        rows = []

        def event(user: User, action: str, obj: models.Model, patient_id: int, at) -> None:
            rows.append(
                AuditEvent(
                    at=at,
                    user=user,
                    user_email=user.email,
                    role=user.role,
                    clinic_id=user.clinic_id,
                    action=action,
                    object_type=obj._meta.model_name,
                    object_id=str(obj.pk),
                    patient_id=patient_id,
                    ip_address="10.0.0.1",
                    user_agent="seed_scale",
                )
            )

        for image in images:
            patient_id = image.lesion.patient_id
            event(image.uploaded_by, "image.upload", image, patient_id, image.uploaded_at)
            doctors = staff[image.lesion.patient.clinic_id]["doctors"]
            analysis = image.analysis_seeded
            for _ in range(self.rng.choice([1, 1, 2])):
                seen = image.uploaded_at + datetime.timedelta(minutes=self.rng.randint(1, 600))
                event(
                    self.rng.choice(doctors),
                    "analysis.view",
                    analysis,
                    patient_id,
                    min(seen, self.now),
                )
        for review in reviews:
            if review.signed_at is not None:
                patient_id = review.analysis.image.lesion.patient_id
                event(review.signed_by, "review.sign", review, patient_id, review.signed_at)
        for referral in referrals:
            event(
                referral.created_by,
                "referral.create",
                referral,
                referral.lesion.patient_id,
                referral.created_at,
            )
        rows.sort(key=lambda e: e.at)  # ids in time order, as a live trail has them
        self._bulk(AuditEvent, rows)


def _management(top_class: str, rng: random.Random) -> str:
    if top_class == "mel":
        return rng.choice(["refer_urgently", "refer_urgently", "excise"])
    if top_class in ("bcc", "akiec"):
        return rng.choice(["refer_soon", "excise"])
    return rng.choice(["reassure", "reassure", "monitor"])


def _placeholder_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (112, 84), (150, 90, 60)).save(buffer, "PNG")
    return buffer.getvalue()

"""Load a demo clinic: one user per role, a few patients with lesions, sample images queued.

Safe to run again: existing demo records are kept and nothing is duplicated. Images go through
the same upload service as the web form, so their analyses are queued for the worker.
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.mfa import mfa_required_for
from accounts.models import Clinic, Role, User
from diagnosis.models import DermoscopicImage, Lesion
from diagnosis.services import image_upload, lesion_create
from patients.models import Patient
from patients.services import patient_create

CLINIC_NAME = "Demo Dermatology Clinic"
DEFAULT_PASSWORD = "demo-portal-password"  # noqa: S105 - published; refused unless DEBUG
USERS = [
    ("admin@demo.clinic", "Alex Admin", Role.ADMIN),
    ("doctor@demo.clinic", "Dr. Dana Derm", Role.DOCTOR),
    ("staff@demo.clinic", "Sam Staff", Role.STAFF),
]
# (mrn, first, last, born, sex, fitzpatrick, [(site, label, sample file or None)])
PATIENTS = [
    ("DEMO-0001", "Anna", "Huber", datetime.date(1961, 4, 12), "female", 2, [
        ("back", "left scapula, 6 mm", "mel_ISIC_0024481.jpg"),
        ("face", "right cheek", "bcc_ISIC_0024457.jpg"),
    ]),
    ("DEMO-0002", "Karl", "Berger", datetime.date(1978, 9, 3), "male", 3, [
        ("trunk", "umbilical region", "nv_ISIC_0024319.jpg"),
    ]),
    ("DEMO-0003", "Eva", "Gruber", datetime.date(1990, 1, 25), "female", 1, [
        ("lower extremity", "left shin", "df_ISIC_0024973.jpg"),
        ("scalp", "vertex", None),
    ]),
    ("DEMO-0004", "Lukas", "Wagner", datetime.date(1955, 11, 30), "male", None, [
        ("lower extremity", "right calf", "akiec_ISIC_0024329.jpg"),
    ]),
]  # fmt: skip


class Command(BaseCommand):
    help = "Create the demo clinic, its users (one per role) and patients with sample images."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="password of all 3 users")
        parser.add_argument(
            "--force", action="store_true", help="run even with DEBUG off (never in production)"
        )
        parser.add_argument(
            "--no-images", action="store_true", help="record lesions without uploading images"
        )

    def handle(self, *args, password: str, no_images: bool, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "load_demo creates users with a published password; it runs only with DEBUG on "
                "(the dev settings) unless you pass --force."
            )
        samples = Path(settings.BASE_DIR) / "samples"
        with transaction.atomic():
            clinic, _ = Clinic.objects.get_or_create(
                name=CLINIC_NAME, defaults={"address": "1 Demo Street\n1010 Vienna"}
            )
            users = {}
            for email, name, role in USERS:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User(email=email, full_name=name, clinic=clinic, role=role)
                user.set_password(password)
                user.is_active = True
                user.save()
                users[role] = user
            staff = users[Role.STAFF]
            queued = 0
            for mrn, first, last, born, sex, skin, lesions in PATIENTS:
                patient = Patient.objects.filter(clinic=clinic, mrn=mrn).first()
                if patient is None:
                    patient = patient_create(
                        actor=staff, mrn=mrn, first_name=first, last_name=last,
                        date_of_birth=born, sex=sex, fitzpatrick_skin_type=skin,
                    )  # fmt: skip
                for site, label, sample in lesions:
                    lesion = Lesion.objects.filter(patient=patient, label=label).first()
                    if lesion is None:
                        lesion = lesion_create(
                            actor=staff, patient=patient, anatomic_site=site, label=label
                        )
                    if sample is None or no_images:
                        continue
                    if DermoscopicImage.objects.filter(lesion=lesion).exists():
                        continue
                    # A token derived from the lesion: a re-run never uploads the photo twice.
                    token = uuid.uuid5(uuid.NAMESPACE_URL, f"demo/{mrn}/{label}")
                    upload = SimpleUploadedFile(
                        sample, (samples / sample).read_bytes(), content_type="image/jpeg"
                    )
                    image_upload(actor=staff, lesion=lesion, upload=upload, submission_token=token)
                    queued += 1
        self.stdout.write(self.style.SUCCESS(f"Demo clinic: {clinic.name}"))
        self.stdout.write(
            f"  {len(PATIENTS)} patients; {queued} new analyses queued for the worker"
        )
        self.stdout.write(f"  Log in with (password for all three: {password}):")
        for email, _, role in USERS:
            needs = " (two-factor authentication)" if mfa_required_for(users[role]) else ""
            self.stdout.write(f"    {Role(role).label:<13} {email}{needs}")
        if any(mfa_required_for(user) for user in users.values()):
            self.stdout.write(
                "  Those marked set up two-factor authentication at their first log-in, as in\n"
                "  production: scan the QR code with an authenticator app, or without a phone\n"
                "  copy the secret shown under it and run\n"
                "    .venv/bin/python manage.py totp_code <secret>\n"
                "  for the code to type. At later log-ins:\n"
                "    .venv/bin/python manage.py totp_code --email <their e-mail>"
            )

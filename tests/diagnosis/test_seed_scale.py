"""manage.py seed_scale: a clinic network's records for bench/pages.py, consistent with the
rules the portal keeps."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from accounts.models import AuditEvent, Clinic, User
from diagnosis.models import Analysis, AnalysisStatus, Referral, Review


def test_seeds_every_clinic_with_staff_and_analyses_of_its_own_patients(db):
    call_command("seed_scale", analyses=60, clinics=3, seed=7, stdout=io.StringIO())

    assert Clinic.objects.count() == 3
    assert User.objects.filter(email="doctor1@scale-clinic-02.example", role="doctor").exists()
    assert Analysis.objects.count() == 60
    # Each analysis carries the clinic of its image's patient, which every list filters on.
    assert not Analysis.objects.exclude(clinic_id=F("image__lesion__patient__clinic_id")).exists()
    assert Analysis.objects.filter(status=AnalysisStatus.DONE).count() > 40
    assert Review.objects.filter(signed_at__isnull=False).exists()
    assert not Review.objects.exclude(analysis__status=AnalysisStatus.DONE).exists()
    assert all(r.lesion_id == r.analysis.image.lesion_id for r in Referral.objects.all())
    assert AuditEvent.objects.filter(action="image.upload").count() == 60


def test_refuses_to_seed_the_same_database_twice(db):
    call_command("seed_scale", analyses=4, clinics=2, stdout=io.StringIO())
    with pytest.raises(CommandError, match="already seeded"):
        call_command("seed_scale", analyses=4, clinics=2, stdout=io.StringIO())

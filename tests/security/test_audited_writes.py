"""Every service that writes patient data leaves exactly one audit event, whoever calls it.

The services under test are not listed here: they are found in the registry that
`@accounts.audit.audited_write(...)` fills as the apps' service modules are imported. A new
audited service fails `test_every_registered_write_leaves_exactly_one_audit_event` until it
gets a call in `_call` below, and a service that takes an `actor` but is neither registered
nor exempt fails `test_every_service_taking_an_actor_is_registered_or_exempt`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.audit import AUDITED_WRITES
from accounts.models import AuditEvent
from tests import factories

PROJECT_APPS = ("accounts", "patients", "diagnosis", "reports")

# Services that take an actor but write no patient data, or are audited elsewhere; each says
# why it is not in the registry.
EXEMPT = {
    "patient_export": "a read of patient data, audited as 'patient.export'",
    "api_token_list": "a read of API keys",
    "user_create": "staff accounts; audited by accounts.signals",
    "user_set_role": "staff accounts; audited by accounts.signals",
    "user_deactivate": "staff accounts; audited by accounts.signals",
    "user_reactivate": "staff accounts; audited by accounts.signals",
    "review_sign_covering": "review by lesion: review_save and review_cover, each audited",
}


def _service_modules() -> list:
    """Every module of the project apps' `services` packages, imported, which also fills the
    registry."""
    modules = []
    for config in apps.get_app_configs():
        if config.name not in PROJECT_APPS:
            continue
        package = importlib.import_module(config.name)
        for info in pkgutil.walk_packages(package.__path__, f"{config.name}."):
            if info.name.split(".")[1] == "services":
                modules.append(importlib.import_module(info.name))
    return modules


SERVICE_MODULES = _service_modules()


def _registered() -> dict[str, tuple[str, ...]]:
    return {qualname.rsplit(".", 1)[-1]: actions for qualname, actions in AUDITED_WRITES.items()}


class World:
    def __init__(self) -> None:
        self.clinic = factories.ClinicFactory()
        self.staff = factories.UserFactory(clinic=self.clinic)
        self.doctor = factories.DoctorFactory(clinic=self.clinic)
        self.admin = factories.ClinicAdminFactory(clinic=self.clinic)
        self.patient = factories.PatientFactory(clinic=self.clinic)
        self.lesion = factories.LesionFactory(patient=self.patient)
        self.image = factories.DermoscopicImageFactory(lesion=self.lesion)
        self.done = factories.DoneAnalysisFactory(image=self.image)
        self.superuser = factories.SuperuserFactory()


REVIEW = {"agrees_with_ai": True, "diagnosis": "mel", "management": "excise", "notes": "x"}


def _call(name: str, service: Callable, world: World):
    """Call `service` once as its everyday caller would; returns (actor, patient id)."""
    w = world
    if name == "patient_create":
        fields = {"mrn": "NEW-1", "first_name": "Eva", "last_name": "Gruber"}
        fields |= {"date_of_birth": timezone.localdate().replace(year=1980), "sex": "female"}
        patient = service(actor=w.staff, **fields)
        return w.staff, patient.pk
    if name == "patient_update":
        service(actor=w.staff, patient=w.patient, phone="+43 1 234")
        return w.staff, w.patient.pk
    if name == "patient_erase":
        patient_id = w.patient.pk
        service(actor=w.admin, patient=w.patient, confirm_mrn=w.patient.mrn)
        return w.admin, patient_id
    if name == "lesion_create":
        service(actor=w.staff, patient=w.patient, anatomic_site="back")
        return w.staff, w.patient.pk
    if name == "lesion_update":
        service(actor=w.staff, lesion=w.lesion, size_mm=Decimal("6.5"), laterality="left")
        return w.staff, w.patient.pk
    if name == "review_cover":
        from diagnosis.models import DermoscopicImage

        older = factories.DoneAnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=w.lesion)
        )
        earlier = w.image.uploaded_at - timezone.timedelta(seconds=1)
        DermoscopicImage.objects.filter(pk=older.image_id).update(uploaded_at=earlier)
        signed = factories.ReviewFactory(
            analysis=w.done,
            author=w.doctor,
            signed_at=timezone.now(),
            signed_by=w.doctor,
            signed_by_name=w.doctor.get_full_name(),
        )
        service(actor=w.doctor, review=signed, analyses=[older])
        return w.doctor, w.patient.pk
    if name == "image_upload":
        upload = SimpleUploadedFile("x.jpg", factories.jpeg_bytes(), content_type="image/jpeg")
        service(actor=w.staff, lesion=w.lesion, upload=upload)
        return w.staff, w.patient.pk
    if name == "analysis_retry":
        failed = factories.AnalysisFactory(image=w.image, status="failed", failure_reason="x")
        service(actor=w.staff, analysis=failed)
        return w.staff, w.patient.pk
    if name == "analysis_override_gate":
        refused = factories.NotAnalysedFactory(image=w.image)
        service(actor=w.doctor, analysis=refused, reason="A dermoscopic image, checked by eye")
        return w.doctor, w.patient.pk
    if name == "review_save":
        service(actor=w.doctor, analysis=w.done, **REVIEW)
        return w.doctor, w.patient.pk
    if name == "review_sign":
        from diagnosis.models import Review

        draft = Review.objects.create(analysis=w.done, version=1, author=w.doctor, **REVIEW)
        service(actor=w.doctor, review=draft)
        return w.doctor, w.patient.pk
    if name == "review_amend":
        signed = factories.ReviewFactory(
            analysis=w.done,
            author=w.doctor,
            signed_at=timezone.now(),
            signed_by=w.doctor,
            signed_by_name=w.doctor.get_full_name(),
        )
        service(actor=w.doctor, analysis=signed.analysis, amendment_reason="Histology came back")
        return w.doctor, w.patient.pk
    if name in ("referral_open", "referral_close"):
        signed = factories.ReviewFactory(
            analysis=w.done,
            author=w.doctor,
            management="refer_urgently",
            referral_to="Plastic surgery, St Mary's",
            signed_at=timezone.now(),
            signed_by=w.doctor,
            signed_by_name=w.doctor.get_full_name(),
        )
    if name == "referral_open":
        service(actor=w.doctor, review=signed)
        return w.doctor, w.patient.pk
    if name == "referral_close":
        referral = factories.ReferralFactory(analysis=w.done, review=signed)
        service(actor=w.doctor, referral=referral, outcome="Seen; excised.")
        return w.doctor, w.patient.pk
    if name == "clinic_set_referral_policy":
        service(actor=w.admin, referral_days_urgent=10, referral_days_soon=30)
        return w.admin, None
    if name == "histopathology_record":
        service(
            actor=w.doctor,
            lesion=w.lesion,
            diagnosis="mel",
            reported_on=timezone.localdate(),
            lab_reference="H-1",
        )
        return w.doctor, w.patient.pk
    if name == "api_token_issue":
        service(actor=w.admin, user_id=w.staff.pk)
        return w.admin, None
    if name == "api_token_revoke":
        from accounts.models import ApiToken

        ApiToken.objects.create(user=w.staff, expiry=timezone.timedelta(days=1))
        service(actor=w.admin, user_id=w.staff.pk)
        return w.admin, None
    if name == "user_change_email":
        service(actor=w.admin, user=w.staff, email="renamed@clinic.example")
        return w.admin, None
    if name == "user_unlock":
        service(actor=w.admin, user=w.staff)
        return w.admin, None
    if name == "jwt_issue":
        from django.test import RequestFactory

        request = RequestFactory().post("/api/v1/auth/token/")
        service(email=w.staff.email, password=factories.PASSWORD, request=request)
        return w.staff, None
    if name in ("jwt_refresh", "jwt_sign_out"):
        from accounts.models import RefreshTokenFamily
        from accounts.services.jwt_tokens import _new_refresh

        # A sign-in made without its own audit event, so only this call's is counted.
        family = RefreshTokenFamily.objects.create(user=w.staff)
        service(refresh=str(_new_refresh(w.staff, family)))
        return w.staff, None
    if name == "jwt_revoke_all":
        from accounts.models import RefreshTokenFamily

        RefreshTokenFamily.objects.create(user=w.staff)
        service(user=w.staff, reason="deactivated", actor=w.admin)
        return w.admin, None
    if name == "clinic_sign_on_save":
        service(
            actor=w.admin,
            clinic=w.clinic,
            display_name="General Hospital",
            issuer="https://login.hospital.example",
            client_id="portal",
            client_secret="s3cret",
            allowed_email_domains=["hospital.example"],
            enabled=True,
        )
        return w.admin, None
    if name == "clinic_local_passwords_set":
        from accounts.models import ClinicSignOn

        ClinicSignOn.objects.create(
            clinic=w.clinic,
            display_name="General Hospital",
            issuer="https://login.hospital.example",
            client_id="portal",
            enabled=True,
        )
        service(actor=w.admin, clinic=w.clinic, allowed=True)
        return w.admin, None
    if name == "patient_set_research_consent":
        service(actor=w.staff, patient=w.patient, consent=True)
        return w.staff, w.patient.pk
    if name == "training_set_export":
        import tempfile
        from pathlib import Path

        w.patient.research_consent = True
        w.patient.save()
        factories.HistopathologyFactory(lesion=w.lesion, diagnosis="nv")
        with tempfile.TemporaryDirectory() as folder:
            since = timezone.localdate() - timezone.timedelta(days=1)
            service(actor=w.superuser, since=since, out_dir=Path(folder) / "export")
        return w.superuser, w.patient.pk
    if name == "analyses_reanalyse":
        factories.ModelVersionFactory(status="active")
        service(actor=w.superuser, analysis_ids=[w.done.pk], reason="A better model")
        return w.superuser, w.patient.pk
    if name.startswith("model_version_"):
        return _call_model_registry(name, service, w)
    return None


def _call_model_registry(name: str, service: Callable, w: World):
    """The model registry's writes: a superuser's, about no patient."""
    import tempfile
    from pathlib import Path

    from django.test import override_settings

    from diagnosis.models import ModelStatusChange
    from tests.diagnosis import model_dirs

    root = w.superuser
    if name == "model_version_set_status":
        version = factories.ModelVersionFactory()
        service(actor=root, model_version=version, status="shadow", reason="Watch it")
    elif name == "model_version_promote":
        service(actor=root, model_version=factories.ModelVersionFactory(), reason="First one")
    elif name == "model_version_rollback":
        earlier = factories.ModelVersionFactory(status="retired")
        ModelStatusChange.objects.create(
            model_version=earlier, from_status="active", to_status="retired", reason="Replaced"
        )
        factories.ModelVersionFactory(status="active")
        service(actor=root, reason="Back")
    else:  # model_version_import, model_version_evaluate: a real (random) model directory
        with (
            tempfile.TemporaryDirectory() as folder,
            override_settings(ML_MODELS_ROOT=Path(folder) / "models"),
        ):
            if name == "model_version_import":
                (Path(folder) / "models").mkdir()
                exported = model_dirs.random_model(Path(folder) / "exports", "audit-v1")
                service(actor=root, path=exported)
            else:
                model_dirs.random_model(Path(folder) / "models", "audit-v1")
                version = factories.ModelVersionFactory(version="audit-v1")
                factories.HistopathologyFactory(lesion=w.lesion, diagnosis="nv")
                service(actor=root, model_version=version, resamples=10)
    return root, None


def _service(name: str) -> Callable:
    for module in SERVICE_MODULES:
        candidate = getattr(module, name, None)
        if candidate is not None and getattr(candidate, "audit_actions", None):
            return candidate
    raise LookupError(name)


def test_the_registry_found_the_services():
    assert {"patient_create", "image_upload", "review_save"} <= set(_registered())


@pytest.mark.parametrize("name", sorted(_registered()))
def test_every_registered_write_leaves_exactly_one_audit_event(db, name):
    world = World()
    service = _service(name)
    before = set(AuditEvent.objects.values_list("pk", flat=True))

    called = _call(name, service, world)

    assert called is not None, f"{name}: add a call to _call() in this file"
    actor, patient_id = called
    events = list(AuditEvent.objects.exclude(pk__in=before))
    assert len(events) == 1, f"{name} recorded {[e.action for e in events]}"
    event = events[0]
    assert event.action in service.audit_actions
    assert event.user_id == actor.pk
    assert event.patient_id == patient_id


def test_every_service_taking_an_actor_is_registered_or_exempt():
    registered = set(_registered())
    unaccounted = []
    for module in SERVICE_MODULES:
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            if "actor" in inspect.signature(function).parameters and name not in registered:
                if name not in EXEMPT:
                    unaccounted.append(f"{module.__name__}.{name}")
    assert not unaccounted, (
        f"mark these writes @audited_write(...) or say in EXEMPT why not: {unaccounted}"
    )

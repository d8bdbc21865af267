"""Clinics and the people who work in them."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from knox.models import AbstractAuthToken


class Clinic(models.Model):
    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    # How long original images are kept; results, reviews and the audit trail stay.
    image_retention_days = models.PositiveIntegerField(default=3650)
    keep_thumbnails = models.BooleanField(default=True)
    # How many days a doctor's referral has before it counts as overdue, by its urgency. The
    # defaults are the UK's suspected-cancer "two-week wait" (NICE NG12) for an urgent referral
    # and six weeks for one that should be seen soon (e.g. a suspected basal cell carcinoma);
    # a clinic admin sets the clinic's own (diagnosis.services.referral reads them).
    referral_days_urgent = models.PositiveSmallIntegerField(
        "Days to see an urgent referral", default=14
    )
    referral_days_soon = models.PositiveSmallIntegerField("Days to see a soon referral", default=42)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(referral_days_urgent__gte=1)
                & models.Q(referral_days_soon__gte=models.F("referral_days_urgent")),
                name="clinic_referral_days_sensible",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Clinic admin"
    DOCTOR = "doctor", "Doctor"
    STAFF = "staff", "Clinic staff"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class User(AbstractUser):
    """A person who signs in with an email address. Everyone but a superuser or auditor
    belongs to exactly one clinic with one role; the database refuses anything else."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    role = models.CharField(max_length=10, choices=Role.choices, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_staff=True)
                | (models.Q(clinic__isnull=False) & ~models.Q(role="")),
                name="clinic_user_has_clinic_and_role",
            ),
            # Sign-in matches addresses case-insensitively, so two accounts may not differ in
            # case alone (the log-in would pick one of them).
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_unique_ignoring_case",
                violation_error_message="You cannot use this address; choose another.",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.get_full_name()

    @property
    def is_doctor(self) -> bool:
        return self.role == Role.DOCTOR

    @property
    def is_clinic_admin(self) -> bool:
        return self.role == Role.ADMIN


class AuditEventQuerySet(models.QuerySet):
    """Bulk writes are refused too: `AuditEvent.objects.filter(...).update()` or `.delete()`
    would otherwise bypass the model's save() and delete() guards."""

    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")

    # QuerySet.delete() is flagged for the admin's bulk action; keep that contract.
    delete.alters_data = True
    delete.queryset_only = True
    update.alters_data = True


class AuditEvent(models.Model):
    """One access to patient data, or one security-relevant account event.

    Append-only: the model refuses updates and deletes, and on PostgreSQL a trigger does too.
    Names are copied, not only linked, so the record outlives an erased patient or user.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user_email = models.CharField(max_length=254, blank=True)
    role = models.CharField(max_length=10, blank=True)
    clinic = models.ForeignKey(
        Clinic,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # the indexes below lead with it
    )
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        # A clinic admin reads the clinic's own trail (the admin's list, its filters): what
        # the plans asked for at 320,000 events in 20 clinics (accounts/migrations/0009).
        indexes = [
            models.Index(fields=["clinic", "-at", "-id"], name="audit_clinic_newest"),
            models.Index(fields=["clinic", "patient_id"], name="audit_clinic_patient"),
            models.Index(fields=["clinic", "action"], name="audit_clinic_action"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user_email or 'anonymous'} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")


class ApiToken(AbstractAuthToken):
    """An API token for the mobile app or an EHR system, acting as one account (django-rest-knox's
    token, settings.KNOX_TOKEN_MODEL). Only a SHA-512 digest of the key is stored, with its
    first characters to find it by; the key itself is shown once, when a clinic admin issues it.

    Every token expires (the admin chooses when, within settings.API_TOKEN_MAX_DAYS); its last
    use is recorded to the minute (accounts.authentication).
    """

    expiry = models.DateTimeField()
    issued_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"API token {self.token_key}… of {self.user}"


class ClinicSignOn(models.Model):
    """A clinic's hospital identity provider (OpenID Connect), set by its clinic admin or a
    superuser. allauth's openid_connect provider signs people in with it (accounts.sso builds
    its app from this row: provider id `clinic-<clinic id>`).

    Whom it may sign in is decided here, never by the provider: a person of this clinic whose
    verified address is in `allowed_email_domains`. The role comes from a claim only when the
    clinic maps one (`role_claim`); the clinic is always this one.
    """

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="sign_on")
    enabled = models.BooleanField(default=False)
    display_name = models.CharField(
        "Name on the sign-in button", max_length=100, help_text="e.g. Vienna General Hospital"
    )
    issuer = models.URLField(
        "Issuer URL", max_length=300, help_text="e.g. https://login.hospital.example/realms/staff"
    )
    client_id = models.CharField("Client ID", max_length=200)
    # Fernet-encrypted (accounts.sso.encrypt_secret); PORTAL_OIDC_SECRET_CLINIC_<id> in the
    # environment takes precedence and is never stored.
    client_secret_encrypted = models.TextField(blank=True)
    allowed_email_domains = models.JSONField(default=list, blank=True)
    create_unknown_as_staff = models.BooleanField(default=False)
    provider_enforces_mfa = models.BooleanField(default=False)
    role_claim = models.CharField(max_length=100, blank=True)
    # claim value -> portal role, e.g. {"derm-doctors": "doctor"}; only used with role_claim.
    role_claim_values = models.JSONField(default=dict, blank=True)
    local_passwords_disabled = models.BooleanField(default=False)
    # The first sign-in through the provider that worked: local passwords may be switched off
    # only after it, so a clinic cannot lock itself out with a provider that was never tried.
    first_sign_in_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "clinic sign-on (OpenID Connect)"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(local_passwords_disabled=False)
                | (models.Q(enabled=True) & models.Q(first_sign_in_at__isnull=False)),
                name="local_passwords_off_only_with_working_sign_on",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.clinic})"

    @property
    def provider_id(self) -> str:
        return f"clinic-{self.clinic_id}"


class RefreshTokenFamily(models.Model):
    """One sign-in of an API client with a JWT pair: the first refresh token and every one
    rotated from it carry this id (claim `fam`), and so do their access tokens. Revoking the
    family ends them all at once: on reuse of a rotated refresh token (someone holds a stolen
    copy), on deactivation, a password change or a change of role (accounts.services.jwt_tokens).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "refresh token families"

    # Why a family was revoked, as the person holding its tokens is told.
    REVOKED_BECAUSE = {
        "reuse": "a refresh token of it was used twice",
        "deactivated": "the account was deactivated",
        "password_change": "the account's password was changed",
        "role_change": "the account's role or clinic changed",
        "sign_out": "the app signed out",
        "local_passwords_off": "the clinic switched local passwords off",
    }

    def __str__(self) -> str:
        return f"JWT sign-in {self.id} of {self.user}"

    @property
    def ended_message(self) -> str:
        why = self.REVOKED_BECAUSE.get(self.revoked_reason, "it was revoked")
        return f"This sign-in was ended because {why}: sign in again."

"""Patients of a clinic."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

# Nobody alive was born earlier; an earlier year is a typing error.
EARLIEST_BIRTH_YEAR = 1880

# A medical record number as hospital systems write them (MRN000123, V-2027-1, 12/3456.7): a
# letter or digit first, then letters, digits and - / . _ as separators. No spaces, which a
# search or an EHR export would split.
mrn_format = RegexValidator(
    r"\A[A-Za-z0-9][A-Za-z0-9./_-]*\Z",
    message=(
        "An MRN is letters and digits, optionally separated by - / . or _ (no spaces or other "
        "signs), starting with a letter or digit."
    ),
    code="mrn_format",
)


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class FitzpatrickType(models.IntegerChoices):
    I = 1, "I"  # noqa: E741 - the clinical scale's own numeral
    II = 2, "II"
    III = 3, "III"
    IV = 4, "IV"
    V = 5, "V"
    VI = 6, "VI"


class Patient(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField(
        "MRN", max_length=64, validators=[mrn_format], help_text="Medical record number"
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices)
    fitzpatrick_skin_type = models.PositiveSmallIntegerField(
        choices=FitzpatrickType.choices, null=True, blank=True
    )
    phone = models.CharField(max_length=50, blank=True)
    email = models.EmailField(blank=True)
    address = models.TextField(blank=True)
    # Blank: a patient outlives the account that registered them, and stays editable.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The patient's consent to the research use of their images (training the classifier):
    # only consenting patients' confirmed cases leave the portal in a training set. Changed
    # only by patients.services.records.patient_set_research_consent (audited).
    research_consent = models.BooleanField("Consents to research use of images", default=False)
    research_consent_changed_at = models.DateTimeField(null=True, blank=True)
    research_consent_changed_by_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "mrn"], name="unique_mrn_per_clinic"),
        ]
        indexes = [models.Index(fields=["clinic", "last_name"])]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.mrn})"

    def clean(self) -> None:
        """The date-of-birth rule, for every writer (the page's form, the API, the service, so
        management commands too); the MRN's format is its field's validator."""
        born = self.date_of_birth
        if born is None:
            return
        if born > timezone.localdate():
            raise ValidationError({"date_of_birth": "The date of birth is in the future."})
        if born.year < EARLIEST_BIRTH_YEAR:
            raise ValidationError(
                {"date_of_birth": f"The date of birth is before {EARLIEST_BIRTH_YEAR}."}
            )

    @property
    def audit_patient_id(self) -> int:
        """The patient an audit event about this record names (accounts.audit)."""
        return self.pk

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def age_on(self, day: datetime.date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

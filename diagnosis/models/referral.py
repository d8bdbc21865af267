"""A referral: a doctor's signed decision to refer a lesion, tracked until it is closed.

A referral is work with a deadline, not a word in a review. Signing a review whose decision is
"refer urgently" or "refer soon" opens one (diagnosis.services.referral); it is due a number of
days later set by the clinic's policy for its urgency:

    | Urgency | Review decision  | Default due      | Clinic field            |
    |---------|------------------|------------------|-------------------------|
    | urgent  | Refer urgently   | 14 days (2 weeks)| Clinic.referral_days_urgent |
    | soon    | Refer soon       | 42 days (6 weeks)| Clinic.referral_days_soon   |

Fourteen days is the UK's suspected-cancer "two-week wait" (NICE NG12), used for a suspected
melanoma; six weeks suits a suspected basal cell carcinoma or Bowen's disease. The due date is
fixed when the referral opens: a later change of policy does not move it.

A referral is closed by a doctor recording the outcome, the lesion's histology result, or both.
Whether it is overdue (open and past its due date) is a read, never a stored flag
(diagnosis.selectors.referral).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from diagnosis.models.analysis import Analysis
from diagnosis.models.histopathology import Histopathology
from diagnosis.models.lesion import Lesion
from diagnosis.models.review import Management, Review


class ReferralUrgency(models.TextChoices):
    URGENT = "urgent", "Urgent"
    SOON = "soon", "Soon"


class ReferralStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


# The review decisions that refer, and the urgency each gives its referral.
REFERRING_DECISIONS: dict[str, str] = {
    Management.REFER_URGENTLY: ReferralUrgency.URGENT,
    Management.REFER_SOON: ReferralUrgency.SOON,
}


class Referral(models.Model):
    # The signed review version whose decision opened the referral; its analysis and lesion are
    # kept too, so lists and the one-open-referral rule need no walk through the review.
    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="referral")
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="referrals")
    lesion = models.ForeignKey(Lesion, on_delete=models.CASCADE, related_name="referrals")
    destination = models.CharField("Referred to", max_length=200)
    urgency = models.CharField(max_length=10, choices=ReferralUrgency.choices)
    due_on = models.DateField("Due by")
    status = models.CharField(
        max_length=10,
        choices=ReferralStatus.choices,
        default=ReferralStatus.OPEN,
        db_index=True,
    )
    outcome = models.TextField(blank=True)
    # RESTRICT: a histology result that closed a referral is never deleted from under it, yet
    # erasing the patient (which removes both through the lesion) still works.
    histopathology = models.ForeignKey(
        Histopathology,
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="referrals",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Copied at closing, so the record outlives a renamed or removed account.
    closed_by_name = models.CharField(max_length=200, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(destination=""), name="referral_names_its_destination"
            ),
            # Closed means closed by someone with an outcome or a histology result; open means
            # none of that is filled in yet.
            models.CheckConstraint(
                condition=(
                    models.Q(status="open")
                    & models.Q(closed_at__isnull=True)
                    & models.Q(outcome="")
                    & models.Q(histopathology__isnull=True)
                )
                | (
                    models.Q(status="closed")
                    & models.Q(closed_at__isnull=False)
                    & ~models.Q(closed_by_name="")
                    & (~models.Q(outcome="") | models.Q(histopathology__isnull=False))
                ),
                name="referral_closed_with_outcome_or_histology",
            ),
            # A second signature of the same decision (an amendment that still refers, a double
            # submit) finds the open referral instead of opening another.
            models.UniqueConstraint(
                fields=["analysis"],
                condition=models.Q(status="open"),
                name="referral_one_open_per_analysis",
            ),
        ]

    def __str__(self) -> str:
        return f"Referral {self.pk} to {self.destination} ({self.status})"

    @property
    def audit_patient_id(self) -> int:
        return self.lesion.patient_id

    @property
    def is_closed(self) -> bool:
        return self.status == ReferralStatus.CLOSED

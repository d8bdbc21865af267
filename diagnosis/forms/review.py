"""Forms for a doctor's review.

The forms say what is missing next to each field with the service's own rules
(diagnosis.services.review.review_rule_errors), which the service checks again on every write
(and the database a third time), so the API and any future caller get the same answer.
"""

from __future__ import annotations

from typing import Any

from django import forms

from diagnosis.models import DiagnosisChoice, Management
from diagnosis.services.review import review_rule_errors
from melanoma_portal.forms import DateInput

AGREEMENT_CHOICES = [("yes", "Yes, I agree with the AI"), ("no", "No, I disagree")]


def _yes(value: str) -> bool:
    return value == "yes"


class ReviewForm(forms.Form):
    agrees_with_ai = forms.TypedChoiceField(
        label="Do you agree with the AI's assessment?",
        choices=AGREEMENT_CHOICES,
        coerce=_yes,
        widget=forms.RadioSelect,
        error_messages={"required": "Say whether you agree with the AI."},
    )
    diagnosis = forms.ChoiceField(
        label="Clinical diagnosis",
        choices=[("", "— choose —"), *DiagnosisChoice.choices],
        error_messages={"required": "Choose your clinical diagnosis."},
    )
    diagnosis_other = forms.CharField(
        label="Other diagnosis (when 'Other')", max_length=200, required=False
    )
    management = forms.ChoiceField(
        choices=Management.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the management."},
    )
    follow_up_on = forms.DateField(
        label="Follow-up date (when monitoring)",
        required=False,
        widget=DateInput(),
    )
    referral_to = forms.CharField(
        label="Refer to (when referring)",
        max_length=200,
        required=False,
        help_text="The service and hospital, e.g. 'Plastic surgery, St Mary's'. Signing opens "
        "a referral, due by the clinic's policy for its urgency.",
    )
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)

    def __init__(self, *args: Any, ai_suggestion: str = "", **kwargs: Any) -> None:
        """`ai_suggestion` is the analysis's top class, which "I agree" must match."""
        super().__init__(*args, **kwargs)
        self.ai_suggestion = ai_suggestion

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The service's rules, shown next to the fields; a field that already has an error
        # (an unreadable date, say) keeps that one.
        errors = review_rule_errors(
            management=data.get("management"),
            follow_up_on=data.get("follow_up_on"),
            diagnosis=data.get("diagnosis"),
            diagnosis_other=data.get("diagnosis_other", ""),
            referral_to=data.get("referral_to", ""),
            agrees_with_ai=data.get("agrees_with_ai"),
            ai_suggestion=self.ai_suggestion,
        )
        for field, message in errors.items():
            if field not in self.errors:
                self.add_error(field, message)
        return data

    @staticmethod
    def initial_from(review) -> dict[str, Any]:
        """The form's initial values from an existing review (a draft, or the version an
        amendment starts from)."""
        if review is None:
            return {}
        return {
            "agrees_with_ai": "yes" if review.agrees_with_ai else "no",
            "diagnosis": review.diagnosis,
            "diagnosis_other": review.diagnosis_other,
            "management": review.management,
            "follow_up_on": review.follow_up_on,
            "referral_to": review.referral_to,
            "notes": review.notes,
        }


class ReviewAmendForm(ReviewForm):
    amendment_reason = forms.CharField(
        label="Why are you amending the signed review?",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the signed review is amended."},
    )


class LesionReviewForm(ReviewForm):
    """Review by lesion: the review of the visit's latest image, and which of the visit's older
    unreviewed images it covers (all of them unless the doctor unticks one)."""

    cover = forms.TypedMultipleChoiceField(
        label="Also mark these older images of the same visit as covered by this review",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, coverable: list[tuple[int, str]], **kwargs: Any) -> None:
        """`coverable`: (analysis id, description) of the older unreviewed images."""
        super().__init__(*args, **kwargs)
        self.fields["cover"].choices = coverable
        self.fields["cover"].initial = [pk for pk, _ in coverable]
        if not coverable:
            del self.fields["cover"]

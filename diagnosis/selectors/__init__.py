"""Reads in the diagnosis domain, always scoped to the user's clinic, one module per
sub-domain: lesions and images, analyses, reviews, histopathology, referrals."""

from diagnosis.selectors.analysis import (
    analyses_for_patient,
    analysis_get,
    analysis_list,
    awaiting_review,
    dashboard_counts,
    high_risk_awaiting_review,
    live_queue,
    queue_position,
    queue_positions,
)
from diagnosis.selectors.histopathology import (
    agreement_summary,
    histology_cases,
    lesion_histopathology,
)
from diagnosis.selectors.housekeeping import sweep_late
from diagnosis.selectors.lesion import (
    image_get,
    lesion_get,
    lesion_list,
    lesion_timeline,
    patient_lesion_marks,
)
from diagnosis.selectors.referral import (
    overdue_referral_count,
    referral_get,
    referral_list,
    referrals_for_analysis,
)
from diagnosis.selectors.review import (
    current_review,
    current_signed_review,
    review_versions,
    signed_reviews,
    worklist,
)

__all__ = [
    "agreement_summary",
    "analyses_for_patient",
    "analysis_get",
    "analysis_list",
    "awaiting_review",
    "current_review",
    "current_signed_review",
    "dashboard_counts",
    "high_risk_awaiting_review",
    "histology_cases",
    "image_get",
    "lesion_get",
    "lesion_histopathology",
    "lesion_list",
    "lesion_timeline",
    "live_queue",
    "overdue_referral_count",
    "patient_lesion_marks",
    "queue_position",
    "queue_positions",
    "referral_get",
    "referral_list",
    "referrals_for_analysis",
    "review_versions",
    "signed_reviews",
    "sweep_late",
    "worklist",
]

"""REST API for lesions, image uploads, analyses (with the FHIR export), signed reviews and
referrals.

The endpoints call the same selectors and services as the pages, so the clinic scoping, role
checks, upload validation and audit events are the portal's own.
"""

from diagnosis.api.analysis import AnalysisViewSet
from diagnosis.api.lesion import LesionViewSet
from diagnosis.api.referral import ReferralViewSet
from diagnosis.api.review import ReviewViewSet

__all__ = ["AnalysisViewSet", "LesionViewSet", "ReferralViewSet", "ReviewViewSet"]

"""What the query-count tests share (tests/<app>/test_query_counts.py): a clinic's records of
every kind the lists show, added in rounds, and the number of queries one request runs.

A list page must run the same number of queries for one patient as for many: a query per row
(an N+1) makes a page that is fast in a test slow at a clinic network's scale.
"""

from __future__ import annotations

from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from accounts.audit import audit_record
from accounts.models import Clinic, User
from diagnosis.models import Lesion
from tests import factories


def add_patients(clinic: Clinic, doctor: User, *, count: int) -> list[Lesion]:
    """`count` patients of `clinic`, each with one lesion holding what the lists show: a result
    awaiting review (urgent), one with a doctor's draft (soon), a queued and a failed analysis,
    a result whose signed review opened a referral, and an audit event. Returns the lesions."""
    lesions = []
    for _ in range(count):
        patient = factories.PatientFactory(clinic=clinic)
        lesion = factories.LesionFactory(patient=patient)
        add_images(lesion, doctor, count=1)
        factories.AnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
        factories.AnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=lesion),
            status="failed",
            failure_reason="The worker stopped.",
        )
        factories.ReferralFactory(
            analysis=factories.DoneAnalysisFactory(
                image=factories.DermoscopicImageFactory(lesion=lesion)
            )
        )
        audit_record(action="patient.view", user=doctor, obj=patient)
        lesions.append(lesion)
    return lesions


def add_images(lesion: Lesion, doctor: User, *, count: int) -> None:
    """`count` rounds of two images of `lesion`: an urgent result awaiting review and a soon
    one with `doctor`'s draft review."""
    for _ in range(count):
        factories.DoneAnalysisFactory(image=factories.DermoscopicImageFactory(lesion=lesion))
        drafted = factories.TriagedAnalysisFactory(
            image=factories.DermoscopicImageFactory(lesion=lesion)
        )
        factories.ReviewFactory(analysis=drafted, author=doctor)


def queries_of(client, url: str) -> int:
    """How many queries one GET of `url` runs, after a first one that warms up (a session's
    first request, or a dashboard naming new patients on the audit trail, runs more)."""
    assert client.get(url).status_code == 200
    reset_queries()  # a request resets the log itself; the count must start at zero
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)

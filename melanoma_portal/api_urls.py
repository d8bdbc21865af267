"""The REST API (/api/v1/) and its schema; each app contributes its endpoints from api.py.

/api/schema/ is the OpenAPI 3 document, /api/docs/ a Swagger UI page (its start-up script a
separate file, so the portal's Content-Security-Policy allows it) and /api/redoc/ Redoc,
both served from this server's static files (drf-spectacular-sidecar), never from a CDN.
"""

from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import SimpleRouter

from accounts.api import TokenObtainView, TokenRefreshView, TokenSignOutView
from diagnosis.api import AnalysisViewSet, LesionViewSet, ReferralViewSet, ReviewViewSet
from patients.api import PatientViewSet
from reports.api import AnalysisReportPDF

app_name = "api"

router = SimpleRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("lesions", LesionViewSet, basename="lesion")
router.register("analyses", AnalysisViewSet, basename="analysis")
router.register("reviews", ReviewViewSet, basename="review")
router.register("referrals", ReferralViewSet, basename="referral")

urlpatterns = [
    # JWT sign-in for apps that act for a person (accounts.services.jwt_tokens).
    path("v1/auth/token/", TokenObtainView.as_view(), name="token-obtain"),
    path("v1/auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("v1/auth/token/sign-out/", TokenSignOutView.as_view(), name="token-sign-out"),
    path(
        "v1/analyses/<str:analysis_id>/report/",
        AnalysisReportPDF.as_view(),
        name="analysis-report",
    ),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]

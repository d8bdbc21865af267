from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("clinic/", include("accounts.urls")),
    path("patients/", include("patients.urls")),
    path("reports/", include("reports.urls")),
    path("api/", include("melanoma_portal.api_urls")),
    path("", include("diagnosis.urls")),
]

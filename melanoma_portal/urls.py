from django.contrib import admin
from django.urls import include, path

from accounts.session import session_clock
from accounts.sign_in import admin_login, email_managed_by_clinic
from accounts.sso import oidc_login
from melanoma_portal.pages import favicon

# A server error in the portal's layout, with its menu (melanoma_portal.pages).
handler500 = "melanoma_portal.pages.server_error"

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    # Before the admin's own URLs: its password-only log-in form would bypass lock-out and MFA.
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    # Before allauth's URLs, under the name its pages link to: addresses are not self-service.
    path("accounts/email/", email_managed_by_clinic, name="account_email"),
    path("accounts/session/", session_clock, name="session_clock"),
    # allauth's hospital sign-in view, answering an unreachable provider in plain words.
    path("accounts/oidc/<str:provider_id>/login/", oidc_login, name="openid_connect_login"),
    path("accounts/", include("allauth.urls")),
    path("clinic/", include("accounts.urls")),
    path("patients/", include("patients.urls")),
    path("reports/", include("reports.urls")),
    path("api/", include("melanoma_portal.api_urls")),
    path("", include("diagnosis.urls")),
]

"""The web tier as production runs it: Debian's nginx with deploy/nginx/portal.conf in front
of gunicorn with deploy/gunicorn.conf.py and the production settings (bin/serve-nginx)."""

from __future__ import annotations

import re

import pytest
import requests
from django.conf import settings

from tests.nginx import nginx_in_front
from tests.worker import require_shared_services, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

MB = 1024 * 1024


def get(url: str, **kwargs) -> requests.Response:
    # The site's certificate is self-signed by bin/serve-nginx.
    return requests.get(url, verify=False, timeout=60, **kwargs)  # noqa: S501


def post(url: str, **kwargs) -> requests.Response:
    return requests.post(url, verify=False, timeout=60, **kwargs)  # noqa: S501


@pytest.fixture(scope="module")
def site(django_db_blocker):
    # One nginx + gunicorn for the module's tests; they only read, or are refused.
    with django_db_blocker.unblock():
        require_shared_services()
        with nginx_in_front() as running:
            yield running


def test_tls_at_nginx_keeps_every_security_header_django_sets(site):
    page = get(f"{site.https}/accounts/login/")

    assert page.status_code == 200 and page.url.startswith("https://")
    assert page.headers["Server"] == "nginx"  # no version
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "__Host-csrftoken=" in page.headers["Set-Cookie"]
    assert "Secure" in page.headers["Set-Cookie"]
    # nginx's request id reached Django, which answered it; nginx logged the same id.
    request_id = page.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    wait_for(
        lambda: f'"request_id":"{request_id}"' in site.access_log(),
        timeout=5,
        message=f"{request_id} not in nginx's access log:\n{site.access_log()[-2000:]}",
    )


def test_static_files_come_from_nginx_and_plain_http_redirects_except_healthz(site):
    css = get(f"{site.https}/static/css/portal.css")
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css"
    assert css.content == (settings.BASE_DIR / "static" / "css" / "portal.css").read_bytes()
    assert "X-Request-ID" not in css.headers  # served from disk; Django never saw it
    assert css.headers["Strict-Transport-Security"].startswith("max-age=")
    assert css.headers["X-Content-Type-Options"] == "nosniff"

    plain = get(f"{site.http}/patients/", allow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"{site.https}/patients/"
    health = get(f"{site.http}/healthz")
    assert health.status_code == 200 and health.text == "ok\n"


def test_uploads_past_the_limit_are_refused_by_nginx_in_words_and_smaller_reach_django(site):
    url = f"{site.https}/api/v1/lesions/1/images/"
    too_big = post(url, files={"file": ("big.jpg", b"\0" * (22 * MB))})
    assert too_big.status_code == 413
    assert "too large to upload" in too_big.text and "20 MB" in too_big.text

    # Just under UPLOAD_MAX_BYTES with its form: nginx passes it, and Django answers (no token).
    within = post(url, files={"file": ("big.jpg", b"\0" * (settings.UPLOAD_MAX_BYTES - MB))})
    assert within.status_code == 401
    assert within.headers["Content-Type"] == "application/json"

"""Page and API list timings against a clinic network's database (manage.py seed_scale).

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/scale_bench
    export DJANGO_SETTINGS_MODULE=melanoma_portal.settings.test
    .venv/bin/python manage.py migrate && .venv/bin/python manage.py seed_scale
    .venv/bin/python bench/pages.py                 # p50 / p95 ms and queries per page
    .venv/bin/python bench/pages.py --explain       # and EXPLAIN ANALYZE of each page's queries

Signs in as clinic 01's doctor, nurse and admin (the admin through the authenticator code the
Django admin asks for) with Django's test Client, in process: the time is the whole request
(middleware, queries, template, the audit event it writes), without a network or a web server.
Each page is requested once to warm up, once to count its queries, then `--runs` times timed.
Prints a table; nothing is asserted (tests/<app>/test_query_counts.py pin the counts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402 - once the root is on the path

PASSWORD = "scale-bench-password"  # noqa: S105 - seed_scale's published default


def _pages(ids: dict[str, int]) -> list[tuple[str, str, str]]:
    """(name, who, url) of every page the clinic network opens all day."""
    return [
        ("dashboard", "doctor", "/"),
        ("dashboard live refresh", "doctor", "/dashboard/live/"),
        ("worklist", "doctor", "/worklist/"),
        ("worklist high risk", "doctor", "/worklist/?show=high-risk"),
        ("analyses (all)", "doctor", "/analyses/"),
        ("referrals", "doctor", "/referrals/"),
        ("patient list", "nurse", "/patients/"),
        ("patient list page 20", "nurse", "/patients/?page=20"),
        ("patient search name", "nurse", "/patients/?q=Huber12"),
        ("patient search MRN", "nurse", f"/patients/?q={ids['mrn']}"),
        ("patient page", "doctor", f"/patients/{ids['patient']}/"),
        ("lesion page", "doctor", f"/lesions/{ids['lesion']}/"),
        ("audit admin list", "admin", "/admin/accounts/auditevent/"),
        (
            "audit admin by patient",
            "admin",
            f"/admin/accounts/auditevent/?patient={ids['patient']}",
        ),
        ("API patients", "doctor", "/api/v1/patients/"),
        ("API patients search", "doctor", "/api/v1/patients/?search=Huber12"),
        ("API lesions", "doctor", "/api/v1/lesions/"),
        ("API analyses", "doctor", "/api/v1/analyses/"),
        ("API analyses done", "doctor", "/api/v1/analyses/?status=done"),
        ("API reviews", "doctor", "/api/v1/reviews/"),
        ("API referrals", "doctor", "/api/v1/referrals/"),
    ]


def _ids(clinic) -> dict[str, int]:
    """A busy patient of the clinic and their lesion with the most images (the lesion page's
    worst case), and an MRN to search for."""
    from django.db.models import Count

    from diagnosis.models import Lesion

    lesion = (
        Lesion.objects.filter(patient__clinic=clinic)
        .annotate(n=Count("images"))
        .order_by("-n", "pk")
        .first()
    )
    return {"patient": lesion.patient_id, "lesion": lesion.pk, "mrn": lesion.patient.mrn}


def _clients(clinic) -> dict:
    from allauth.mfa.models import Authenticator
    from django.test import Client
    from django.urls import reverse

    from accounts.models import Role, User
    from tests import factories

    clients = {}
    for who, role in (("doctor", Role.DOCTOR), ("nurse", Role.STAFF)):
        client = Client()
        client.force_login(User.objects.filter(clinic=clinic, role=role).order_by("pk").first())
        clients[who] = client
    # The admin signs in as a person does: password, then the authenticator's code.
    admin = User.objects.get(clinic=clinic, role=Role.ADMIN)
    Authenticator.objects.filter(user=admin).delete()  # a new secret for each run
    secret = factories.activate_totp(admin)
    client = Client()
    client.post(reverse("account_login"), {"login": admin.email, "password": PASSWORD})
    client.post(reverse("mfa_authenticate"), {"code": factories.totp_code(secret)})
    if "_auth_user_id" not in client.session:
        sys.exit(f"Could not sign in as {admin.email}: was the database seeded by seed_scale?")
    clients["admin"] = client
    return clients


def _explain(queries: list[dict], top: int) -> None:
    from django.db import connection

    selects = [q for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    selects.sort(key=lambda q: float(q["time"]), reverse=True)
    with connection.cursor() as cursor:
        for query in selects[:top]:
            print(f"\n  -- {float(query['time']) * 1000:.1f} ms: {query['sql'][:600]}")
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            for (line,) in cursor.fetchall():
                print(f"     {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", help="pages whose name contains this")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the slowest queries"
    )
    parser.add_argument("--top", type=int, default=3, help="how many queries per page to explain")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_portal.settings.test")
    os.environ.setdefault("API_THROTTLE_USER", "100000/minute")
    import django

    django.setup()
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from accounts.models import AuditEvent, Clinic
    from diagnosis.models import Analysis

    setup_test_environment()  # the test Client's host, and e-mail kept in memory
    if connection.vendor != "postgresql":
        sys.exit("Point DATABASE_URL at the PostgreSQL database seed_scale filled.")
    clinic = Clinic.objects.filter(name="Scale Clinic 01").first()
    if clinic is None:
        sys.exit("No seeded clinic here: run manage.py seed_scale first.")
    print(
        f"database {connection.settings_dict['NAME']}: {Analysis.objects.count()} analyses, "
        f"{AuditEvent.objects.count()} audit events, {Clinic.objects.count()} clinics; "
        f"{args.runs} runs per page, {os.cpu_count()} CPUs (shared: figures are noisy)"
    )
    ids = _ids(clinic)
    clients = _clients(clinic)
    print(f"\n{'page':<26} {'who':<7} {'status':>6} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for name, who, url in _pages(ids):
        if args.only and args.only not in name:
            continue
        client = clients[who]
        response = client.get(url)  # warm-up: the session's first request loads more
        reset_queries()  # a request resets the log itself; the count must start at zero
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        # The log is the connection's: read it before the next request resets it.
        queries = list(captured.captured_queries)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        p95 = percentile(times, 95)
        print(
            f"{name:<26} {who:<7} {response.status_code:>6} {len(queries):>7} "
            f"{statistics.median(times):>8.1f} {p95:>8.1f}",
            flush=True,
        )
        if args.explain:
            _explain(queries, args.top)


if __name__ == "__main__":
    main()

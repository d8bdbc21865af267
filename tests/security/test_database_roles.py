"""The audit trail is tamper-proof on PostgreSQL: the portal's role owns nothing.

A throw-away database is migrated the production way (`manage.py migrate` with DATABASE_URL
naming the portal's role and DATABASE_MIGRATE_URL the owner), then the portal's role tries
everything that would rewrite history. Nothing is mocked: real roles, real grants, real
PostgreSQL errors. The roles and the database are named after this run's test database, so
parallel runs on one server do not meet, and are dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.integration]

psycopg = pytest.importorskip("psycopg")
REPO = Path(__file__).resolve().parents[2]
DB = settings.DATABASES["default"]


def _server(**overrides) -> dict:
    params = {
        "host": DB.get("HOST") or "127.0.0.1",
        "port": DB.get("PORT") or 5432,
        "user": DB.get("USER") or "postgres",
        "password": DB.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    params.update(overrides)
    return params


def _url(role: str, database: str) -> str:
    server = _server()
    return f"postgres://{role}@{server['host']}:{server['port']}/{database}"


class Roles:
    def __init__(self, base: str) -> None:
        self.owner = f"{base}_owner"
        self.app = f"{base}_app"
        self.database = f"{base}_roles"

    def connect(self, role: str):
        return psycopg.connect(**_server(user=role, password=None, dbname=self.database))


def _drop(admin, roles: Roles) -> None:
    admin.execute(f'DROP DATABASE IF EXISTS "{roles.database}" WITH (FORCE)')
    for role in (roles.app, roles.owner):
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def _migrate(roles: Roles, *, app_role: str, owner_role: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.dev",
        "DATABASE_URL": _url(app_role, roles.database),
        "DATABASE_MIGRATE_URL": _url(owner_role, roles.database),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def roles():
    if "postgresql" not in DB["ENGINE"]:
        pytest.skip("PostgreSQL only: on SQLite the audit trail is protected by the ORM alone")
    base = (DB.get("TEST") or {}).get("NAME") or f"test_{DB['NAME']}"
    roles = Roles(base)
    with psycopg.connect(**_server()) as admin:
        allowed = admin.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()[0]
        if not allowed:
            pytest.skip("the test's PostgreSQL user may not create roles")
        _drop(admin, roles)  # an earlier run killed before its clean-up
        admin.execute(f'CREATE ROLE "{roles.owner}" LOGIN')
        admin.execute(f'CREATE ROLE "{roles.app}" LOGIN')
        admin.execute(f'CREATE DATABASE "{roles.database}" OWNER "{roles.owner}"')
        try:
            result = _migrate(roles, app_role=roles.app, owner_role=roles.owner)
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"Granted the portal's role {roles.app}" in result.stdout
            yield roles
        finally:
            _drop(admin, roles)


def test_migrations_ran_as_the_owner_and_the_portal_role_owns_nothing(roles):
    with roles.connect(roles.owner) as owner:
        owned = owner.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = %s",
            [roles.app],
        ).fetchall()
        audit_owner = owner.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'accounts_auditevent'"
        ).fetchone()[0]
    assert owned == []
    assert audit_owner == roles.owner


DENIED = {
    "truncate": "TRUNCATE accounts_auditevent",
    "disable the trigger": "ALTER TABLE accounts_auditevent DISABLE TRIGGER ALL",
    "disable the trigger by name": (
        "ALTER TABLE accounts_auditevent DISABLE TRIGGER accounts_auditevent_append_only"
    ),
    "switch the replication role": "SET session_replication_role = replica",
    "drop the table": "DROP TABLE accounts_auditevent",
    "delete rows": "DELETE FROM accounts_auditevent",
    "rewrite a row": "UPDATE accounts_auditevent SET action = 'patient.list'",
    "become the owner": "SET ROLE {owner}",
    "rewrite the migrations record": "DELETE FROM django_migrations",
}


@pytest.mark.parametrize("statement", DENIED.values(), ids=DENIED.keys())
def test_portal_role_cannot_rewrite_or_silence_the_audit_trail(roles, statement):
    with roles.connect(roles.app) as app:
        _append_event(app)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(statement.format(owner=f'"{roles.owner}"'))
        # Still there, still guarded.
        assert app.execute("SELECT count(*) FROM accounts_auditevent").fetchone()[0] >= 1
        assert app.execute("SHOW session_replication_role").fetchone()[0] == "origin"


def _append_event(app) -> int:
    return app.execute(
        "INSERT INTO accounts_auditevent "
        "(at, user_email, role, action, object_type, object_id, user_agent, detail) "
        "VALUES (now(), 'staff@vienna.example', 'staff', 'patient.view', 'patient', '7', '', "
        "'{}') RETURNING id"
    ).fetchone()[0]


def test_portal_role_can_append_read_and_unlink_a_deleted_clinic(roles):
    """Django's on_delete=SET_NULL on an audit row, as the portal's role: allowed by grant and
    trigger alike, and the row keeps everything else."""
    code = (
        "from accounts.models import AuditEvent, Clinic\n"
        "clinic = Clinic.objects.create(name='Vienna')\n"
        "event = AuditEvent.objects.create(\n"
        "    action='patient.view', clinic=clinic, user_email='staff@vienna.example')\n"
        "clinic.delete()\n"
        "event = AuditEvent.objects.get(pk=event.pk)\n"
        "print('kept', event.action, event.user_email, event.clinic_id)\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.dev",
            "DATABASE_URL": _url(roles.app, roles.database),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept patient.view staff@vienna.example None" in result.stdout


def test_the_portal_runs_as_its_role(roles, tmp_path):
    """The whole demo clinic (users, patients, images, queued analyses, their audit events) is
    written by the portal's role alone."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "melanoma_portal.settings.dev",
        "DATABASE_URL": _url(roles.app, roles.database),
        "PORTAL_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_RESULT_BACKEND": f"file://{tmp_path / 'celery-results'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "load_demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with roles.connect(roles.app) as app:
        assert app.execute("SELECT count(*) FROM patients_patient").fetchone()[0] == 4
        assert app.execute("SELECT count(*) FROM accounts_auditevent").fetchone()[0] > 0


def test_migrate_refuses_a_portal_role_that_is_the_owner(roles):
    result = _migrate(roles, app_role=roles.owner, owner_role=roles.owner)
    assert result.returncode != 0
    assert "would own the audit table" in result.stderr


def test_migrate_refuses_a_superuser_portal_role(roles):
    superuser = _server()["user"]
    with psycopg.connect(**_server()) as admin:
        if not admin.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()[0]:
            pytest.skip("the test's PostgreSQL user is not a superuser")
    result = _migrate(roles, app_role=superuser, owner_role=roles.owner)
    assert result.returncode != 0
    assert "superuser" in result.stderr

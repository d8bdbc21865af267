"""The PostgreSQL role the portal runs as, and what it may do (docs/deployment.md).

The audit trail's trigger refuses UPDATE and DELETE of a row, but a table's owner can still
TRUNCATE it, `ALTER TABLE ... DISABLE TRIGGER`, or drop it; a superuser can also switch
`session_replication_role` to `replica`, which silences every trigger. So in production two roles
share the database:

- the *owner* (`DATABASE_MIGRATE_URL`) owns every table and runs the migrations;
- the *app* role (`DATABASE_URL`) owns nothing and is neither a superuser nor a member of the
  owner. It may read and write the portal's tables, but of the audit table only read it, append
  to it, and unlink a deleted user or clinic (the `on_delete=SET_NULL` of `user_id` and
  `clinic_id`, which the trigger also allows).

`app_role_grants()` is the one statement of those privileges: `manage.py migrate` applies it
after migrating as the owner, and `manage.py grant_app_role --sql` prints it for a DBA.
"""

from __future__ import annotations

import re

AUDIT_TABLE = "accounts_auditevent"
# Columns Django's on_delete=SET_NULL may clear on an audit row.
AUDIT_UNLINK_COLUMNS = ("user_id", "clinic_id")
# Read by the app (the pending-migrations check), written only by migrate.
MIGRATIONS_TABLE = "django_migrations"
SCHEMA = "public"

_ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class UnsafeAppRole(Exception):
    """The app role could bypass the audit trail's protection; the message says why."""


def quote_role(name: str) -> str:
    """A role name as an SQL identifier; refuses anything but a plain name."""
    if not _ROLE_NAME.match(name):
        raise ValueError(f"{name!r} is not a plain PostgreSQL role name")
    return f'"{name}"'


def app_role_grants(*, app_role: str, owner_role: str) -> list[str]:
    """The statements, run as the owner, that give `app_role` what the portal needs and no more.

    Idempotent: run after every migration, so tables a migration adds are covered too (the
    default privileges cover tables the owner creates later by any other means)."""
    app, owner = quote_role(app_role), quote_role(owner_role)
    unlink = ", ".join(AUDIT_UNLINK_COLUMNS)
    return [
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {app}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {SCHEMA} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {SCHEMA} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        # The audit trail: read, append, unlink a deleted user or clinic; nothing else.
        f"REVOKE ALL ON {AUDIT_TABLE} FROM PUBLIC",
        f"REVOKE ALL ON {AUDIT_TABLE} FROM {app}",
        f"GRANT SELECT, INSERT ON {AUDIT_TABLE} TO {app}",
        f"GRANT UPDATE ({unlink}) ON {AUDIT_TABLE} TO {app}",
        # Which migrations ran is migrate's business: the app only reads it.
        f"REVOKE ALL ON {MIGRATIONS_TABLE} FROM {app}",
        f"GRANT SELECT ON {MIGRATIONS_TABLE} TO {app}",
    ]


def check_app_role(cursor, *, app_role: str, owner_role: str) -> None:
    """Refuse an app role that could undo the audit trail's protection: the owner itself, a
    superuser, a role that bypasses row security, or one that can act as the owner."""
    if app_role == owner_role:
        raise UnsafeAppRole(
            f"DATABASE_URL and DATABASE_MIGRATE_URL both connect as {app_role}: the portal would "
            "own the audit table and could truncate it or disable its trigger. Give the portal "
            "its own role (docs/deployment.md)."
        )
    cursor.execute(
        "SELECT rolsuper, rolbypassrls, pg_has_role(rolname, %s, 'MEMBER') "
        "FROM pg_roles WHERE rolname = %s",
        [owner_role, app_role],
    )
    row = cursor.fetchone()
    if row is None:
        raise UnsafeAppRole(f"There is no PostgreSQL role {app_role}; create it first.")
    superuser, bypass_rls, member_of_owner = row
    if superuser or bypass_rls:
        raise UnsafeAppRole(
            f"The portal's role {app_role} is a superuser (or bypasses row security): it could "
            "switch session_replication_role to replica and silence the audit trigger."
        )
    if member_of_owner:
        raise UnsafeAppRole(
            f"The portal's role {app_role} is a member of the owner {owner_role}: it could "
            "SET ROLE to the owner and truncate the audit table."
        )


def grant_app_role(connection, *, app_role: str) -> list[str]:
    """Check `app_role` and apply `app_role_grants()` on `connection`, which is logged in as
    the owner. Returns the statements run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner_role = cursor.fetchone()[0]
        check_app_role(cursor, app_role=app_role, owner_role=owner_role)
        statements = app_role_grants(app_role=app_role, owner_role=owner_role)
        for statement in statements:
            cursor.execute(statement)
    return statements

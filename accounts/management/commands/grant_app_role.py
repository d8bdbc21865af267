"""Grant the portal's PostgreSQL role what it needs and no more (accounts.db_roles).

    DATABASE_URL=postgres://portal_owner@db/portal manage.py grant_app_role portal_app
    manage.py grant_app_role portal_app --owner portal_owner --sql   # print, run nothing

`manage.py migrate` runs this itself when DATABASE_MIGRATE_URL is set; run it by hand after
restoring a dump, or to give a DBA the SQL.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from accounts.db_roles import UnsafeAppRole, app_role_grants, grant_app_role


class Command(BaseCommand):
    help = "Grant the portal's PostgreSQL role its privileges; the audit table read and append."

    def add_arguments(self, parser) -> None:
        parser.add_argument("app_role", help="the role the portal connects as (DATABASE_URL)")
        parser.add_argument("--database", default="default")
        parser.add_argument(
            "--sql", action="store_true", help="print the statements instead of running them"
        )
        parser.add_argument(
            "--owner", help="with --sql: the owner role (default: the role connected now)"
        )

    def handle(self, *args, app_role: str, database: str, sql: bool, owner: str | None, **opts):
        connection = connections[database]
        if sql:
            owner = owner or connection.settings_dict.get("USER") or "portal_owner"
            for statement in app_role_grants(app_role=app_role, owner_role=owner):
                self.stdout.write(statement + ";")
            return
        if connection.vendor != "postgresql":
            raise CommandError(
                "Roles are a PostgreSQL matter; on SQLite the audit trail is protected by the "
                "application only (README)."
            )
        try:
            statements = grant_app_role(connection, app_role=app_role)
        except UnsafeAppRole as unsafe:
            raise CommandError(str(unsafe)) from None
        self.stdout.write(f"Granted {app_role}: {len(statements)} statements.")

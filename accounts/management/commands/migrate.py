"""`manage.py migrate`, run as the database's owner when DATABASE_MIGRATE_URL names one.

The portal itself connects with DATABASE_URL as a role that owns nothing (accounts.db_roles,
docs/deployment.md). Migrations need the owner: this command logs in with the owner's
credentials from DATABASE_MIGRATE_URL (same database), migrates, and then grants the portal's
role its privileges again, so a table a migration adds is usable and the audit table stays
append-only. Without DATABASE_MIGRATE_URL it is Django's migrate, unchanged (SQLite, the tests).
"""

from __future__ import annotations

import dj_database_url
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from accounts.db_roles import UnsafeAppRole, grant_app_role

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


class Command(DjangoMigrate):
    help = DjangoMigrate.help + (
        " With DATABASE_MIGRATE_URL set, runs as that (owner) role and then grants the "
        "portal's DATABASE_URL role its privileges (docs/deployment.md)."
    )

    def handle(self, *args, **options):
        owner_url = getattr(settings, "DATABASE_MIGRATE_URL", "")
        if not owner_url:
            return super().handle(*args, **options)
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("DATABASE_MIGRATE_URL is for PostgreSQL only; unset it for SQLite.")
        owner = dj_database_url.parse(owner_url)
        configured = settings.DATABASES[options["database"]]["NAME"]
        if owner["NAME"] != configured:
            raise CommandError(
                f"DATABASE_MIGRATE_URL names database {owner['NAME']!r} but DATABASE_URL names "
                f"{configured!r}: they must be the same database, as two roles."
            )
        app_role = connection.settings_dict["USER"]
        portal = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
        connection.close()
        # Same database (the test runner may have renamed it), the owner's log-in.
        connection.settings_dict.update({key: owner.get(key) for key in CREDENTIALS})
        try:
            result = super().handle(*args, **options)
            try:
                grant_app_role(connection, app_role=app_role)
            except UnsafeAppRole as unsafe:
                raise CommandError(str(unsafe)) from None
            if options["verbosity"] >= 1:
                self.stdout.write(
                    f"Granted the portal's role {app_role} its privileges (the audit trail: "
                    "read and append only)."
                )
        finally:
            connection.close()
            connection.settings_dict.update(portal)
        return result

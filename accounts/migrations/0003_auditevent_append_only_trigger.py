"""A database-level guard for the audit trail: on PostgreSQL a trigger rejects UPDATE and DELETE
of audit rows, so not even raw SQL from the application role can rewrite history.

One exception: unlinking a deleted user or clinic (Django's on_delete=SET_NULL) may set
user_id/clinic_id to NULL; every other column, including the copied e-mail, must stay as it was.
TRUNCATE, ALTER TABLE ... DISABLE TRIGGER and session_replication_role are not a trigger's to
stop: the portal's production role owns nothing and holds no TRUNCATE (accounts.db_roles,
docs/deployment.md), while the test runner, as the owner, still empties tables with TRUNCATE.
SQLite has no such triggers here; the model and its queryset refuse updates there.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION accounts_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.user_id IS NULL OR NEW.user_id IS NOT DISTINCT FROM OLD.user_id)
       AND (NEW.clinic_id IS NULL OR NEW.clinic_id IS NOT DISTINCT FROM OLD.clinic_id)
       AND (NEW.id, NEW.at, NEW.user_email, NEW.role, NEW.action, NEW.object_type,
            NEW.object_id, NEW.patient_id, NEW.ip_address, NEW.user_agent, NEW.detail::text)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.user_email, OLD.role, OLD.action, OLD.object_type,
            OLD.object_id, OLD.patient_id, OLD.ip_address, OLD.user_agent, OLD.detail::text)
    THEN
        RETURN NEW;
    END IF;
    -- No '%' placeholder here: the driver would take it for a query parameter.
    RAISE EXCEPTION USING
        MESSAGE = 'Audit events are append-only: ' || TG_OP || ' rejected',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS accounts_auditevent_append_only ON accounts_auditevent;
CREATE TRIGGER accounts_auditevent_append_only
    BEFORE UPDATE OR DELETE ON accounts_auditevent
    FOR EACH ROW EXECUTE FUNCTION accounts_auditevent_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS accounts_auditevent_append_only ON accounts_auditevent;
DROP FUNCTION IF EXISTS accounts_auditevent_append_only();
"""


def create_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_audit_event"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger, elidable=False),
    ]

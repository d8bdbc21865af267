"""The same lock as 0003 for SQLite (development and the default test database): any UPDATE
of a signed review is refused by the database itself."""

from django.db import migrations

CREATE = """
CREATE TRIGGER IF NOT EXISTS diagnosis_review_locked
BEFORE UPDATE ON diagnosis_review
FOR EACH ROW WHEN OLD.signed_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'review is signed and locked; amend it instead');
END;
"""

DROP = "DROP TRIGGER IF EXISTS diagnosis_review_locked;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0003_review_lock_trigger")]

    operations = [migrations.RunPython(forwards, backwards)]

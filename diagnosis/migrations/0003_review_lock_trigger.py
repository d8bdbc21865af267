"""On PostgreSQL, refuse any UPDATE of a signed review, whoever issues it (the ORM, a shell, a
bulk .update()). Deletes stay possible: erasing a patient removes their reviews with them."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION diagnosis_review_refuse_signed_update() RETURNS trigger AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION 'review % is signed and locked; amend it instead', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS diagnosis_review_locked ON diagnosis_review;
CREATE TRIGGER diagnosis_review_locked BEFORE UPDATE ON diagnosis_review
    FOR EACH ROW EXECUTE FUNCTION diagnosis_review_refuse_signed_update();
"""

DROP = """
DROP TRIGGER IF EXISTS diagnosis_review_locked ON diagnosis_review;
DROP FUNCTION IF EXISTS diagnosis_review_refuse_signed_update();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0002_review_histopathology")]

    operations = [migrations.RunPython(forwards, backwards)]

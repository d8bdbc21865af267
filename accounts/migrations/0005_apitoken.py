"""API tokens stored hashed (issue 11): django-rest-knox's token model, with an expiry on every
token, who issued it and when it was last used.

The plain-text tokens of DRF's authtoken table are revoked, not copied: their keys are in every
database backup taken so far, and a hash of a leaked key protects nothing. Each revocation is an
audit event naming the account, so a clinic admin can see whose token to issue again; a client
still sending an old key is told why it is refused (accounts.authentication). The table itself
is left (empty) for DRF's app, which the portal no longer installs.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

REASON = "API tokens are now stored hashed; plain-text tokens were revoked. Issue a new one."


def revoke_plain_text_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return  # a database that never had DRF's tokens
    User = apps.get_model("accounts", "User")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id FROM authtoken_token")
        user_ids = [row[0] for row in cursor.fetchall()]
        for account in User.objects.filter(pk__in=user_ids).order_by("pk"):
            AuditEvent.objects.create(
                action="api_token.revoke",
                clinic_id=account.clinic_id,
                object_type="user",
                object_id=str(account.pk),
                detail={"reason": REASON},
            )
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_one_email_address_per_account"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("digest", models.CharField(max_length=128, primary_key=True, serialize=False)),
                ("token_key", models.CharField(db_index=True, max_length=25)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("expiry", models.DateTimeField()),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "issued_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="auth_token_set",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "API token",
                "ordering": ["-created"],
            },
        ),
        migrations.RunPython(revoke_plain_text_tokens, migrations.RunPython.noop),
    ]

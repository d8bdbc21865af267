"""One e-mail address per account (issue 11): allauth's EmailAddress table keeps only each
account's own address (User.email), verified and primary, and two accounts may not differ in
the case of their address alone.

Self-service e-mail management let anyone attach any address to their account, another clinic's
doctor's included, and sign in or reset a password by it. The addresses it attached are removed
here, each with an audit event naming the account and the address, so an auditor can see who
had attached what. If two accounts differ only in the case of their address, adding the
constraint fails: a clinic admin must give one of them another address first.
"""

from django.db import migrations, models
from django.db.models.functions import Lower

REASON = "Addresses are no longer self-service; only the account's own address is kept."


def one_address_per_account(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    for address in EmailAddress.objects.select_related("user").order_by("pk").iterator():
        account = address.user
        if address.email.lower() == account.email.strip().lower():
            continue
        AuditEvent.objects.create(
            action="email.remove",
            clinic_id=account.clinic_id,
            object_type="user",
            object_id=str(account.pk),
            detail={"email": address.email, "verified": address.verified, "reason": REASON},
        )
        address.delete()
    for account in User.objects.order_by("pk").iterator():
        email = account.email.strip().lower()
        kept = EmailAddress.objects.filter(user_id=account.pk, email=email)
        if not kept.update(verified=True, primary=True):
            EmailAddress.objects.filter(user_id=account.pk, primary=True).update(primary=False)
            EmailAddress.objects.create(user_id=account.pk, email=email, verified=True, primary=True)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_auditevent_append_only_trigger"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [
        migrations.RunPython(one_address_per_account, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                Lower("email"),
                name="user_email_unique_ignoring_case",
                violation_error_message="You cannot use this address; choose another.",
            ),
        ),
    ]

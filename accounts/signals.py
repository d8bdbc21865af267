"""Security-relevant account events on the audit trail: log-in, failed log-in, log-out and
changes of a user's role, clinic or privileges (MFA enrolment changes: accounts.mfa); and each
account's one e-mail address in allauth's table.

Connected in AccountsConfig.ready(). Signals carry no request for model saves, so a caller that
knows who made a change (the admin) leaves it on the instance as `_audit_request`.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.audit import audit_record
from accounts.models import User

# The session key holding when this log-in happened (the absolute session timeout's clock).
SESSION_LOGIN_AT = "_portal_login_at"
# Set on the request by accounts.sso for a sign-in through a clinic's identity provider.
SSO_REQUEST_ATTRIBUTE = "_portal_sso"
# In the session: the sign-in's second factor was the provider's (accounts.mfa reads it).
SESSION_MFA_BY_PROVIDER = "_portal_mfa_by_provider"
# The fields whose change alters what a user may see or do.
PRIVILEGE_FIELDS = ("role", "clinic_id", "is_staff", "is_superuser", "is_active")


@receiver(user_logged_in, dispatch_uid="audit_login")
def _on_login(sender, request, user: User, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_LOGIN_AT] = time.time()
    # A sign-in through the clinic's identity provider says so (accounts.sso).
    sso = getattr(request, SSO_REQUEST_ATTRIBUTE, None)
    if sso is not None and hasattr(request, "session"):
        request.session[SESSION_MFA_BY_PROVIDER] = bool(sso.get("mfa_by_provider"))
    audit_record(action="login", user=user, request=request, **({"sso": sso} if sso else {}))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _on_login_failed(sender, credentials: dict, request=None, **kwargs: Any) -> None:
    # Django has already masked the password; the identifier is all we keep.
    identifier = str(credentials.get("email") or credentials.get("username") or "")[:254]
    user = User.objects.filter(email__iexact=identifier).first() if identifier else None
    audit_record(action="login.failed", user=user, request=request, email=identifier)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _on_logout(sender, request, user: User | None, **kwargs: Any) -> None:
    if user is None:
        return  # a logout of an anonymous session: nothing happened
    audit_record(
        action="logout",
        user=user,
        request=request,
        reason=getattr(request, "_logout_reason", "user"),
    )


@receiver(pre_save, sender=User, dispatch_uid="audit_user_privileges_before")
def _remember_privileges(sender, instance: User, **kwargs: Any) -> None:
    if instance.pk is None or kwargs.get("raw"):
        instance._audit_before = None
        return
    before = User.objects.filter(pk=instance.pk).values(*PRIVILEGE_FIELDS, "password").first()
    # The hash, kept apart and never audited: only whether it changed matters (accounts.
    # services.jwt_tokens revokes API clients' sign-ins on a password change).
    instance._password_before = before.pop("password") if before else None
    instance._audit_before = before


@receiver(post_save, sender=User, dispatch_uid="audit_user_privileges_after")
def _record_privilege_change(sender, instance: User, created: bool, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    request = getattr(instance, "_audit_request", None)
    # Who or what made the change, where it was not a person's request (accounts.sso).
    extra = getattr(instance, "_audit_detail", None) or {}
    after = {field: getattr(instance, field) for field in PRIVILEGE_FIELDS}
    if created:
        audit_record(action="user.create", request=request, obj=instance, privileges=after, **extra)
        return
    before = getattr(instance, "_audit_before", None) or {}
    changed = {f: [before.get(f), after[f]] for f in PRIVILEGE_FIELDS if before.get(f) != after[f]}
    if before and changed:
        audit_record(
            action="user.role_change", request=request, obj=instance, changes=changed, **extra
        )
    _revoke_api_sign_ins(instance, before, changed, request)


def _revoke_api_sign_ins(instance: User, before: dict, changed: dict, request) -> None:
    """An API client's JWT sign-in ends when its account is deactivated, its password changes
    or its role, clinic or privileges change: whatever the token was issued for no longer
    holds (accounts.services.jwt_tokens)."""
    from accounts.services.jwt_tokens import jwt_revoke_all

    if not before:
        return
    reason = None
    if "is_active" in changed and not instance.is_active:
        reason = "deactivated"
    elif changed:
        reason = "role_change"
    elif getattr(instance, "_password_before", None) not in (None, instance.password):
        reason = "password_change"
    if reason is not None:
        actor = request.user if request is not None and request.user.is_authenticated else None
        jwt_revoke_all(user=instance, reason=reason, actor=actor, request=request)


@receiver(post_save, sender=User, dispatch_uid="one_email_address_per_account")
def _keep_one_email_address(sender, instance: User, **kwargs: Any) -> None:
    """allauth's EmailAddress table holds exactly the account's own address, verified and
    primary, and nothing else: whoever saves a user (a clinic admin's service, the Django
    admin, a management command), allauth never sees a second address for it. Addresses are
    not self-service (accounts.sign_in); a clinic admin changes them (user_change_email)."""
    if kwargs.get("raw"):
        return
    email = instance.email.strip().lower()
    addresses = EmailAddress.objects.filter(user=instance)
    addresses.exclude(email=email).delete()
    if not addresses.filter(email=email).update(verified=True, primary=True):
        EmailAddress.objects.create(user=instance, email=email, verified=True, primary=True)

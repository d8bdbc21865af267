"""A clinic admin's writes to their clinic's accounts: create, change role or e-mail address,
deactivate, unlock.

There is no open sign-up. A new account has no usable password; its owner receives an email
with a one-time link to set one (allauth's password-reset key, so the same expiry and the same
form as a forgotten password).

An account has one e-mail address, used to sign in and for password resets; people do not
manage their own (accounts.sign_in), a clinic admin changes it here. An address that cannot be
used gets the same answer whatever the reason, so an admin of one clinic cannot learn who
works at another.
"""

from __future__ import annotations

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse

from accounts import lockout
from accounts.audit import audit_record, audited_write
from accounts.models import Role, User
from accounts.permissions import require_role, require_same_clinic
from accounts.selectors.users import email_in_use

# One answer for every reason an address cannot be used (another clinic's, this clinic's,
# a deactivated account's): which one it is would tell who works where.
EMAIL_UNAVAILABLE = "You cannot use this address; choose another."


def set_password_link(*, user: User, request: HttpRequest | None = None) -> str:
    """The one-time set-password URL for `user` (absolute when a request is given)."""
    path = reverse(
        "account_reset_password_from_key",
        kwargs={
            "uidb36": user_pk_to_url_str(user),
            "key": default_token_generator.make_token(user),
        },
    )
    return request.build_absolute_uri(path) if request is not None else path


def send_set_password_email(*, user: User, request: HttpRequest | None = None) -> None:
    link = set_password_link(user=user, request=request)
    clinic = user.clinic.name if user.clinic_id else "Melanoma Portal"
    send_mail(
        subject=f"Your Melanoma Portal account at {clinic}",
        message=(
            f"Hello {user.get_full_name()},\n\n"
            f"An account was created for you at {clinic} ({user.get_role_display()}).\n"
            f"Choose your password here (the link works once):\n\n{link}\n\n"
            f"Then sign in with this email address: {user.email}\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def user_create(
    *, actor: User, email: str, full_name: str, role: str, request: HttpRequest | None = None
) -> User:
    """Create an account in the actor's clinic and email its owner a set-password link."""
    require_role(actor, Role.ADMIN)
    if role not in Role.values:
        raise ValidationError({"role": "Choose a role."})
    email = User.objects.normalize_email(email).strip().lower()
    if email_in_use(email):
        raise ValidationError({"email": EMAIL_UNAVAILABLE})
    try:
        with transaction.atomic():
            user = User(email=email, full_name=full_name, clinic=actor.clinic, role=role)
            user.set_unusable_password()
            user._audit_request = request  # accounts.signals records who created it
            user.save()
    except IntegrityError:
        raise ValidationError({"email": EMAIL_UNAVAILABLE}) from None
    send_set_password_email(user=user, request=request)
    return user


def _require_manageable(actor: User, user: User) -> None:
    require_role(actor, Role.ADMIN)
    require_same_clinic(actor, user.clinic_id)
    if user.pk == actor.pk:
        # A clinic could otherwise lock out its last admin; another admin can do it.
        raise PermissionDenied("You cannot change your own role or deactivate yourself.")


def user_set_role(
    *, actor: User, user: User, role: str, full_name: str | None = None, request=None
) -> User:
    _require_manageable(actor, user)
    if role not in Role.values:
        raise ValidationError({"role": "Choose a role."})
    user.role = role
    fields = ["role"]
    if full_name is not None:
        user.full_name = full_name
        fields.append("full_name")
    # accounts.signals puts the change of role (with before and after) on the audit trail.
    user._audit_request = request
    user.save(update_fields=fields)
    return user


def user_deactivate(*, actor: User, user: User, request=None) -> User:
    """Stop an account signing in; its records and audit trail stay."""
    _require_manageable(actor, user)
    user.is_active = False
    user._audit_request = request  # audited by accounts.signals as a privilege change
    user.save(update_fields=["is_active"])
    return user


def user_reactivate(*, actor: User, user: User, request=None) -> User:
    _require_manageable(actor, user)
    user.is_active = True
    user._audit_request = request
    user.save(update_fields=["is_active"])
    return user


def _require_account_manager(actor: User, user: User) -> None:
    """A clinic admin manages their own clinic's accounts; a superuser (the Django admin) any."""
    if actor.is_authenticated and actor.is_active and actor.is_superuser:
        return
    require_role(actor, Role.ADMIN)
    require_same_clinic(actor, user.clinic_id)


@audited_write("user.unlock")
def user_unlock(*, actor: User, user: User, request: HttpRequest | None = None) -> User:
    """Lift the lock-out of an account after too many failed sign-ins (its password and
    authenticator-code counters). Throttles on client addresses stay: they expire by themselves."""
    _require_account_manager(actor, user)
    with transaction.atomic():
        audit_record(
            action="user.unlock",
            user=actor,
            request=request,
            obj=user,
            was_locked=lockout.locked_for(user.email) is not None,
        )
        lockout.clear_account(email=user.email, user_pk=user.pk)
    return user


@audited_write("user.email_change")
def user_change_email(
    *, actor: User, user: User, email: str, request: HttpRequest | None = None
) -> User:
    """Give an account a new address to sign in with and receive password resets at. The old
    address is told (a change nobody asked for must not go unnoticed); reset links already
    sent stop working, as allauth's keys depend on the address."""
    _require_account_manager(actor, user)
    email = User.objects.normalize_email(email).strip().lower()
    old = user.email
    if email == old.lower():
        raise ValidationError({"email": "This is already the account's address."})
    if email_in_use(email, except_user_id=user.pk):
        raise ValidationError({"email": EMAIL_UNAVAILABLE})
    try:
        with transaction.atomic():
            user.email = email
            # accounts.signals replaces the account's address in allauth's table with this one.
            user.save(update_fields=["email"])
            audit_record(
                action="user.email_change",
                user=actor,
                request=request,
                obj=user,
                old=old,
                new=email,
            )
    except IntegrityError:
        user.email = old
        raise ValidationError({"email": EMAIL_UNAVAILABLE}) from None
    send_mail(
        subject="Your Melanoma Portal sign-in address was changed",
        message=(
            f"Hello {user.get_full_name()},\n\n"
            f"{actor.get_full_name()} changed the address you sign in to Melanoma Portal with "
            f"from {old} to {email}. If you did not expect this, tell your clinic's "
            f"administrator.\n"
        ),
        from_email=None,
        recipient_list=[old],
    )
    return user

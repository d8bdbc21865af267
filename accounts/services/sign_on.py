"""Hospital sign-in with OpenID Connect: a clinic's provider configuration, and whom a sign-in
through it lets in (accounts.sso hands allauth's answer to `sso_sign_in_resolve`).

The provider proves who a person is; the portal alone decides what that person may do here:

- a sign-in maps to an existing, active account *of the provider's clinic* by the verified
  e-mail address the provider reports, in one of the clinic's allowed domains; anyone else is
  refused with one message (no self-registration), unless the clinic switched on creating
  unknown people as clinic staff;
- the role comes from the provider only when the clinic maps a claim to roles; the clinic never
  does: a provider of clinic A can sign nobody into clinic B;
- the per-account lock-out and deactivation hold as for a password;
- a clinic may declare that its provider enforces two-factor authentication; the `amr` claim,
  when present, must then show it, otherwise the portal's own authenticator code still applies.

The client secret is stored Fernet-encrypted (settings.OIDC_SECRET_KEYS, or a key derived from
DJANGO_SECRET_KEY), or given to the server in the environment and never stored.
"""

from __future__ import annotations

import base64
import math
import os
import time
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts import lockout
from accounts.audit import audit_record, audited_write
from accounts.models import Clinic, ClinicSignOn, Role, User
from accounts.permissions import require_role
from accounts.selectors.users import email_in_use

SECRET_SALT = "accounts.sso.client-secret"  # noqa: S105 - a salt name, not a secret
# Order of privilege, for a person in several mapped groups: the most privileged mapping wins,
# as it would in the hospital's own group model.
ROLE_PRECEDENCE = (Role.ADMIN, Role.DOCTOR, Role.STAFF)


# --- the client secret ------------------------------------------------------------------------


def _fernet() -> MultiFernet:
    configured = [k.strip() for k in settings.OIDC_SECRET_KEYS.split(",") if k.strip()]
    if configured:
        return MultiFernet([Fernet(key.encode()) for key in configured])
    # Derived from the secret key and its fallbacks, so a rotation with SECRET_KEY_FALLBACKS
    # still decrypts what the old key encrypted.
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    keys = [
        base64.urlsafe_b64encode(
            salted_hmac(SECRET_SALT, "fernet", secret=s, algorithm="sha256").digest()
        )
        for s in secrets
    ]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def secret_env_name(clinic_id: int) -> str:
    return f"PORTAL_OIDC_SECRET_CLINIC_{clinic_id}"


def client_secret_for(sign_on: ClinicSignOn) -> str:
    """The secret to send to the provider: the environment's, else the stored one decrypted."""
    from_env = os.environ.get(secret_env_name(sign_on.clinic_id), "")
    if from_env:
        return from_env
    if not sign_on.client_secret_encrypted:
        return ""
    try:
        return _fernet().decrypt(sign_on.client_secret_encrypted.encode()).decode()
    except InvalidToken:
        # The key changed since it was stored: the provider will refuse the empty secret, and
        # the error page asks for it to be entered again.
        return ""


# --- configuration ------------------------------------------------------------------------------


def _clean_domains(domains: list[str] | str) -> list[str]:
    if isinstance(domains, str):
        domains = domains.replace(",", " ").split()
    cleaned = sorted({d.strip().lower().lstrip("@") for d in domains if d.strip()})
    for domain in cleaned:
        if "." not in domain or "@" in domain or "/" in domain:
            raise ValidationError({"allowed_email_domains": f"{domain} is not a domain name."})
    return cleaned


def _clean_role_values(values: dict[str, str]) -> dict[str, str]:
    for claim_value, role in values.items():
        if role not in Role.values:
            raise ValidationError(
                {"role_claim_values": f"{claim_value}: {role} is not a role of the portal."}
            )
    return dict(values)


def _require_configurer(actor: User, clinic: Clinic) -> None:
    """A clinic admin of this clinic, or a superuser (who reaches it through the Django admin)."""
    if actor.is_authenticated and actor.is_active and actor.is_superuser:
        return
    require_role(actor, Role.ADMIN)
    if actor.clinic_id != clinic.pk:
        raise PermissionDenied("This clinic's sign-in belongs to another clinic's admin.")


@audited_write("sign_on.configure")
def clinic_sign_on_save(
    *,
    actor: User,
    clinic: Clinic,
    display_name: str,
    issuer: str,
    client_id: str,
    client_secret: str | None = None,
    allowed_email_domains: list[str] | str = (),
    enabled: bool = False,
    create_unknown_as_staff: bool = False,
    provider_enforces_mfa: bool = False,
    role_claim: str = "",
    role_claim_values: dict[str, str] | None = None,
    request: HttpRequest | None = None,
) -> ClinicSignOn:
    """Create or change the clinic's identity provider. `client_secret` None keeps the stored
    one. The secret itself never reaches the audit trail; that it changed does."""
    _require_configurer(actor, clinic)
    domains = _clean_domains(allowed_email_domains)
    role_values = _clean_role_values(role_claim_values or {})
    issuer = issuer.strip().rstrip("/")
    if enabled and not domains:
        raise ValidationError(
            {"allowed_email_domains": "Name at least one e-mail domain the provider may sign in."}
        )
    if not issuer.startswith("https://") and not settings.DEBUG and not _is_loopback(issuer):
        raise ValidationError({"issuer": "The issuer URL must start with https://."})
    if role_claim and not role_values:
        raise ValidationError(
            {"role_claim_values": "Map at least one value of the claim to a role."}
        )
    with transaction.atomic():
        sign_on = ClinicSignOn.objects.select_for_update().filter(clinic=clinic).first()
        created = sign_on is None
        sign_on = sign_on or ClinicSignOn(clinic=clinic)
        provider_changed = not created and (sign_on.issuer, sign_on.client_id) != (
            issuer,
            client_id.strip(),
        )
        sign_on.display_name = display_name.strip()
        sign_on.issuer = issuer
        sign_on.client_id = client_id.strip()
        if client_secret is not None:
            sign_on.client_secret_encrypted = encrypt_secret(client_secret)
        sign_on.allowed_email_domains = domains
        sign_on.enabled = enabled
        sign_on.create_unknown_as_staff = create_unknown_as_staff
        sign_on.provider_enforces_mfa = provider_enforces_mfa
        sign_on.role_claim = role_claim.strip()
        sign_on.role_claim_values = role_values if sign_on.role_claim else {}
        if provider_changed or not enabled:
            # Another provider must prove itself before local passwords can go again.
            sign_on.first_sign_in_at = None
            sign_on.local_passwords_disabled = False
        sign_on.full_clean(exclude=["clinic"])
        sign_on.save()
        audit_record(
            action="sign_on.configure",
            user=actor,
            request=request,
            obj=clinic,
            created=created,
            enabled=enabled,
            issuer=issuer,
            client_id=sign_on.client_id,
            secret_changed=client_secret is not None,
            allowed_email_domains=domains,
            create_unknown_as_staff=create_unknown_as_staff,
            provider_enforces_mfa=provider_enforces_mfa,
            role_claim=sign_on.role_claim,
            role_claim_values=sign_on.role_claim_values,
        )
    return sign_on


def _is_loopback(url: str) -> bool:
    return url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:"))


@audited_write("sign_on.local_passwords")
def clinic_local_passwords_set(
    *, actor: User, clinic: Clinic, allowed: bool, request: HttpRequest | None = None
) -> ClinicSignOn:
    """Switch the clinic's local passwords off (everyone signs in at the hospital) or back on.
    Off only once a sign-in through the provider has worked. Superusers keep their password:
    they repair a clinic whose provider broke."""
    _require_configurer(actor, clinic)
    with transaction.atomic():
        sign_on = ClinicSignOn.objects.select_for_update().filter(clinic=clinic).first()
        if not allowed and (
            sign_on is None or not sign_on.enabled or sign_on.first_sign_in_at is None
        ):
            raise ValidationError(
                "Local passwords can be switched off once someone of the clinic has signed in "
                "through the hospital's identity provider."
            )
        if sign_on is None:
            raise ValidationError("This clinic has no hospital sign-in.")
        sign_on.local_passwords_disabled = not allowed
        sign_on.save(update_fields=["local_passwords_disabled", "updated_at"])
        audit_record(
            action="sign_on.local_passwords",
            user=actor,
            request=request,
            obj=clinic,
            allowed=allowed,
        )
    if not allowed:
        # Apps that signed in with a password lose that sign-in too.
        from accounts.services.jwt_tokens import jwt_revoke_all

        for account in User.objects.filter(clinic=clinic, is_active=True):
            jwt_revoke_all(user=account, reason="local_passwords_off", actor=actor, request=request)
    return sign_on


# --- signing in ---------------------------------------------------------------------------------


class SignOnRefused(Exception):
    """A sign-in through the provider that the portal refuses: `reason` for the audit trail,
    `message` for the person."""

    def __init__(self, reason: str, message: str, **detail) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail


UNKNOWN_PERSON = (
    "Your hospital account is not known to this clinic's portal. Ask your clinic's "
    "administrator to create a portal account for your e-mail address; then sign in again."
)


@dataclass(frozen=True)
class SignIn:
    user: User
    # True when the clinic declared that its provider enforces two-factor authentication and
    # the sign-in's `amr` (when present) shows it: the portal asks for no code of its own.
    mfa_by_provider: bool
    email: str
    amr: list[str] | None = None
    created: bool = False
    role_mapped: str = ""
    claims_used: dict = field(default_factory=dict)


def amr_shows_mfa(amr: list[str]) -> bool:
    """RFC 8176: 'mfa' says so; two different methods (pwd + otp, hwk + pin...) are two factors."""
    return "mfa" in amr or len(set(amr)) >= 2


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _email_and_verified(id_token: dict, userinfo: dict) -> tuple[str, bool]:
    for claims in (userinfo, id_token):
        email = claims.get("email")
        if isinstance(email, str) and email.strip():
            return email.strip().lower(), _truthy(claims.get("email_verified"))
    return "", False


def _check_clock(id_token: dict) -> None:
    issued = id_token.get("iat")
    if not isinstance(issued, int | float):
        return
    skew = issued - time.time()
    if abs(skew) > settings.OIDC_MAX_CLOCK_SKEW_S:
        direction = "ahead of" if skew > 0 else "behind"
        raise SignOnRefused(
            "clock_skew",
            f"The hospital's identity provider's clock is {abs(skew) / 60:.0f} minutes "
            f"{direction} the portal's, so its sign-in cannot be trusted. Ask your IT "
            "department to set the provider's clock (NTP); the portal allows "
            f"{settings.OIDC_MAX_CLOCK_SKEW_S} seconds.",
            skew_s=round(skew),
        )


def _mapped_role(sign_on: ClinicSignOn, id_token: dict, userinfo: dict) -> str:
    raw = userinfo.get(sign_on.role_claim, id_token.get(sign_on.role_claim))
    values = [raw] if isinstance(raw, str) else list(raw or [])
    roles = {sign_on.role_claim_values[v] for v in values if v in sign_on.role_claim_values}
    for role in ROLE_PRECEDENCE:
        if role in roles:
            return role
    raise SignOnRefused(
        "no_role",
        "Your hospital account is in none of the groups this clinic admits to the portal; ask "
        "your clinic's administrator.",
        claim=sign_on.role_claim,
    )


def sso_sign_in_resolve(
    *, sign_on: ClinicSignOn, id_token: dict, userinfo: dict, request: HttpRequest | None = None
) -> SignIn:
    """The account of `sign_on`'s clinic that this sign-in is, or SignOnRefused saying why not.
    Creates the account (as clinic staff, or the mapped role) only when the clinic allows it,
    and sets the mapped role when the clinic maps one; both audited (accounts.signals)."""
    _check_clock(id_token)
    email, verified = _email_and_verified(id_token, userinfo)
    if not email:
        raise SignOnRefused(
            "no_email",
            "The hospital's identity provider did not tell the portal your e-mail address. Ask "
            "your IT department to release the `email` claim (scope `email`) to the portal.",
        )
    if not verified:
        raise SignOnRefused(
            "email_unverified",
            "The hospital's identity provider does not vouch for your e-mail address "
            "(email_verified is not true), so the portal cannot match it to an account.",
            email=email,
        )
    domain = email.rpartition("@")[2]
    if domain not in sign_on.allowed_email_domains:
        raise SignOnRefused(
            "domain",
            f"Addresses at {domain} may not sign in to this clinic through its hospital "
            "sign-in. Ask your clinic's administrator.",
            email=email,
        )
    role = _mapped_role(sign_on, id_token, userinfo) if sign_on.role_claim else ""
    user = User.objects.filter(email__iexact=email, clinic_id=sign_on.clinic_id).first()
    created = False
    if user is None:
        # Whether the address belongs to another clinic's account is nobody's business here:
        # the same answer as for an unknown person.
        if not sign_on.create_unknown_as_staff or email_in_use(email):
            raise SignOnRefused("unknown", UNKNOWN_PERSON, email=email)
        user = _create_account(
            sign_on=sign_on,
            email=email,
            full_name=str(userinfo.get("name") or id_token.get("name") or "")[:200],
            role=role or Role.STAFF,
            request=request,
        )
        created = True
    if not user.is_active:
        raise SignOnRefused(
            "deactivated",
            "Your portal account is deactivated; ask your clinic's administrator.",
            email=email,
        )
    wait = lockout.locked_for(user.email)
    if wait is not None:
        minutes = max(1, math.ceil(wait / 60))
        raise SignOnRefused(
            "locked",
            f"Too many failed sign-ins for this account; try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}, or ask your clinic's administrator to unlock it.",
            email=email,
        )
    if role and user.role != role:
        user.role = role
        user._audit_request = request  # accounts.signals records the change, before and after
        user._audit_detail = {"by": f"sso:{sign_on.provider_id}", "claim": sign_on.role_claim}
        user.save(update_fields=["role"])
    amr = id_token.get("amr")
    amr = [str(method) for method in amr] if isinstance(amr, list) else None
    mfa_by_provider = sign_on.provider_enforces_mfa and (amr is None or amr_shows_mfa(amr))
    if sign_on.first_sign_in_at is None:
        ClinicSignOn.objects.filter(pk=sign_on.pk, first_sign_in_at__isnull=True).update(
            first_sign_in_at=timezone.now()
        )
    return SignIn(
        user=user,
        mfa_by_provider=mfa_by_provider,
        email=email,
        amr=amr,
        created=created,
        role_mapped=role,
    )


def _create_account(
    *, sign_on: ClinicSignOn, email: str, full_name: str, role: str, request
) -> User:
    """Just-in-time creation, when the clinic allows it: an account of the provider's clinic,
    with no password (it signs in at the hospital). accounts.signals audits it."""
    try:
        with transaction.atomic():
            user = User(email=email, full_name=full_name, clinic=sign_on.clinic, role=role)
            user.set_unusable_password()
            user._audit_request = request
            user._audit_detail = {"by": f"sso:{sign_on.provider_id}"}
            user.save()
    except IntegrityError:
        raise SignOnRefused("unknown", UNKNOWN_PERSON, email=email) from None
    return user

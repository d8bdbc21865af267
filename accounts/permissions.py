"""Who may do what. One place, so views, the API and services ask the same question."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from accounts.models import Role, User


def is_clinic_member(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.clinic_id and user.role)


def require_clinic_member(user: User) -> None:
    if not is_clinic_member(user):
        raise PermissionDenied("Only members of a clinic can do this.")


def require_role(user: User, *roles: str) -> None:
    """Raise PermissionDenied unless the user is a clinic member with one of `roles`."""
    require_clinic_member(user)
    if user.role not in roles:
        names = ", ".join(Role(role).label.lower() for role in roles)
        raise PermissionDenied(f"Only a {names} can do this.")


def require_same_clinic(user: User, clinic_id: int) -> None:
    require_clinic_member(user)
    if user.clinic_id != clinic_id:
        raise PermissionDenied("This record belongs to another clinic.")


CLINICAL_ROLES = (Role.ADMIN, Role.DOCTOR, Role.STAFF)

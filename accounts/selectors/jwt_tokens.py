"""Reads of API clients' JWT sign-ins (accounts.RefreshTokenFamily)."""

from __future__ import annotations

import uuid

from accounts.models import RefreshTokenFamily


def family_get(family_id: object, *, for_update: bool = False) -> RefreshTokenFamily | None:
    """The family a token names (claim `fam`), with its user; None for a missing or malformed
    id. `for_update` locks the row (inside the caller's transaction)."""
    try:
        pk = uuid.UUID(str(family_id))
    except ValueError:
        return None
    families = RefreshTokenFamily.objects.select_related("user")
    if for_update:
        families = families.select_for_update(of=("self",))
    return families.filter(pk=pk).first()


def family_refusal(family_id: object) -> str | None:
    """Why an access token of this family is refused, or None while the family is live (read
    by accounts.authentication.PortalJWTAuthentication on every request)."""
    family = family_get(family_id)
    if family is None:
        return "This access token belongs to no sign-in of this portal: sign in again."
    if family.revoked_at is not None:
        return family.ended_message
    return None

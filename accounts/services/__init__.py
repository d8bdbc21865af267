"""Writes to clinic accounts (`users`: create, change role or e-mail, deactivate, unlock), their
API tokens (`tokens`) and the clinic's settings (`clinic`), by a clinic admin."""

from accounts.services.clinic import clinic_set_referral_policy
from accounts.services.tokens import api_token_issue, api_token_list, api_token_revoke
from accounts.services.users import (
    send_set_password_email,
    set_password_link,
    user_change_email,
    user_create,
    user_deactivate,
    user_reactivate,
    user_set_role,
    user_unlock,
)

__all__ = [
    "api_token_issue",
    "api_token_list",
    "api_token_revoke",
    "clinic_set_referral_policy",
    "send_set_password_email",
    "set_password_link",
    "user_change_email",
    "user_create",
    "user_deactivate",
    "user_reactivate",
    "user_set_role",
    "user_unlock",
]

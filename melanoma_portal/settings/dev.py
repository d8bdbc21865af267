"""Local development: debug on, everything else from base's embedded defaults."""

from melanoma_portal.settings.base import *  # noqa: F403
from melanoma_portal.settings.base import env_bool, env_list

DEBUG = env_bool("DJANGO_DEBUG", True)
# As in production, doctors and clinic admins set up an authenticator app at their first
# log-in (load_demo and README say how to get through it without a phone: manage.py
# totp_code). MFA_REQUIRED_ROLES= (empty) turns it off for a quick look.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", "admin,doctor")

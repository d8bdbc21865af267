"""Local development: debug on, everything else from base's embedded defaults."""

from melanoma_portal.settings.base import *  # noqa: F403
from melanoma_portal.settings.base import env_bool, env_list

DEBUG = env_bool("DJANGO_DEBUG", True)
# The demo's doctors and admins log in without an authenticator app unless asked for.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", "")

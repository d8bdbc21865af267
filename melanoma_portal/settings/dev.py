"""Local development: debug on, everything else from base's embedded defaults."""

from melanoma_portal.settings.base import *  # noqa: F403
from melanoma_portal.settings.base import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)

"""What the model registry's commands share: who runs them (a superuser, named with --by, so
the audit trail says who), and the version named on the command line."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from accounts.models import User
from diagnosis.models import ModelVersion


def add_actor_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--by",
        required=True,
        metavar="EMAIL",
        help="the superuser account doing this (kept on the audit trail)",
    )


def actor(email: str) -> User:
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise CommandError(f"No account with the address {email}.")
    if not (user.is_active and user.is_superuser):
        raise CommandError(f"{email} is not an active superuser: only a superuser can do this.")
    return user


def model_version(name: str) -> ModelVersion:
    version = ModelVersion.objects.filter(version=name).first()
    if version is None:
        known = ", ".join(ModelVersion.objects.values_list("version", flat=True)) or "none"
        raise CommandError(f"No registered version {name!r} (registered: {known}).")
    return version


def refusal(error: Exception) -> CommandError:
    """A service's refusal as the command's error, in the service's words."""
    if isinstance(error, ValidationError):
        return CommandError(" ".join(error.messages))
    return CommandError(str(error))

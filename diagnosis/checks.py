"""System checks for how patient images are kept (registered in DiagnosisConfig.ready())."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

UNENCRYPTED_IMAGES = "diagnosis.W001"


@register(Tags.security, deploy=True)
def check_images_encrypted_at_rest(app_configs=None, **kwargs) -> list[Warning]:
    """`check --deploy` (and so every production deploy that runs it) warns when originals
    and heatmaps would be written to MEDIA_ROOT in the clear: neither IMAGE_ENCRYPTION_KEY nor
    an S3 bucket (server-side encrypted) is configured. A deployment whose disk is encrypted
    at the volume level says so by silencing this one check by its id, which keeps
    `check --deploy --fail-level WARNING` meaningful for everything else."""
    backend = settings.STORAGES["default"]["BACKEND"]
    if settings.IMAGE_ENCRYPTION_KEY or not backend.endswith("FileSystemStorage"):
        return []
    return [
        Warning(
            "IMAGE_ENCRYPTION_KEY is not set: patient images and heatmaps are stored "
            f"unencrypted in MEDIA_ROOT ({settings.MEDIA_ROOT}).",
            hint=(
                "Set IMAGE_ENCRYPTION_KEY to a Fernet key (docs/deployment.md). If the disk is "
                "encrypted at the volume level, say so with "
                f"DJANGO_SILENCED_SYSTEM_CHECKS={UNENCRYPTED_IMAGES}."
            ),
            id=UNENCRYPTED_IMAGES,
        )
    ]

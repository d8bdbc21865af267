"""Reads of lesions and their images, always scoped to the user's clinic."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from accounts.permissions import is_clinic_member
from diagnosis.models import DermoscopicImage, Lesion


def lesion_list(*, user: User) -> QuerySet[Lesion]:
    if not is_clinic_member(user):
        return Lesion.objects.none()
    return Lesion.objects.filter(patient__clinic_id=user.clinic_id).select_related("patient")


def lesion_get(*, user: User, lesion_id: int) -> Lesion:
    try:
        return lesion_list(user=user).get(pk=lesion_id)
    except Lesion.DoesNotExist:
        raise Http404("No such lesion.") from None


def image_get(*, user: User, image_id: int) -> DermoscopicImage:
    if not is_clinic_member(user):
        raise Http404("No such image.")
    try:
        return DermoscopicImage.objects.select_related("lesion__patient").get(
            pk=image_id, lesion__patient__clinic_id=user.clinic_id
        )
    except DermoscopicImage.DoesNotExist:
        raise Http404("No such image.") from None

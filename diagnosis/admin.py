"""Lesions, images, analyses, reviews, histology results and referrals in the Django admin, for
auditing diagnoses: read-only for everyone, scoped to the viewer's clinic, every view on the
audit trail (accounts.admin_site.ClinicScopedAdmin). Each record links to its page in the
portal, where the work is done through the audited services. Image files are never shown
here: the portal's image view checks the clinic and records the access."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_site import ClinicScopedAdmin
from diagnosis.models import (
    Analysis,
    DermoscopicImage,
    Histopathology,
    Lesion,
    Referral,
    Review,
)

FILE_FIELDS = ("file", "thumbnail", "heatmap_top", "heatmap_melanoma")


def _portal_link(url: str, text: str = "Open in the portal") -> str:
    return format_html('<a href="{}">{}</a>', url, text)


@admin.register(Lesion)
class LesionAdmin(ClinicScopedAdmin):
    clinic_lookup = "patient__clinic_id"
    list_display = ("id", "patient", "anatomic_site", "label", "created_at")
    list_filter = ("anatomic_site",)
    search_fields = ("patient__mrn", "patient__last_name", "label")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    exclude = ("created_by",)
    readonly_fields = ("portal", "created_at")

    @admin.display(description="Portal")
    def portal(self, lesion: Lesion) -> str:
        return _portal_link(reverse("patients:detail", args=[lesion.patient_id]))


@admin.register(DermoscopicImage)
class DermoscopicImageAdmin(ClinicScopedAdmin):
    clinic_lookup = "lesion__patient__clinic_id"
    list_display = ("id", "lesion", "content_type", "width", "height", "uploaded_at")
    list_select_related = ("lesion",)
    search_fields = ("lesion__patient__mrn", "original_filename")
    exclude = (*FILE_FIELDS, "uploaded_by", "submission_token")
    readonly_fields = ("uploaded_at", "original_deleted_at")


@admin.register(Analysis)
class AnalysisAdmin(ClinicScopedAdmin):
    clinic_lookup = "image__lesion__patient__clinic_id"
    list_display = ("id", "status", "top_class", "risk_tier", "model_version", "queued_at")
    list_filter = ("status", "risk_tier", "top_class", "model_version")
    search_fields = ("image__lesion__patient__mrn",)
    date_hierarchy = "queued_at"
    exclude = FILE_FIELDS
    readonly_fields = ("portal", "queued_at")

    @admin.display(description="Portal")
    def portal(self, analysis: Analysis) -> str:
        return _portal_link(reverse("diagnosis:analysis", args=[analysis.pk]))


@admin.register(Review)
class ReviewAdmin(ClinicScopedAdmin):
    clinic_lookup = "analysis__image__lesion__patient__clinic_id"
    list_display = (
        "id",
        "analysis",
        "version",
        "agrees_with_ai",
        "diagnosis",
        "management",
        "signed_by_name",
        "signed_at",
    )
    list_filter = (
        "agrees_with_ai",
        "diagnosis",
        "management",
        ("signed_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("analysis__image__lesion__patient__mrn", "signed_by_name")
    date_hierarchy = "created_at"
    exclude = ("author", "signed_by")
    readonly_fields = ("portal", "created_at", "updated_at")

    @admin.display(description="Portal")
    def portal(self, review: Review) -> str:
        return _portal_link(reverse("diagnosis:analysis", args=[review.analysis_id]))


@admin.register(Histopathology)
class HistopathologyAdmin(ClinicScopedAdmin):
    clinic_lookup = "lesion__patient__clinic_id"
    list_display = ("id", "lesion", "diagnosis", "reported_on", "lab_reference")
    list_filter = ("diagnosis",)
    search_fields = ("lesion__patient__mrn", "lab_reference")
    list_select_related = ("lesion",)
    exclude = ("recorded_by",)
    readonly_fields = ("recorded_at", "updated_at")


@admin.register(Referral)
class ReferralAdmin(ClinicScopedAdmin):
    clinic_lookup = "lesion__patient__clinic_id"
    list_display = ("id", "destination", "urgency", "due_on", "status", "closed_at")
    list_filter = ("status", "urgency")
    search_fields = ("lesion__patient__mrn", "destination")
    date_hierarchy = "due_on"
    exclude = ("created_by", "closed_by")
    readonly_fields = ("portal", "created_at", "closed_at")

    @admin.display(description="Portal")
    def portal(self, referral: Referral) -> str:
        return _portal_link(reverse("diagnosis:referral_detail", args=[referral.pk]))

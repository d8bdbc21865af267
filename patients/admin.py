"""Patients in the Django admin: read-only, scoped to the viewer's clinic, every view audited
(accounts.admin_site.ClinicScopedAdmin). Patients are registered, changed, exported and erased
on the portal's pages, through the audited services."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin_site import ClinicScopedAdmin
from patients.models import Patient


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    clinic_lookup = "clinic_id"
    list_display = ("mrn", "last_name", "first_name", "date_of_birth", "sex", "clinic")
    list_filter = ("sex", ("clinic", admin.RelatedOnlyFieldListFilter))
    search_fields = ("mrn", "last_name", "first_name")
    list_select_related = ("clinic",)
    exclude = ("created_by",)
    readonly_fields = ("created_at", "updated_at")

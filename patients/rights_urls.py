"""URLs for patients' rights (export, erasure), kept apart from patients/urls.py's pages."""

from django.urls import path

from patients import rights_views

app_name = "patient_rights"

urlpatterns = [
    path("<int:patient_id>/export/", rights_views.patient_export, name="export"),
    path("<int:patient_id>/erase/", rights_views.patient_erase, name="erase"),
]

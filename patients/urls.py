"""Every page of the patients app, mounted once at /patients/: the records in the `patients`
namespace, patients' rights (export, erasure) in `patient_rights`."""

from django.urls import include, path

from patients.views import records, rights

records_urlpatterns = [
    path("", records.patient_list, name="list"),
    path("new/", records.patient_create, name="create"),
    path("<int:patient_id>/", records.patient_detail, name="detail"),
    path("<int:patient_id>/edit/", records.patient_edit, name="edit"),
    path(
        "<int:patient_id>/research-consent/",
        records.patient_research_consent,
        name="research_consent",
    ),
]

rights_urlpatterns = [
    path("<int:patient_id>/export/", rights.patient_export, name="export"),
    path("<int:patient_id>/erase/", rights.patient_erase, name="erase"),
]

urlpatterns = [
    path("", include((records_urlpatterns, "patients"))),
    path("", include((rights_urlpatterns, "patient_rights"))),
]

"""Every page of the diagnosis app, in the `diagnosis` namespace."""

from django.urls import path

from diagnosis.views import (
    analysis,
    histopathology,
    image,
    lesion,
    model_version,
    referral,
    review,
)

app_name = "diagnosis"

urlpatterns: list = [
    path("", analysis.dashboard, name="dashboard"),
    path("dashboard/live/", analysis.dashboard_live, name="dashboard_live"),
    path("analyses/", analysis.analyses, name="analysis_list"),
    path("patients/<int:patient_id>/lesions/new/", lesion.lesion_create, name="lesion_create"),
    path("patients/<int:patient_id>/upload/", image.image_upload, name="upload"),
    path("lesions/<int:lesion_id>/", lesion.lesion_detail, name="lesion_detail"),
    path("lesions/<int:lesion_id>/edit/", lesion.lesion_edit, name="lesion_edit"),
    path("lesions/<int:lesion_id>/compare/", lesion.lesion_compare, name="lesion_compare"),
    path("lesions/<int:lesion_id>/review/", lesion.lesion_review, name="lesion_review"),
    path("analyses/<int:analysis_id>/", analysis.analysis_detail, name="analysis"),
    path("analyses/<int:analysis_id>/status/", analysis.analysis_status, name="analysis_status"),
    path("analyses/<int:analysis_id>/retry/", analysis.analysis_retry, name="analysis_retry"),
    path(
        "analyses/<int:analysis_id>/override/",
        analysis.analysis_override,
        name="analysis_override",
    ),
    path("analyses/<int:analysis_id>/heatmap/<str:which>/", image.heatmap_file, name="heatmap"),
    path("images/<int:image_id>/", image.image_file, name="image"),
    path("worklist/", review.worklist, name="worklist"),
    path("analyses/<int:analysis_id>/review/", review.review_edit, name="review_edit"),
    path("analyses/<int:analysis_id>/review/amend/", review.review_amend, name="review_amend"),
    path(
        "lesions/<int:lesion_id>/histopathology/",
        histopathology.histopathology_edit,
        name="histopathology_edit",
    ),
    path(
        "histopathology/",
        histopathology.histopathology_agreement,
        name="histopathology_agreement",
    ),
    path(
        "histopathology/cases/",
        histopathology.histopathology_cases,
        name="histopathology_cases",
    ),
    path("models/comparison/", model_version.model_comparison, name="model_comparison"),
    path("referrals/", referral.referral_list, name="referral_list"),
    path("referrals/<int:referral_id>/", referral.referral_detail, name="referral_detail"),
    path("referrals/<int:referral_id>/close/", referral.referral_close, name="referral_close"),
]

"""URLs of reviews, the worklist and histopathology; included by diagnosis/urls.py, so the
names live in the `diagnosis` namespace."""

from django.urls import path

from diagnosis import review_views

urlpatterns: list = [
    path("worklist/", review_views.worklist, name="worklist"),
    path("analyses/<int:analysis_id>/review/", review_views.review_edit, name="review_edit"),
    path(
        "analyses/<int:analysis_id>/review/amend/",
        review_views.review_amend,
        name="review_amend",
    ),
    path(
        "lesions/<int:lesion_id>/histopathology/",
        review_views.histopathology_edit,
        name="histopathology_edit",
    ),
    path(
        "histopathology/",
        review_views.histopathology_agreement,
        name="histopathology_agreement",
    ),
]

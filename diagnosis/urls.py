from django.urls import include, path

from diagnosis import views

app_name = "diagnosis"

urlpatterns: list = [
    path("", views.dashboard, name="dashboard"),
    path("patients/<int:patient_id>/lesions/new/", views.lesion_create, name="lesion_create"),
    path("patients/<int:patient_id>/upload/", views.image_upload, name="upload"),
    path("analyses/<int:analysis_id>/", views.analysis_detail, name="analysis"),
    path("analyses/<int:analysis_id>/status/", views.analysis_status, name="analysis_status"),
    path("analyses/<int:analysis_id>/retry/", views.analysis_retry, name="analysis_retry"),
    path("analyses/<int:analysis_id>/heatmap/<str:which>/", views.heatmap_file, name="heatmap"),
    path("images/<int:image_id>/", views.image_file, name="image"),
    path("", include("diagnosis.review_urls")),
]

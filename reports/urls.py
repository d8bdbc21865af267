from django.urls import path

from reports import views

app_name = "reports"

urlpatterns: list = [
    path("analyses/<int:analysis_id>/pdf/", views.analysis_pdf, name="analysis_pdf"),
    path("analyses/<int:analysis_id>/print/", views.analysis_print, name="analysis_print"),
]

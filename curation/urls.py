"""The curator's pages (sources, a source's jobs, a job); their data comes from the REST API."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.curation_home, name="curation-home"),
    path("sources/<int:pk>/", views.curation_source, name="curation-source"),
    path("jobs/<int:pk>/", views.curation_job, name="curation-job"),
]

"""The researcher's pages (models, releases); their data comes from the REST API."""

from django.urls import path

from . import views

urlpatterns = [
    path("models/", views.models_page, name="models"),
    path("releases/", views.releases_page, name="releases"),
]

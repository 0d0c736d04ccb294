"""The admins' takedown page; its data comes from the REST API."""

from django.urls import path

from . import views

urlpatterns = [
    path("takedowns/", views.takedowns_page, name="takedowns"),
]

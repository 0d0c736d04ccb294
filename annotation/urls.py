"""The raters' and managers' pages; their data comes from the REST API."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="rate-home"),
    path("projects/<int:pk>/rate/", views.rate, name="rate"),
    path("projects/<int:pk>/dashboard/", views.dashboard, name="dashboard"),
    path("projects/<int:pk>/review/", views.review, name="review"),
    path("projects/<int:pk>/guides/", views.guides, name="guides"),
    path("projects/<int:pk>/members/", views.members, name="members"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from accounts import api as accounts_api
from annotation import api as annotation_api
from annotation import curation_api as annotation_curation_api
from annotation import guides_api, members_api, quality_api
from core.web import ApiDocsView
from curation import api as curation_api
from curation import jobs_api as curation_jobs_api
from curation import views as curation_views
from modeling import api as modeling_api
from modeling import release_api


class Router(DefaultRouter):
    """Object routes take numeric ids unless a viewset names another pattern
    (`lookup_value_regex`): a word where an id belongs is a 404, never a failed cast."""

    def get_lookup_regex(self, viewset, lookup_prefix: str = "") -> str:
        lookup_field = getattr(viewset, "lookup_field", "pk")
        kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
        value = getattr(viewset, "lookup_value_regex", r"\d+")
        return f"(?P<{lookup_prefix}{kwarg}>{value})"


router = Router()
router.register("projects", annotation_api.ProjectViewSet, basename="project")
router.register("assignments", annotation_api.AssignmentViewSet, basename="assignment")
router.register("images", curation_api.ImageViewSet, basename="image")
router.register("reviews", quality_api.ReviewViewSet, basename="review")
router.register("releases", release_api.ReleaseViewSet, basename="release")
router.register("sources", curation_jobs_api.SourceViewSet, basename="source")
router.register(
    "source-imports", curation_jobs_api.SourceImportViewSet, basename="source-import"
)
router.register("jobs", curation_jobs_api.JobViewSet, basename="job")
router.register("decisions", curation_jobs_api.DecisionViewSet, basename="decision")
router.register("models", modeling_api.ModelVersionViewSet, basename="model-version")
router.register("scoring-jobs", modeling_api.ScoringJobViewSet, basename="scoring-job")
router.register("training-runs", modeling_api.TrainingRunViewSet, basename="training-run")

api_urls = [
    path("auth/token/", accounts_api.TokenView.as_view(), name="api-token"),
    path("auth/tokens/", accounts_api.TokenListView.as_view(), name="api-tokens"),
    path("auth/tokens/<int:pk>/", accounts_api.TokenRevokeView.as_view(), name="api-token-revoke"),
    path("auth/logout/", accounts_api.LogoutView.as_view(), name="api-logout"),
    path("dimensions/", annotation_api.DimensionsView.as_view(), name="api-dimensions"),
    path("me/", annotation_api.MeView.as_view(), name="api-me"),
    path("score/", modeling_api.ScoreView.as_view(), name="api-score"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: the CSP allows no inline script.
    # Swagger UI injects its own <style> elements, allowed on this page only.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(ApiDocsView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "jobs/<int:pk>/project/",
        annotation_curation_api.JobProjectView.as_view(),
        name="job-project",
    ),
    path(
        "sources/<int:pk>/project/",
        annotation_curation_api.SourceProjectView.as_view(),
        name="source-project",
    ),
    path("projects/<int:pk>/guides/", guides_api.GuidesView.as_view(), name="project-guides"),
    path(
        "projects/<int:pk>/guides/examples/",
        guides_api.GuideExamplesView.as_view(),
        name="project-guide-examples",
    ),
    path(
        "projects/<int:pk>/guides/examples/<int:example>/",
        guides_api.GuideExampleView.as_view(),
        name="project-guide-example",
    ),
    path(
        "projects/<int:pk>/guides/examples/<int:example>/image/",
        guides_api.GuideExampleImageView.as_view(),
        name="project-guide-example-image",
    ),
    path(
        "projects/<int:pk>/members/", members_api.MemberListView.as_view(), name="project-members"
    ),
    path(
        "projects/<int:pk>/members/<str:username>/",
        members_api.MemberDetailView.as_view(),
        name="project-member",
    ),
    path(
        "projects/<int:pk>/invitations/",
        members_api.ProjectInvitationsView.as_view(),
        name="project-invitations",
    ),
    path(
        "projects/<int:pk>/invitations/<int:invitation_id>/",
        members_api.ProjectInvitationView.as_view(),
        name="project-invitation",
    ),
    path(
        "invitations/<str:token>/", members_api.InvitationView.as_view(), name="invitation-detail"
    ),
    path(
        "invitations/<str:token>/accept/",
        members_api.InvitationAcceptView.as_view(),
        name="invitation-accept",
    ),
    path("", include(router.urls)),
]

urlpatterns = [
    path("api/", include(api_urls)),
    path("media/images/<int:pk>/", curation_views.image_file, name="image-file"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Each app's pages, from its urls.py.
    path("curation/", include("curation.urls")),
    path("", include("modeling.urls")),
    path("", include("annotation.urls")),
]

handler400 = "config.exceptions.bad_request"
handler403 = "config.exceptions.permission_denied"
handler404 = "config.exceptions.page_not_found"
handler500 = "config.exceptions.server_error"

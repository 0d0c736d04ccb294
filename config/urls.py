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
from core import api as core_api
from core import views as core_views
from core.web import ApiDocsView
from curation import api as curation_api
from curation import jobs_api as curation_jobs_api
from curation import views as curation_views
from modeling import api as modeling_api
from modeling import release_api
from rights import api as rights_api


class Router(DefaultRouter):
    """Object routes take numeric ids unless a viewset names another pattern
    (`lookup_value_regex`): a word where an id belongs is a 404, never a failed cast."""

    def get_lookup_regex(self, viewset, lookup_prefix: str = "") -> str:
        lookup_field = getattr(viewset, "lookup_field", "pk")
        kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
        value = getattr(viewset, "lookup_value_regex", r"\d+")
        return f"(?P<{lookup_prefix}{kwarg}>{value})"


# The API's viewsets, on the router: (prefix, viewset, basename).
API_VIEWSETS = [
    ("projects", annotation_api.ProjectViewSet, "project"),
    ("assignments", annotation_api.AssignmentViewSet, "assignment"),
    ("images", curation_api.ImageViewSet, "image"),
    ("reviews", quality_api.ReviewViewSet, "review"),
    ("releases", release_api.ReleaseViewSet, "release"),
    ("sources", curation_jobs_api.SourceViewSet, "source"),
    ("source-imports", curation_jobs_api.SourceImportViewSet, "source-import"),
    ("jobs", curation_jobs_api.JobViewSet, "job"),
    ("decisions", curation_jobs_api.DecisionViewSet, "decision"),
    ("models", modeling_api.ModelVersionViewSet, "model-version"),
    ("scoring-jobs", modeling_api.ScoringJobViewSet, "scoring-job"),
    ("training-runs", modeling_api.TrainingRunViewSet, "training-run"),
    ("takedowns", rights_api.TakedownViewSet, "takedown"),
    ("takedown-removals", rights_api.RemovalViewSet, "takedown-removal"),
    ("workers", core_api.WorkerViewSet, "worker"),
]
router = Router()
for prefix, viewset, basename in API_VIEWSETS:
    router.register(prefix, viewset, basename=basename)

# The API's views outside the router: (route, view class, name).
API_VIEWS = [
    ("auth/token/", accounts_api.TokenView, "api-token"),
    ("auth/tokens/", accounts_api.TokenListView, "api-tokens"),
    ("auth/tokens/<int:pk>/", accounts_api.TokenRevokeView, "api-token-revoke"),
    ("auth/logout/", accounts_api.LogoutView, "api-logout"),
    ("dimensions/", annotation_api.DimensionsView, "api-dimensions"),
    ("me/", annotation_api.MeView, "api-me"),
    ("score/", modeling_api.ScoreView, "api-score"),
    ("schema/", SpectacularAPIView, "api-schema"),
    ("jobs/<int:pk>/project/", annotation_curation_api.JobProjectView, "job-project"),
    ("sources/<int:pk>/project/", annotation_curation_api.SourceProjectView, "source-project"),
    ("projects/<int:pk>/guides/", guides_api.GuidesView, "project-guides"),
    ("projects/<int:pk>/guides/examples/", guides_api.GuideExamplesView,
     "project-guide-examples"),
    ("projects/<int:pk>/guides/examples/<int:example>/", guides_api.GuideExampleView,
     "project-guide-example"),
    ("projects/<int:pk>/guides/examples/<int:example>/image/", guides_api.GuideExampleImageView,
     "project-guide-example-image"),
    ("projects/<int:pk>/members/", members_api.MemberListView, "project-members"),
    ("projects/<int:pk>/members/<str:username>/", members_api.MemberDetailView,
     "project-member"),
    ("projects/<int:pk>/invitations/", members_api.ProjectInvitationsView,
     "project-invitations"),
    ("projects/<int:pk>/invitations/<int:invitation_id>/", members_api.ProjectInvitationView,
     "project-invitation"),
    ("invitations/<str:token>/", members_api.InvitationView, "invitation-detail"),
    ("invitations/<str:token>/accept/", members_api.InvitationAcceptView, "invitation-accept"),
]

api_urls = [
    *(path(route, view.as_view(), name=name) for route, view, name in API_VIEWS),
    # The split view serves its start-up script as a file: the CSP allows no inline script.
    # Swagger UI injects its own <style> elements, allowed on this page only.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(ApiDocsView.as_view(url_name="api-schema")),
        name="api-docs",
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
    path("", include("rights.urls")),
]

handler400 = "config.exceptions.bad_request"
handler403 = "config.exceptions.permission_denied"
handler404 = "config.exceptions.page_not_found"
handler500 = "config.exceptions.server_error"

# Health (#16): liveness and readiness for load balancers, unauthenticated, revealing nothing.
urlpatterns += [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
]

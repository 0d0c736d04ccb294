"""View helpers shared by every app: the pages' URL templates, the API's reading of a request
body and its job actions."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from . import jobs

# Stands in for an id while reversing; digits, so that every route pattern takes it.
_STAND_IN = "999999999"


def object_urls(pk: int, **names: str) -> dict[str, str]:
    """{key: the URL named names[key] for object `pk`}: the addresses a page's script uses."""
    return {key: reverse(name, args=[pk]) for key, name in names.items()}


def url_template(name: str, kwarg: str | None = None, **kwargs: object) -> str:
    """The URL named `name` with `{id}` where the page's script puts an object's id (or its
    `kwarg`, e.g. a model's version): how every page hands its script the API's addresses."""
    if kwarg is None:
        url = reverse(name, args=[*kwargs.values(), _STAND_IN])
    else:
        url = reverse(name, kwargs={**kwargs, kwarg: _STAND_IN})
    return url.replace(_STAND_IN, "{id}")


def validated(serializer_class: type[BaseSerializer], data: object) -> dict:
    """A request body as its serializer checked it: the validated data, or a 400 that lists
    what each field lacked (the API's one exception handler answers it). How every view reads
    its input."""
    form = serializer_class(data=data)
    form.is_valid(raise_exception=True)
    return form.validated_data


class CancelMixin:
    """`POST {id}/cancel/` for any long job's viewset: one meaning of cancel everywhere
    (`core.jobs.cancel`): a queued job never starts, a running one stops at its next progress
    write and keeps what it finished; 409 once it is over."""

    @extend_schema(
        request=None,
        responses={409: OpenApiResponse(description="Already over (done, failed or cancelled).")},
        description="Stop a queued or running job: its worker stops at its next progress "
        "write; what it finished stays (decisions, imported records, scored chunks). A "
        "training run's trainer is stopped at once and registers no model; a release's "
        "half-written folder is removed. 409 once it is over.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: int | None = None) -> Response:
        model = self.get_queryset().model
        jobs.cancel(model, self.get_object().pk, request.user)
        return Response(self.get_serializer(self.get_object()).data)


class LongJobViewSet(
    CancelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The API of a kind of long job: list, retrieve (status and live progress) and cancel;
    a kind adds its own `create` and actions."""


class ApiDocsView(SpectacularSwaggerSplitView):
    """The interactive API docs: for anyone signed in (session or token); a visitor who is not
    is sent to the login form and back, as on every page, instead of a bare 401."""

    def handle_exception(self, exc: Exception):
        if isinstance(exc, NotAuthenticated | AuthenticationFailed):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)

"""Requests that no view could store are refused before any view runs; API answers are
never cached."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from .exceptions import plain_error


class RejectNulMiddleware:
    """A NUL character in the path, the query or a url-encoded form is a 400.

    PostgreSQL stores no NUL in text, so such a value (a username in a URL, a path in a
    form) reached the database as a 500. JSON bodies are checked by the API's parser
    (`config.parsers`); Django's and DRF's form fields refuse NUL in multipart fields.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = self._nul_in(request)
        if where:
            detail = f"the request's {where} holds a NUL character, which is not allowed"
            return plain_error(request, 400, detail, "parse_error")
        return self.get_response(request)

    @staticmethod
    def _nul_in(request: HttpRequest) -> str:
        if "\x00" in request.path:
            return "path"
        if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists()):
            return "query"
        if request.content_type == "application/x-www-form-urlencoded" and any(
            "\x00" in k or any("\x00" in v for v in vs) for k, vs in request.POST.lists()
        ):
            return "form"
        return ""


class NoStoreApiMiddleware:
    """The API's answers are per user and change by the second (progress, the next task, other
    raters' work): no browser or proxy keeps them. Without this, Chromium answered the rater
    page's reads from its HTTP cache on Back (stale counters, a lease already ended)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            add_never_cache_headers(response)
        return response

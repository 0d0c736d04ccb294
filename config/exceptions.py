"""Every API error reads the same: `{"detail": sentence, "code": word}`, plus `"errors"` (the
field-by-field messages) for a body that failed validation.

Domain errors carry their own status and code; DRF's exceptions are reshaped here; Django's own
error pages (unknown URL, a crash, a refused upload) answer JSON under /api/ through the
`handler*` views below, so a client never has to parse HTML.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.exceptions import APIException, ErrorDetail
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from humanbeauty.errors import DomainError

log = logging.getLogger(__name__)

_CODE_BY_STATUS = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "throttled",
}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.errors is not None:
            body["errors"] = exc.errors
        return Response(body, status=exc.status)
    if isinstance(exc, DataError):
        # The database refused a value the serializers let through (a number beyond its
        # column, a NUL): the request's fault, not the server's. Logged, so the missing bound
        # is found and put where it belongs.
        log.warning("DataError answered as 400 in %s: %s", context.get("view"), exc)
        return Response(
            {"detail": "a value does not fit its field (too large, too long or malformed)",
             "code": "out_of_range"},
            status=400,
        )
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = _shape(response.data, exc, response.status_code)
    return response


def _shape(data: Any, exc: Exception, status: int) -> dict[str, Any]:
    if isinstance(data, dict) and set(data) == {"detail"} and not isinstance(
        data["detail"], dict | list
    ):
        code = getattr(data["detail"], "code", None) or _CODE_BY_STATUS.get(status, "error")
        return {"detail": str(data["detail"]), "code": code}
    # Field errors (a dict by field, or a list): keep them whole, and say them in one sentence.
    parts = list(_sentences(data))
    codes = [m.code for _, m in _leaves(data) if isinstance(m, ErrorDetail) and m.code]
    if codes:
        code = codes[0]
    elif isinstance(exc, APIException):
        code = exc.default_code
    else:
        code = _CODE_BY_STATUS.get(status, "invalid")
    return {"detail": " · ".join(parts) or "invalid request", "code": code, "errors": data}


def _leaves(data: Any, path: str = ""):
    """(field path, message) for every message in a DRF error structure."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for value in data:
            yield from _leaves(value, path)
    else:
        yield path, data


def _sentences(data: Any):
    by_path: dict[str, list[str]] = {}
    for path, message in _leaves(data):
        by_path.setdefault(path, []).append(str(message))
    for path, messages in by_path.items():
        text = " ".join(messages)
        yield text if path in ("", "non_field_errors") else f"{path}: {text}"


# --- Django's error views, JSON under /api/ ----------------------------------------------------


def plain_error(request: HttpRequest, status: int, detail: str, code: str) -> HttpResponse:
    """An error answered outside DRF (middleware, Django's handlers): the API's JSON shape
    under /api/, a plain sentence elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": code}, status=status)
    return HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")


def _json_or(default_view, status: int, detail: str):
    def view(request: HttpRequest, exception: Exception | None = None, **kwargs):
        if request.path.startswith("/api/"):
            return plain_error(request, status, detail, _CODE_BY_STATUS.get(status, "error"))
        if default_view is defaults.server_error:
            return default_view(request, **kwargs)
        return default_view(request, exception, **kwargs)

    return view


bad_request = _json_or(defaults.bad_request, 400, "bad request")
permission_denied = _json_or(defaults.permission_denied, 403, "you may not do this")
page_not_found = _json_or(defaults.page_not_found, 404, "no such API endpoint or object")
server_error = _json_or(defaults.server_error, 500, "internal server error; it was logged")

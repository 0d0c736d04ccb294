"""Upload size limits enforced before and while a body arrives, not after it reached the disk.

Two guards, both from `MAX_UPLOAD_BYTES`:
- `RequestSizeMiddleware` refuses a request whose declared Content-Length is over the limit
  (plus room for the multipart envelope) before a byte of the body is read;
- `LimitedUploadHandler` counts each file's bytes as they stream in and stops the upload the
  moment one passes the limit (a body sent without a Content-Length, or a lie in it).
Either way the answer is 413 `{"detail", "code": "too_large"}`, and nothing is stored.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import APIException

from .exceptions import plain_error

# Multipart boundaries, headers and the other form fields around the file.
ENVELOPE_BYTES = 1024 * 1024


class UploadTooLarge(APIException):
    status_code = 413
    default_code = "too_large"


def _detail() -> str:
    return f"the upload is larger than the limit of {settings.MAX_UPLOAD_BYTES:,} bytes"


def _too_large(request: HttpRequest) -> HttpResponse:
    return plain_error(request, 413, _detail(), "too_large")


class RequestSizeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > settings.MAX_UPLOAD_BYTES + ENVELOPE_BYTES:
            return _too_large(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        # A non-API view whose upload the handler stopped: the same 413, not a 500.
        if isinstance(exception, UploadTooLarge):
            return _too_large(request)
        return None


class LimitedUploadHandler(FileUploadHandler):
    """First of FILE_UPLOAD_HANDLERS: passes every chunk on, counting, and stops at the limit."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_BYTES:
            self._drop_partial_file()
            raise UploadTooLarge(_detail())
        return raw_data

    def _drop_partial_file(self) -> None:
        """Delete what the next handlers received of this file (a temp file past
        FILE_UPLOAD_MAX_MEMORY_SIZE) now: Django cleans up after its own StopUpload only, and
        otherwise the file stays on disk until the request is garbage collected."""
        for handler in self.request.upload_handlers:
            if handler is not self:
                handler.upload_interrupted()

    def file_complete(self, file_size: int) -> None:
        return None

"""DRF exception handler: domain errors become `{"detail", "code"}` with their HTTP status."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from humanbeauty.errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status)
    return drf_exception_handler(exc, context)

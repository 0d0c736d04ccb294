"""The workers as they report themselves (core.health): for platform admins only."""

from __future__ import annotations

from rest_framework import viewsets

from humanbeauty.roles import Role

from .access import RolePermissionMixin
from .models import WorkerHeartbeat
from .serializers import WorkerSerializer


class WorkerViewSet(RolePermissionMixin, viewsets.ReadOnlyModelViewSet):
    """Every Celery worker that ever started here: its queues, whether it is alive, when it was
    last heard from. A lost worker stays listed (alive: false) until an admin deletes its row
    in the Django admin."""

    queryset = WorkerHeartbeat.objects.order_by("name")
    serializer_class = WorkerSerializer
    read_roles = (Role.ADMIN,)

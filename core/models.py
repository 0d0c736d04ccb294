"""Tables of the platform core: the workers' heartbeats (the long jobs' base is core.jobs)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """One Celery worker (by its node name): where it runs, which queues it takes, and when it
    last said it was alive. Written by the worker itself (core.health), read by the admin."""

    name = models.CharField(max_length=200, unique=True, help_text="the worker's node name")
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(default=0)
    queues = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def alive(self) -> bool:
        """Running and heard from within three heartbeat periods."""
        silent = timedelta(seconds=3 * float(settings.WORKER_HEARTBEAT_SECONDS))
        return self.stopped_at is None and self.last_seen >= timezone.now() - silent

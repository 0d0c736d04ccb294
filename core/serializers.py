"""Response shapes of the core API (the workers' heartbeats)."""

from __future__ import annotations

from rest_framework import serializers

from .models import WorkerHeartbeat


class WorkerSerializer(serializers.ModelSerializer):
    alive = serializers.BooleanField(read_only=True, help_text=(
        "Running and heard from within three heartbeat periods (WORKER_HEARTBEAT_SECONDS)."
    ))

    class Meta:
        model = WorkerHeartbeat
        fields = ["id", "name", "host", "pid", "queues", "alive", "started_at", "last_seen",
                  "stopped_at"]
        read_only_fields = fields

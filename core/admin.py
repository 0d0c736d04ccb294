from django.contrib import admin

from .models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """The workers, as they report themselves (core.health): read only."""

    list_display = ["name", "host", "pid", "queues", "alive", "last_seen", "started_at"]
    search_fields = ["name", "host"]
    readonly_fields = [f.name for f in WorkerHeartbeat._meta.fields]

    @admin.display(boolean=True)
    def alive(self, obj: WorkerHeartbeat) -> bool:
        return obj.alive

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

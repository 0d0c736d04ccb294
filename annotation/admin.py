from django.contrib import admin

from .models import Assignment, Membership, Project, ProjectImage, Rating, Skip


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


# Plain list pages: each model with its options, no ModelAdmin class of its own.
admin.site.register(
    Project,
    list_display=["name", "overlap", "lease_minutes", "is_active", "created_at"],
    search_fields=["name"],
    inlines=[MembershipInline],
)
admin.site.register(
    ProjectImage,
    list_display=["project", "image", "target", "completed", "leased", "remaining"],
    list_filter=["project"],
    raw_id_fields=["image"],
)
admin.site.register(
    Assignment,
    list_display=["id", "project", "image", "rater", "status", "created_at", "expires_at"],
    list_filter=["project", "status"],
    raw_id_fields=["image", "project_image"],
)
admin.site.register(
    Rating,
    list_display=["id", "project", "image", "rater", "late", "time_spent_ms", "created_at"],
    list_filter=["project", "late"],
    raw_id_fields=["image", "assignment"],
)
admin.site.register(
    Skip,
    list_display=["id", "project", "image", "rater", "reason", "created_at"],
    list_filter=["project", "reason"],
    raw_id_fields=["image", "assignment"],
)

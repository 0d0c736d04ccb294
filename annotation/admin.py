from django.contrib import admin

from .models import Assignment, Membership, Project, ProjectImage, Rating, Skip


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "overlap", "lease_minutes", "is_active", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ProjectImage)
class ProjectImageAdmin(admin.ModelAdmin):
    list_display = ["project", "image", "target", "completed", "leased", "remaining"]
    list_filter = ["project"]
    raw_id_fields = ["image"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "image", "rater", "status", "created_at", "expires_at"]
    list_filter = ["project", "status"]
    raw_id_fields = ["image", "project_image"]


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "image", "rater", "late", "time_spent_ms", "created_at"]
    list_filter = ["project", "late"]
    raw_id_fields = ["image", "assignment"]


@admin.register(Skip)
class SkipAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "image", "rater", "reason", "created_at"]
    list_filter = ["project", "reason"]
    raw_id_fields = ["image", "assignment"]

from django.contrib import admin

from .models import Image, Source


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "created_at"]
    search_fields = ["name"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "sha256", "width", "height", "format", "source", "original_path"]
    list_filter = ["format", "source"]
    search_fields = ["sha256", "original_path"]

from django.contrib import admin

from .models import Image, Source

# Plain list pages: the options alone, no ModelAdmin class of their own.
admin.site.register(Source, list_display=["name", "kind", "created_at"], search_fields=["name"])
admin.site.register(
    Image,
    list_display=["id", "sha256", "width", "height", "format", "source", "original_path"],
    list_filter=["format", "source"],
    search_fields=["sha256", "original_path"],
)

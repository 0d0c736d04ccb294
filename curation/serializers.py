from django.urls import reverse
from rest_framework import serializers

from .models import Image


class ImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    source = serializers.CharField(source="source.name", default=None, read_only=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "url",
            "sha256",
            "width",
            "height",
            "format",
            "source",
            "original_path",
            "created_at",
        ]

    def get_url(self, image: Image) -> str:
        url = reverse("image-file", args=[image.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class ImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    source = serializers.CharField(required=False, max_length=200)

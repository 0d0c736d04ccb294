"""Request and response shapes of the takedown API (the services check the contents)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Match, Removal, TakedownRequest


class MatchSerializer(serializers.ModelSerializer):
    image_id = serializers.IntegerField(source="image_ref", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True,
                                       default=None)
    in_pool = serializers.SerializerMethodField()

    class Meta:
        model = Match
        fields = ["id", "image_id", "in_pool", "sha256", "original_path", "how", "distance",
                  "similarity", "evidence", "decision", "decided_by", "decided_at", "note",
                  "places", "removed_at"]

    def get_in_pool(self, obj: Match) -> bool:
        return obj.image_id is not None


class RemovalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Removal
        fields = ["id", "request", "status", "progress", "error", "created_at", "started_at",
                  "finished_at"]


class TakedownSerializer(serializers.ModelSerializer):
    filed_by = serializers.CharField(source="filed_by.username", read_only=True, default=None)
    photos = serializers.SerializerMethodField()
    matches = serializers.SerializerMethodField()
    removals = serializers.SerializerMethodField()

    class Meta:
        model = TakedownRequest
        fields = ["id", "person", "contact", "reason", "status", "names", "decision_note",
                  "filed_by", "created_at", "updated_at", "photos", "matches", "removals"]

    @extend_schema_field(MatchSerializer(many=True))
    def get_matches(self, obj: TakedownRequest) -> list[dict]:
        return MatchSerializer(obj.matches.order_by("image_ref"), many=True).data

    @extend_schema_field(RemovalSerializer(many=True))
    def get_removals(self, obj: TakedownRequest) -> list[dict]:
        return RemovalSerializer(obj.removals.order_by("id"), many=True).data

    def get_photos(self, obj: TakedownRequest) -> list[dict]:
        return [{"id": p.pk, "label": p.label, "sha256": p.sha256, "width": p.width,
                 "height": p.height} for p in obj.photos.order_by("id")]


class TakedownCreateSerializer(serializers.Serializer):
    person = serializers.CharField(max_length=200)
    contact = serializers.CharField(max_length=300)
    reason = serializers.CharField(max_length=10_000)
    image_ids = serializers.ListField(child=serializers.JSONField(), required=False,
                                      default=list)
    file_names = serializers.ListField(child=serializers.JSONField(), required=False,
                                       default=list)
    source_records = serializers.ListField(child=serializers.JSONField(), required=False,
                                           default=list)


class MatchRequestSerializer(serializers.Serializer):
    faces = serializers.BooleanField(required=False, default=False)


class DecideSerializer(serializers.Serializer):
    decisions = serializers.ListField(child=serializers.JSONField(), allow_empty=False)


class RejectSerializer(serializers.Serializer):
    why = serializers.CharField(max_length=5000)


class PhotosSerializer(serializers.Serializer):
    photos = serializers.ListField(child=serializers.FileField(), allow_empty=False)

"""Every JSONField of the modeling app stores NaN and infinities as null (issue #10, 7)."""

from __future__ import annotations

from django.apps import apps
from django.db import models

from humanbeauty.jsonsafe import FiniteJSONEncoder


def test_every_modeling_json_field_uses_the_finite_encoder():
    fields = {
        f"{model.__name__}.{field.name}": field
        for model in apps.get_app_config("modeling").get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.JSONField)
    }
    assert len(fields) >= 10  # Release (4), ModelVersion (1), ScoringJob (3), TrainingRun (2)
    plain = [name for name, field in fields.items()
             if not (field.encoder and issubclass(field.encoder, FiniteJSONEncoder))]
    assert plain == [], f"JSONFields without FiniteJSONEncoder: {plain}"

from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from curation.access import register_image_access

        from .selectors import rater_may_view_image

        register_image_access(rater_may_view_image)

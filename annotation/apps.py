from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from django.urls import reverse

        from curation.access import register_image_access
        from curation.views import register_page_links

        from .selectors import rater_may_view_image

        register_image_access(rater_may_view_image)
        # The curator's pages offer "make a rating project" from a source or a job.
        register_page_links("source", lambda pk: {"project": reverse("source-project", args=[pk])})
        register_page_links("job", lambda pk: {"project": reverse("job-project", args=[pk])})

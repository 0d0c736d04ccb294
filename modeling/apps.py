from django.apps import AppConfig


class ModelingConfig(AppConfig):
    name = "modeling"
    verbose_name = "Modeling"

    def ready(self) -> None:
        from . import release_tasks  # noqa: F401  (registers the task with Celery)
